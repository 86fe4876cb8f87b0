"""Prometheus metrics. Totals and the backlog are read from the database on each scrape, so
every process serving /metrics reports the same figures, whoever sent the lessons; the pass
duration is this process's own, kept in the Runtime's own registry (no process-global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from . import breaker, rates, stats


class Metrics:
    """This process's own measurements."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.pass_seconds = Histogram(
            "drip_dispatch_pass_seconds",
            "How long a dispatch pass took",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
            registry=self.registry,
        )

    def observe_pass(self, seconds: float) -> None:
        self.pass_seconds.observe(seconds)

    def text(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime]
    ) -> tuple[bytes, str]:
        """The exposition text and its content type, for GET /metrics."""
        registry = CollectorRegistry()
        registry.register(DeliveryCollector(sessions, clock))
        registry.register(self.pass_seconds)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class DeliveryCollector(Collector):
    """drip_lessons_{sent,bounced,failed}_total and drip_deferrals_total by course, and the
    due backlog, from the database (stats.py holds the queries)."""

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
        reported = {
            kind: GaugeMetricFamily(f"drip_{kind}_rate", f"Reported {kind}s per lesson sent, "
                                    f"over the last {rates.LAST_SENDS} sends", labels=["course"])
            for kind in ("bounce", "complaint")
        }  # fmt: skip
        with self.sessions() as session:
            held = _held(session)
            for slug, counts in stats.delivery_counts(session).items():
                for state in ("sent", "bounced", "failed"):
                    totals[state].add_metric([slug], counts[state])
                deferrals.add_metric([slug], counts["deferrals"])
            for slug, n in stats.due_by_course(session, self.clock()).items():
                backlog.add_metric([slug], n)
            for rate in rates.rates(session, self.clock()):
                if rate.lesson is None and rate.window.endswith("sends"):
                    reported["bounce"].add_metric([rate.course], rate.bounce_rate)
                    reported["complaint"].add_metric([rate.course], rate.complaint_rate)
        yield from totals.values()
        yield deferrals
        yield backlog
        yield from reported.values()
        yield held


def _held(session: Session) -> GaugeMetricFamily:
    """drip_course_held: 1 for a course its circuit breaker holds, 0 once resumed."""
    held = GaugeMetricFamily(
        "drip_course_held",
        "1 while the circuit breaker holds the course's sending",
        labels=["course"],
    )
    for hold in breaker.holds(session):
        held.add_metric([hold.course_slug], 1.0 if hold.held else 0.0)
    return held
