"""What an operator asks of a running course: who is where, what went out, what is stuck, and
what is coming. Figures are read from the database at `now`; printing is the caller's."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from . import pace, rates
from .models import Delivery, DeliveryState, Subscriber, Subscription, SubscriptionState
from .subscriptions import due_condition

DAYS = 14


@dataclass
class Stuck:
    """A lesson that did not go out: deferred (retrying) or failed (given up)."""

    email: str
    course: str
    day: int
    state: str
    attempts: int
    reply: str
    updated_at: str
    subscription_id: int = 0  # as the logs and the console name it
    delivery_id: int = 0


@dataclass
class Stats:
    now: datetime
    course: str | None
    by_state: dict[str, int] = field(default_factory=dict)
    sent_per_day: dict[str, dict[str, int]] = field(default_factory=dict)  # date -> course -> n
    stuck: list[Stuck] = field(default_factory=list)
    due_now: int = 0
    due_next_hour: int = 0
    due_next_day: int = 0
    rates: list[dict[str, Any]] = field(default_factory=list)  # see rates.py
    pace: list[dict[str, Any]] = field(default_factory=list)  # course, action, lesson, count
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data


def collect(session: Session, now: datetime, course: str | None = None) -> Stats:
    """The figures at `now`, for one course or all."""
    stats = Stats(now=now, course=course)
    counts = state_counts(session, course)
    stats.by_state = {str(state): counts.get(str(state), 0) for state in SubscriptionState}
    stats.sent_per_day = sent_per_day(session, now, course)
    stats.stuck = stuck(session, course)
    stats.due_now = due_count(session, now, course)
    stats.due_next_hour = due_count(session, now + timedelta(hours=1), course) - stats.due_now
    stats.due_next_day = due_count(session, now + timedelta(days=1), course) - stats.due_now
    found = rates.rates(session, now, course)
    stats.rates, stats.warnings = [r.as_dict() for r in found], rates.warnings(found)
    counted = sorted(pace.counts(session, course).items())
    stats.pace = [{"course": slug, "action": action, "lesson": lesson, "count": n}
                  for (slug, action, lesson), n in counted]  # fmt: skip
    return stats


def state_counts(session: Session, course: str | None = None) -> Counter[str]:
    """Subscriptions by state."""
    query = select(Subscription.state, func.count()).group_by(Subscription.state)
    if course:
        query = query.where(Subscription.course_slug == course)
    return Counter({str(state): n for state, n in session.execute(query)})


def sent_per_day(session: Session, now: datetime, course: str | None) -> dict[str, dict[str, int]]:
    """Lessons sent on each of the last DAYS days: date -> course -> count."""
    first_day = (now - timedelta(days=DAYS - 1)).date()
    query = (
        select(Delivery.sent_at, Subscription.course_slug)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.state == DeliveryState.SENT, Delivery.sent_at >= _midnight(first_day, now))
    )
    if course:
        query = query.where(Subscription.course_slug == course)
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for sent_at, slug in session.execute(query):
        if sent_at is not None:
            per_day[sent_at.date()][slug] += 1
    days = [first_day + timedelta(days=n) for n in range(DAYS)]
    return {d.isoformat(): dict(per_day.get(d, {})) for d in days}


def stuck(session: Session, course: str | None, limit: int = 50) -> list[Stuck]:
    """The latest lessons deferred (retrying) or failed (given up)."""
    query = (
        select(Subscriber.email, Subscription.course_slug, Delivery)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Delivery.state.in_([DeliveryState.DEFERRED, DeliveryState.FAILED]))
        .order_by(Delivery.updated_at.desc())
        .limit(limit)
    )
    if course:
        query = query.where(Subscription.course_slug == course)
    return [
        Stuck(
            email,
            slug,
            d.day,
            str(d.state),
            d.attempts,
            d.smtp_reply,
            d.updated_at.isoformat(),
            d.subscription_id,
            d.id,
        )
        for email, slug, d in session.execute(query)
    ]


def states_by_course(session: Session) -> dict[tuple[str, str], int]:
    """Subscriptions by (course, state), for the metrics."""
    query = select(Subscription.course_slug, Subscription.state, func.count()).group_by(
        Subscription.course_slug, Subscription.state
    )
    return {(slug, str(state)): int(n) for slug, state, n in session.execute(query)}


def due_count(session: Session, instant: datetime, course: str | None = None) -> int:
    """Active subscriptions whose next lesson is due by `instant`."""
    query = select(func.count()).where(due_condition(instant))
    if course:
        query = query.where(Subscription.course_slug == course)
    return int(session.scalar(query) or 0)


def due_by_course(session: Session, instant: datetime) -> dict[str, int]:
    """Active subscriptions whose next lesson is due by `instant`, per course."""
    query = (
        select(Subscription.course_slug, func.count())
        .where(due_condition(instant))
        .group_by(Subscription.course_slug)
    )
    return {slug: int(n) for slug, n in session.execute(query)}


def database_answers(engine: Engine) -> None:
    """For health probes: one round trip; raises if the database does not answer."""
    with engine.connect() as conn:
        conn.execute(select(1))


def active_by_course(session: Session) -> dict[str, int]:
    """Active subscriptions per course."""
    query = (
        select(Subscription.course_slug, func.count())
        .where(Subscription.state == SubscriptionState.ACTIVE)
        .group_by(Subscription.course_slug)
    )
    return {slug: int(n) for slug, n in session.execute(query)}


def delivery_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per course: lessons sent, bounced and failed, and deferrals (every attempt that did not
    end sent, bounced or still in flight was deferred)."""

    def count(state: DeliveryState) -> Any:
        return func.sum(case((Delivery.state == state, 1), else_=0))

    query = (
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
    figures = {}
    for slug, sent, bounced, failed, sending, attempts in session.execute(query):
        sent, bounced, failed, sending = (int(n or 0) for n in (sent, bounced, failed, sending))
        deferrals = int(attempts or 0) - sent - bounced - sending
        figures[slug] = {"sent": sent, "bounced": bounced, "failed": failed, "deferrals": deferrals}
    return figures


def _midnight(day: date, now: datetime) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=now.tzinfo)


