"""Bounce and complaint rates, per course and per lesson, over the last 1,000 sends and the
last 7 days. Gmail and Yahoo block bulk senders whose complaint rate passes 0.3%; drip warns
at 0.1% and at 0.3%."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Delivery, DeliveryState, FeedbackEvent, FeedbackKind, Subscription

LAST_SENDS = 1000
LAST_DAYS = 7
WARN_AT, LIMIT = 0.001, 0.003  # complaint rates: the bulk-sender rules' warning and limit


@dataclass(frozen=True)
class Rate:
    course: str
    window: str  # "last 1000 sends" or "last 7 days"
    lesson: int | None  # None: the whole course
    sends: int
    bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.sends if self.sends else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sends if self.sends else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bounce_rate": self.bounce_rate,
                "complaint_rate": self.complaint_rate}  # fmt: skip


def rates(session: Session, now: datetime, course: str | None = None) -> list[Rate]:
    """Per course over its last LAST_SENDS sends, and per course and lesson over LAST_DAYS."""
    return _last_sends(session, course) + _last_days(session, now, course)


def warnings(found: list[Rate]) -> list[str]:
    """One line per course whose complaint rate passed the warning level or the limit."""
    lines = []
    for rate in found:
        if rate.lesson is not None or rate.complaint_rate < WARN_AT:
            continue
        level = "over the 0.3% limit" if rate.complaint_rate >= LIMIT else "over 0.1%"
        lines.append(f"{rate.course}: complaint rate {rate.complaint_rate:.2%} ({rate.window}), "
                     f"{level} of the Gmail and Yahoo bulk-sender rules")  # fmt: skip
    return lines


def _counts(session: Session, sends: Any, keys: list[Any]) -> dict[tuple[Any, ...], list[int]]:
    """sends, bounces, complaints per key over the deliveries `sends` selects (a subquery)."""
    totals: dict[tuple[Any, ...], list[int]] = {}
    for *key, n in session.execute(select(*keys, func.count()).select_from(sends).group_by(*keys)):
        totals[tuple(key)] = [int(n), 0, 0]
    kinds = {FeedbackKind.HARD_BOUNCE: 1, FeedbackKind.COMPLAINT: 2}
    reported = (
        select(*keys, FeedbackEvent.kind, func.count(func.distinct(FeedbackEvent.delivery_id)))
        .select_from(sends)
        .join(FeedbackEvent, FeedbackEvent.delivery_id == sends.c.id)
        .where(FeedbackEvent.kind.in_(list(kinds)))
        .group_by(*keys, FeedbackEvent.kind)
    )
    for *key, kind, n in session.execute(reported):
        totals.setdefault(tuple(key), [0, 0, 0])[kinds[kind]] += int(n)
    return totals


def _sent(course: str | None) -> Any:
    query = (
        select(Delivery.id, Delivery.day, Delivery.sent_at, Subscription.course_slug)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.state == DeliveryState.SENT, Delivery.day > 0)
    )
    return query.where(Subscription.course_slug == course) if course else query


def _last_sends(session: Session, course: str | None) -> list[Rate]:
    rank = func.row_number().over(partition_by=Subscription.course_slug,
                                  order_by=Delivery.sent_at.desc())  # fmt: skip
    ranked = _sent(course).add_columns(rank.label("rank")).subquery()
    recent = select(ranked).where(ranked.c.rank <= LAST_SENDS).subquery()
    counts = _counts(session, recent, [recent.c.course_slug])
    return [
        Rate(slug, f"last {LAST_SENDS} sends", None, *n) for (slug,), n in sorted(counts.items())
    ]


def _last_days(session: Session, now: datetime, course: str | None) -> list[Rate]:
    since = now - timedelta(days=LAST_DAYS)
    recent = _sent(course).where(Delivery.sent_at >= since).subquery()
    window = f"last {LAST_DAYS} days"
    per_lesson = _counts(session, recent, [recent.c.course_slug, recent.c.day])
    per_course = _counts(session, recent, [recent.c.course_slug])
    found = [Rate(slug, window, None, *n) for (slug,), n in sorted(per_course.items())]
    return found + [Rate(slug, window, day, *n) for (slug, day), n in sorted(per_lesson.items())]
