"""The learner's pace: the next lesson now, a pause of a few days, lesson 1 again, or a lesson
already received again, from a link in a lesson email or the preferences page.

Mail scanners open every link, so a link only shows a page with one button; its POST acts once.
The link names the lesson it was made for and the page carries a stamp of the subscription as
it was shown: a second POST (a double click, a reload) or a link from an older email finds the
subscription moved on and does nothing more. What an action does is decided by
subscriptions.decide; this module checks the request, records the action (counted by
`drip stats` and /metrics) and logs it. The caller commits, then wakes the scheduler.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections import Counter
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .course.model import Course
from .models import Delivery, DeliveryState, PaceAction, Subscription
from .subscriptions import Event, apply, decide

log = logging.getLogger("drip.pace")
ACTIONS = {"next": Event.NEXT_NOW, "snooze": Event.SNOOZE, "restart": Event.RESTART,
           "jump": Event.JUMP}  # fmt: skip
SNOOZE_DAYS = (1, 3, 7, 14)  # the choices offered; "pause for a week" in every email


class Outcome(enum.StrEnum):
    DONE = "done"
    MOVED_ON = "moved on"  # done already, or the link is from an email before the last lesson
    BUSY = "busy"  # a lesson is being sent to this subscriber right now
    REFUSED = "refused"  # it does not apply (an ended course, no next lesson, not received)


def stamp(sub: Subscription) -> str:
    """What the subscription is now, in 16 hex digits: the page's button carries it, and a POST
    whose stamp no longer matches (the action was done, or a lesson went out) changes nothing."""
    facts = (sub.state, sub.current_day, sub.next_due_at, sub.last_sent_at, sub.snoozed_until)
    return hashlib.sha256(repr(facts).encode()).hexdigest()[:16]


def act(
    session: Session, sub: Subscription, course: Course, action: str, *, lesson: int,
    target: int, given_stamp: str, now: datetime,
) -> Outcome:  # fmt: skip
    """Take `action` (a key of ACTIONS) for a link made after lesson `lesson`, once. The
    subscription row is locked first (PostgreSQL; SQLite's writer holds the database)."""
    session.refresh(sub, with_for_update=True)
    if sub.leased_until is not None and sub.leased_until > now:
        return Outcome.BUSY
    if sub.current_day != lesson or given_stamp != stamp(sub):
        return Outcome.MOVED_ON
    if action == "jump" and not has_received(session, sub.id, target):
        return Outcome.REFUSED
    if not apply(sub, ACTIONS[action], course, now, target=target):
        return Outcome.REFUSED
    session.add(PaceAction(subscription_id=sub.id, course_slug=sub.course_slug, action=action,
                           lesson=lesson, target=target, created_at=now))  # fmt: skip
    log.info(
        "subscription %d of %s: %s from lesson %d (%d)", sub.id, sub.course_slug, action,
        lesson, target,
        extra={"event": "pace", "subscription_id": sub.id, "course": sub.course_slug,
               "action": action, "day": lesson, "target": target},
    )  # fmt: skip
    return Outcome.DONE


def has_received(session: Session, subscription_id: int, day: int) -> bool:
    """Whether lesson `day` went out to the subscription (it may then be read online)."""
    return day in received(session, subscription_id, day)


def received(session: Session, subscription_id: int, day: int | None = None) -> list[int]:
    """The lessons that went out to the subscription (only `day`, if given), in order."""
    query = select(Delivery.day).where(
        Delivery.subscription_id == subscription_id,
        Delivery.day > 0,
        Delivery.state == DeliveryState.SENT,
    )
    if day is not None:
        query = query.where(Delivery.day == day)
    return sorted(session.scalars(query))


def counts(session: Session, course: str | None = None) -> Counter[tuple[str, str, int]]:
    """How many pace actions were taken, by (course, action, lesson taken from)."""
    query = select(PaceAction.course_slug, PaceAction.action, PaceAction.lesson,
                   func.count()).group_by(PaceAction.course_slug, PaceAction.action,
                                          PaceAction.lesson)  # fmt: skip
    if course is not None:
        query = query.where(PaceAction.course_slug == course)
    rows = session.execute(query)
    return Counter({(slug, action, lesson): n for slug, action, lesson, n in rows})


def applies(sub: Subscription, course: Course, action: str, target: int, now: datetime) -> bool:
    """Whether `action` would change the subscription (its state, the course's end)."""
    return decide(sub, ACTIONS[action], now, course, target=target) is not None
