"""A course's circuit breaker: when its complaint rate or hard-bounce rate over its last N sends
passes a limit (DRIP_BREAKER_*; 0.3% complaints, after the Gmail and Yahoo bulk-sender rules),
its sending pauses by itself until the operator runs `drip course resume SLUG`.

A hold stops claims for the course (scheduler/queries.py leaves it out); its subscriptions keep
their state and due times, so on resuming they go out in due order, none skipped. Bounces
refused at SMTP time (deliveries 'bounced') count with the hard bounces reported later; after a
resume, only sends since then count, so the old figures do not trip it again at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Delivery, DeliveryState, FeedbackEvent, FeedbackKind, Subscription
from .models_budgets import CourseHold

log = logging.getLogger("drip.breaker")


@dataclass(frozen=True)
class Limits:
    sends: int = 1000  # the window: a course's last N sends, weighed once it has N
    complaint_rate: float = 0.003
    bounce_rate: float = 0.05


def held(session: Session) -> set[str]:
    """The courses whose sending is paused."""
    return set(session.scalars(select(CourseHold.course_slug).where(CourseHold.held)))


def holds(session: Session) -> list[CourseHold]:
    """Every course the breaker has held, held or resumed since."""
    return list(session.scalars(select(CourseHold).order_by(CourseHold.course_slug)))


def weigh(session: Session, slug: str, limits: Limits) -> str | None:
    """Why the course must pause, or None: its last `limits.sends` sends (since a resume)."""
    hold = session.get(CourseHold, slug)
    recent = (
        select(Delivery.id, Delivery.state)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.course_slug == slug, Delivery.day > 0,
               Delivery.state.in_([DeliveryState.SENT, DeliveryState.BOUNCED]))
        .order_by(Delivery.id.desc())
        .limit(limits.sends)
    )  # fmt: skip
    if hold is not None and hold.resumed_at is not None:
        recent = recent.where(Delivery.updated_at > hold.resumed_at)
    window = recent.subquery()
    sends, refused = session.execute(
        select(func.count(), func.count().filter(window.c.state == DeliveryState.BOUNCED))
    .select_from(window)).one()  # fmt: skip
    if sends < limits.sends:
        return None
    reported = dict(
        session.execute(
            select(FeedbackEvent.kind, func.count(func.distinct(FeedbackEvent.delivery_id)))
            .where(FeedbackEvent.delivery_id.in_(select(window.c.id)),
                   FeedbackEvent.kind.in_([FeedbackKind.COMPLAINT, FeedbackKind.HARD_BOUNCE]))
            .group_by(FeedbackEvent.kind)
        ).all()
    )  # fmt: skip
    complaints = int(reported.get(FeedbackKind.COMPLAINT, 0))
    bounces = int(refused) + int(reported.get(FeedbackKind.HARD_BOUNCE, 0))
    if complaints / sends > limits.complaint_rate:
        return f"complaint rate {complaints / sends:.2%} over its last {sends} sends " \
               f"(limit {limits.complaint_rate:.2%})"  # fmt: skip
    if bounces / sends > limits.bounce_rate:
        return f"hard-bounce rate {bounces / sends:.2%} over its last {sends} sends " \
               f"(limit {limits.bounce_rate:.2%})"  # fmt: skip
    return None


def trip(session: Session, slug: str, limits: Limits, now: datetime) -> bool:
    """Hold the course if its rates pass the limits; True when it was held just now."""
    reason = weigh(session, slug, limits)
    if reason is None:
        return False
    hold = session.get(CourseHold, slug, with_for_update=True)
    if hold is not None and hold.held:
        return False
    if hold is None:
        hold = CourseHold(course_slug=slug)
        session.add(hold)
    hold.held, hold.reason, hold.held_at = True, reason[:500], now
    session.flush()
    log.error("course %s paused by its circuit breaker: %s; `drip course resume %s` "
              "restarts it", slug, reason, slug,
              extra={"event": "course held", "course": slug, "reason": reason})  # fmt: skip
    return True


def resume(session: Session, slug: str, now: datetime) -> bool:
    """Let a held course send again; False when it was not held."""
    hold = session.get(CourseHold, slug, with_for_update=True)
    if hold is None or not hold.held:
        return False
    hold.held, hold.resumed_at = False, now
    log.warning("course %s resumed (held since %s: %s)", slug, hold.held_at, hold.reason,
                extra={"event": "course resumed", "course": slug})  # fmt: skip
    return True
