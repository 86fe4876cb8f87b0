"""Prometheus metrics. Totals, subscriptions by state and the backlog are read from the
database on each scrape, so every process serving /metrics reports the same figures, whoever
sent the lessons; the pass duration and the time of the last successful pass are this
process's own, kept in the Runtime's own registry (no process-global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from . import breaker, pace, rates, stats


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

        self.last_success = Gauge(
            "drip_last_successful_pass_timestamp_seconds",
            "When this process last finished a dispatch pass without an error (Unix time)",
            registry=self.registry,
        )

    def observe_pass(self, seconds: float, finished: datetime | None = None) -> None:
        """A pass took `seconds`; `finished` is when, if it ended without an error."""
        self.pass_seconds.observe(seconds)
        if finished is not None:
            self.last_success.set(finished.timestamp())

    def scraped(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime]
    ) -> CollectorRegistry:
        """What a scrape reads: the database's figures and this process's own."""
        registry = CollectorRegistry()
        registry.register(DeliveryCollector(sessions, clock))
        registry.register(self.pass_seconds)
        registry.register(self.last_success)
        return registry

    def text(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime]
    ) -> tuple[bytes, str]:
        """The exposition text and its content type, for GET /metrics."""
        return generate_latest(self.scraped(sessions, clock)), CONTENT_TYPE_LATEST

    def serve(
        self, host: str, port: int, sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
    ) -> Callable[[], None]:  # fmt: skip
        """/metrics on its own address (DRIP_METRICS_LISTEN), in a thread; what stops it."""
        server, thread = start_http_server(port, addr=host, registry=self.scraped(sessions, clock))

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

        return stop


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
        subscriptions = GaugeMetricFamily(
            "drip_subscriptions", "Subscriptions by course and state", labels=["course", "state"]
        )
        backlog = GaugeMetricFamily(
            "drip_due_backlog", "Active subscriptions whose next lesson is due", labels=["course"]
        )
        with self.sessions() as session:
            actions = _pace_actions(session)
            reported = _reported_rates(session, self.clock())
            held = _held(session)
            for slug, counts in stats.delivery_counts(session).items():
                for state in ("sent", "bounced", "failed"):
                    totals[state].add_metric([slug], counts[state])
                deferrals.add_metric([slug], counts["deferrals"])
            for (slug, state), n in stats.states_by_course(session).items():
                subscriptions.add_metric([slug, state], n)
            for slug, n in stats.due_by_course(session, self.clock()).items():
                backlog.add_metric([slug], n)
        yield from totals.values()
        yield deferrals
        yield subscriptions
        yield backlog
        yield from reported.values()
        yield actions
        yield held


def _pace_actions(session: Session) -> CounterMetricFamily:
    actions = CounterMetricFamily(
        "drip_pace_actions", "Learners' pace actions, by course, action and the lesson they "
        "were taken after", labels=["course", "action", "lesson"],
    )  # fmt: skip
    for (slug, action, lesson), n in pace.counts(session).items():
        actions.add_metric([slug, action, str(lesson)], n)
    return actions


def _reported_rates(session: Session, now: datetime) -> dict[str, GaugeMetricFamily]:
    """Reported bounces and complaints per lesson sent, per course, over the last sends."""
    reported = {
        kind: GaugeMetricFamily(f"drip_{kind}_rate", f"Reported {kind}s per lesson sent, "
                                f"over the last {rates.LAST_SENDS} sends", labels=["course"])
        for kind in ("bounce", "complaint")
    }  # fmt: skip
    for rate in rates.rates(session, now):
        if rate.lesson is None and rate.window.endswith("sends"):
            reported["bounce"].add_metric([rate.course], rate.bounce_rate)
            reported["complaint"].add_metric([rate.course], rate.complaint_rate)
    return reported


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
