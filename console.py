"""What the operator's console reads: one course's funnel and trouble, subscribers found by
address, course and state, and one subscription's timeline. Figures at `now`; the pages are
the caller's. `drip subscribers` lists through `subscriber_list` too."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import (
    Delivery,
    DeliveryState,
    FeedbackEvent,
    FeedbackKind,
    OperatorAction,
    StateChange,
    Subscriber,
    Subscription,
    SubscriptionState,
)
from .subscriptions import due_condition

LIST_LIMIT = 200  # subscribers shown on one page of the console
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Listed:
    """One subscription in a list: its id, the address and where it is."""

    id: int
    email: str
    course: str
    state: str
    day: int
    next_due_at: datetime | None
    timezone: str

    def as_dict(self) -> dict[str, Any]:
        due = self.next_due_at.isoformat() if self.next_due_at else None
        return {"id": self.id, "email": self.email, "course": self.course, "state": self.state,
                "day": self.day, "next_due_at": due, "timezone": self.timezone}  # fmt: skip


def natural_key(text: str) -> list[Any]:
    """reader2 before reader10: digits compare as numbers, the rest without case."""
    return [int(part) if part.isdecimal() else part.casefold() for part in _DIGITS.split(text)]


def subscriber_list(
    session: Session, *, course: str | None = None, state: str | None = None,
    search: str = "", limit: int | None = None,
) -> list[Listed]:  # fmt: skip
    """Subscriptions by course, then address in natural order, then id; filtered by course,
    state and a part of the address (case-insensitive)."""
    query = select(Subscription, Subscriber.email).join(Subscription.subscriber)
    if course:
        query = query.where(Subscription.course_slug == course)
    if state:
        query = query.where(Subscription.state == SubscriptionState(state))
    if search:
        query = query.where(Subscriber.email_key.contains(search.casefold(), autoescape=True))
    query = query.order_by(Subscription.course_slug, Subscriber.email_key, Subscription.id)
    if limit is not None:
        query = query.limit(limit)
    found = [
        Listed(sub.id, email, sub.course_slug, str(sub.state), sub.current_day, sub.next_due_at,
               sub.timezone)
        for sub, email in session.execute(query)
    ]  # fmt: skip
    return sorted(found, key=lambda row: (row.course, natural_key(row.email), row.id))


@dataclass
class Funnel:
    """One course at `now`: who is at which lesson, how it ends, what comes back, what is due."""

    course: str
    total_days: int
    at_lesson: dict[int, int] = field(default_factory=dict)  # live subscriptions, by last lesson
    reached: dict[int, int] = field(default_factory=dict)  # every subscription that got lesson k
    by_state: dict[str, int] = field(default_factory=dict)
    unsubscribed_after: dict[int, int] = field(default_factory=dict)  # by the last lesson got
    bounced: dict[int, int] = field(default_factory=dict)  # refused at sending, by lesson
    reported: dict[int, Counter[str]] = field(default_factory=dict)  # lesson -> kind -> count
    due_by_hour: list[tuple[datetime, int]] = field(default_factory=list)  # next 24 hours

    @property
    def completion_rate(self) -> float:
        """Completed, of the subscriptions ever confirmed (pending ones never started)."""
        started = sum(n for state, n in self.by_state.items() if state != "pending")
        return self.by_state.get("completed", 0) / started if started else 0.0


def funnel(session: Session, course: str, total_days: int, now: datetime) -> Funnel:
    """The dashboard's figures of one course."""
    result = Funnel(course=course, total_days=total_days)
    query = (
        select(Subscription.state, Subscription.current_day, func.count())
        .where(Subscription.course_slug == course)
        .group_by(Subscription.state, Subscription.current_day)
    )
    states: Counter[str] = Counter()
    for state, day, n in session.execute(query):
        states[str(state)] += n
        if state in (SubscriptionState.ACTIVE, SubscriptionState.PAUSED, SubscriptionState.FAILED):
            result.at_lesson[day] = result.at_lesson.get(day, 0) + n
        if state is SubscriptionState.UNSUBSCRIBED:
            result.unsubscribed_after[day] = result.unsubscribed_after.get(day, 0) + n
        for lesson in range(1, min(day, total_days) + 1):
            result.reached[lesson] = result.reached.get(lesson, 0) + n
    result.by_state = {str(s): states.get(str(s), 0) for s in SubscriptionState}
    result.bounced, result.reported = _trouble_by_lesson(session, course)
    result.due_by_hour = due_by_hour(session, course, now)
    return result