def tables(stats: Stats) -> list[Any]:
    """Rich renderables for a terminal."""
    from rich.table import Table

    states = Table(title="Subscriptions by state")
    for name in stats.by_state:
        states.add_column(name, justify="right")
    states.add_row(*(str(n) for n in stats.by_state.values()))

    courses = sorted({c for per in stats.sent_per_day.values() for c in per})
    sent = Table(title=f"Lessons sent per day (UTC), last {DAYS} days")
    sent.add_column("date")
    for slug in courses or ["(none)"]:
        sent.add_column(slug, justify="right")
    for day, per in stats.sent_per_day.items():
        sent.add_row(day, *(str(per.get(slug, 0)) for slug in courses or ["(none)"]))

    stuck = Table(title="Deferred and failed lessons (latest 50)")
    for column in ("id", "email", "course", "day", "state", "attempts", "last reply"):
        stuck.add_column(column)
    for s in stats.stuck:
        stuck.add_row(str(s.subscription_id), s.email, s.course, str(s.day), s.state,
                      str(s.attempts), s.reply)  # fmt: skip

    wave = Table(title="Next wave")
    for column in ("due now", "in the next hour", "in the next day"):
        wave.add_column(column, justify="right")
    wave.add_row(str(stats.due_now), str(stats.due_next_hour), str(stats.due_next_day))
    return [states, sent, stuck, wave, _rates_table(stats), _pace_table(stats)]


def _pace_table(stats: Stats) -> Any:
    from rich.table import Table

    table = Table(title="Learners' pace actions (next lesson now, snooze, restart, jump)")
    for column in ("course", "action", "after lesson", "count"):
        table.add_column(column, justify="right" if column in ("after lesson", "count") else "left")
    for row in stats.pace:
        table.add_row(row["course"], row["action"], str(row["lesson"]), str(row["count"]))
    return table


def _rates_table(stats: Stats) -> Any:
    from rich.table import Table

    table = Table(title="Bounces and complaints reported after sending")
    for column in ("course", "over", "lesson", "sends", "bounce rate", "complaint rate"):
        table.add_column(column, justify="right" if column != "course" else "left")
    for r in stats.rates:
        lesson = "all" if r["lesson"] is None else str(r["lesson"])
        table.add_row(r["course"], r["window"], lesson, str(r["sends"]),
                      f"{r['bounce_rate']:.2%}", f"{r['complaint_rate']:.2%}")  # fmt: skip
    return table


def plot(stats: Stats, path: Path, width: int = 1000, height: int = 500) -> Path:
    """Sends per day by course as a PNG of `width` x `height` pixels (matplotlib, optional)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    days = list(stats.sent_per_day)
    courses = sorted({c for per in stats.sent_per_day.values() for c in per})
    dpi = 100
    figure, axes = pyplot.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    bottom = [0] * len(days)
    for slug in courses:
        values = [stats.sent_per_day[d].get(slug, 0) for d in days]
        axes.bar([d[5:] for d in days], values, bottom=bottom, label=slug)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_title("Lessons sent per day")
    axes.set_ylabel("lessons")
    if courses:
        axes.legend()
    figure.autofmt_xdate()
    figure.savefig(path, dpi=dpi)
    pyplot.close(figure)
    return path
