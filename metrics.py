"""Prometheus metrics. Totals and the backlog are read from the database on each scrape, so
every process serving /metrics reports the same figures, whoever sent the lessons; the pass
duration is this process's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from .models import Delivery, DeliveryState, Subscription, SubscriptionState

PASS_SECONDS = Histogram(
    "drip_dispatch_pass_seconds",
    "How long a dispatch pass took",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)


class DeliveryCollector(Collector):
    """drip_lessons_{sent,bounced,failed}_total and drip_deferrals_total by course, and the
    due backlog, from the database."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions, self.clock = sessions, clock

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        totals = {
            state: CounterMetricFamily(
                f"drip_lessons_{state}", f"Lessons {state}, by course", labels=["course"]
            )
            for state in ("sent", "bounced", "failed")
        }
        deferrals = CounterMetricFamily(
            "drip_deferrals", "Sends deferred by a temporary failure, by course", labels=["course"]
        )
        backlog = GaugeMetricFamily(
            "drip_due_backlog", "Active subscriptions whose next lesson is due", labels=["course"]
        )

        def count(state: DeliveryState) -> Any:
            return func.sum(case((Delivery.state == state, 1), else_=0))

        with self.sessions() as session:
            rows = session.execute(
                select(
                    Subscription.course_slug,
                    count(DeliveryState.SENT),
                    count(DeliveryState.BOUNCED),
                    count(DeliveryState.FAILED),
                    count(DeliveryState.SENDING),
                    func.sum(Delivery.attempts),
                )
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .group_by(Subscription.course_slug)
            )
            for slug, sent, bounced, failed, sending, attempts in rows:
                totals["sent"].add_metric([slug], int(sent or 0))
                totals["bounced"].add_metric([slug], int(bounced or 0))
                totals["failed"].add_metric([slug], int(failed or 0))
                # every attempt that did not end sent, bounced or still in flight was deferred
                finished = int(sent or 0) + int(bounced or 0) + int(sending or 0)
                deferrals.add_metric([slug], int(attempts or 0) - finished)
            due = session.execute(
                select(Subscription.course_slug, func.count())
                .where(
                    Subscription.state == SubscriptionState.ACTIVE,
                    Subscription.next_due_at <= self.clock(),
                )
                .group_by(Subscription.course_slug)
            )
            for slug, n in due:
                backlog.add_metric([slug], int(n))
        yield from totals.values()
        yield deferrals
        yield backlog


def metrics_text(
    sessions: sessionmaker[Session], clock: Callable[[], datetime]
) -> tuple[bytes, str]:
    """The exposition text and its content type, for GET /metrics."""
    registry = CollectorRegistry()
    registry.register(DeliveryCollector(sessions, clock))
    registry.register(PASS_SECONDS)
    return generate_latest(registry), CONTENT_TYPE_LATEST