def _trouble_by_lesson(
    session: Session, course: str
) -> tuple[dict[int, int], dict[int, Counter[str]]]:
    """Lessons refused at sending, and bounces and complaints reported later, by lesson."""
    refused = (
        select(Delivery.day, func.count())
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.course_slug == course, Delivery.state == DeliveryState.BOUNCED)
        .group_by(Delivery.day)
    )
    reports = (
        select(Delivery.day, FeedbackEvent.kind, func.count())
        .join(Delivery, Delivery.id == FeedbackEvent.delivery_id)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.course_slug == course,
               FeedbackEvent.kind.in_([FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE,
                                       FeedbackKind.COMPLAINT]))
        .group_by(Delivery.day, FeedbackEvent.kind)
    )  # fmt: skip
    reported: dict[int, Counter[str]] = {}
    for day, kind, n in session.execute(reports):
        reported.setdefault(day, Counter())[str(kind)] += n
    return {day: n for day, n in session.execute(refused)}, reported


def due_by_hour(session: Session, course: str, now: datetime) -> list[tuple[datetime, int]]:
    """Lessons due in each of the next 24 hours (UTC hours; the first includes any overdue)."""
    start = now.replace(minute=0, second=0, microsecond=0)
    query = select(Subscription.next_due_at).where(
        due_condition(start + timedelta(hours=24)), Subscription.course_slug == course
    )
    counts: Counter[int] = Counter()
    for (due,) in session.execute(query):
        if due is not None:  # always, for an active subscription that is due
            counts[max(0, int((due - start).total_seconds() // 3600))] += 1
    return [(start + timedelta(hours=h), counts.get(h, 0)) for h in range(24)]


@dataclass(frozen=True)
class Moment:
    """One line of a timeline: when, what kind of thing, and what it says."""

    at: datetime
    kind: str  # delivery, state, report, operator
    text: str
    detail: str = ""  # an SMTP reply, a diagnostic
    message_id: str = ""
    delivery_id: int | None = None
    retry: bool = False  # a deferred or failed delivery the operator may retry


def timeline(session: Session, subscription_id: int) -> list[Moment]:
    """Everything that happened to one subscription, latest first."""
    found: list[Moment] = []
    deliveries = select(Delivery).where(Delivery.subscription_id == subscription_id)
    for d in session.scalars(deliveries):
        what = "confirmation email" if d.day == 0 else f"lesson {d.day}"
        found.append(Moment(d.sent_at or d.updated_at, "delivery",
                            f"{what}: {d.state} after {d.attempts} attempt(s)", d.smtp_reply,
                            d.message_id, d.id,
                            d.state in (DeliveryState.DEFERRED, DeliveryState.FAILED)))  # fmt: skip
    changes = select(StateChange).where(StateChange.subscription_id == subscription_id)
    for c in session.scalars(changes):
        who = f" by {c.by}" if c.by else ""
        found.append(Moment(c.at, "state", f"{c.previous} → {c.state} ({c.event}{who})"))
    reports = select(FeedbackEvent).where(FeedbackEvent.subscription_id == subscription_id)
    for r in session.scalars(reports):
        found.append(Moment(r.received_at, "report", f"{r.kind} reported by {r.source}",
                            f"{r.status} {r.diagnostic}".strip()))  # fmt: skip
    actions = select(OperatorAction).where(OperatorAction.subscription_id == subscription_id)
    for a in session.scalars(actions):
        found.append(Moment(a.at, "operator", f"{a.action} by {a.operator}", a.detail))
    return sorted(found, key=lambda m: m.at, reverse=True)


def subscriptions_of(session: Session, subscriber_id: int) -> list[Subscription]:
    """Every subscription of one person, the rows locked (PostgreSQL) until the transaction
    ends: a worker's claim of any of them came first (its lease shows) or waits."""
    query = select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    return list(session.scalars(query.order_by(Subscription.id).with_for_update()))
