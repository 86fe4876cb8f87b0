"""What an operator asks of a running course: who is where, what went out, what is stuck, and
what is coming. Figures are read from the database at `now`; printing is the caller's."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from .models import Delivery, DeliveryState, Subscriber, Subscription, SubscriptionState

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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data


def collect(session: Session, now: datetime, course: str | None = None) -> Stats:
    """The figures at `now`, for one course or all."""
    stats = Stats(now=now, course=course)
    subs = select(Subscription.state, func.count()).group_by(Subscription.state)
    if course:
        subs = subs.where(Subscription.course_slug == course)
    counts = Counter({str(state): n for state, n in session.execute(subs)})
    stats.by_state = {str(state): counts.get(str(state), 0) for state in SubscriptionState}

    first_day = (now - timedelta(days=DAYS - 1)).date()
    days = [first_day + timedelta(days=n) for n in range(DAYS)]
    sent = (
        select(Delivery.sent_at, Subscription.course_slug)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.state == DeliveryState.SENT, Delivery.sent_at >= _midnight(first_day, now))
    )
    if course:
        sent = sent.where(Subscription.course_slug == course)
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for sent_at, slug in session.execute(sent):
        if sent_at is not None:
            per_day[sent_at.date()][slug] += 1
    stats.sent_per_day = {d.isoformat(): dict(per_day.get(d, {})) for d in days}

    stuck = (
        select(Subscriber.email, Subscription.course_slug, Delivery)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Delivery.state.in_([DeliveryState.DEFERRED, DeliveryState.FAILED]))
        .order_by(Delivery.updated_at.desc())
        .limit(50)
    )
    if course:
        stuck = stuck.where(Subscription.course_slug == course)
    stats.stuck = [
        Stuck(email, slug, d.day, str(d.state), d.attempts, d.smtp_reply, d.updated_at.isoformat())
        for email, slug, d in session.execute(stuck)
    ]

    stats.due_now = due_count(session, now, course)
    stats.due_next_hour = due_count(session, now + timedelta(hours=1), course) - stats.due_now
    stats.due_next_day = due_count(session, now + timedelta(days=1), course) - stats.due_now
    return stats


def due_count(session: Session, instant: datetime, course: str | None = None) -> int:
    """Active subscriptions whose next lesson is due by `instant`."""
    query = select(func.count()).where(
        and_(Subscription.state == SubscriptionState.ACTIVE, Subscription.next_due_at <= instant)
    )
    if course:
        query = query.where(Subscription.course_slug == course)
    return int(session.scalar(query) or 0)


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
    for column in ("email", "course", "day", "state", "attempts", "last reply"):
        stuck.add_column(column)
    for s in stats.stuck:
        stuck.add_row(s.email, s.course, str(s.day), s.state, str(s.attempts), s.reply)

    wave = Table(title="Next wave")
    for column in ("due now", "in the next hour", "in the next day"):
        wave.add_column(column, justify="right")
    wave.add_row(str(stats.due_now), str(stats.due_next_hour), str(stats.due_next_day))
    return [states, sent, stuck, wave]


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
