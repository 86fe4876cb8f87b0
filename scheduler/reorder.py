"""A course edited under its live subscribers: lessons inserted, removed or reordered.

Each delivery keeps the stable id of its lesson. When the lessons' days no longer match their
ids (the author changed the course), `reconcile` puts each delivery at its lesson's new day (a
removed lesson's delivery at a negative day, kept as history) and each live subscriber at the
first lesson they have not received in the new order; the claim then passes over lessons they
have already received. Nobody gets a lesson twice, nobody skips one they have not seen, and
the numbers in the emails follow the new course. `plan` says what an edit will do, before it
is deployed (`drip course diff`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from ..course.model import Course
from ..models import LIVE_STATES, Delivery, DeliveryState, Subscription, SubscriptionState
from ..subscriptions import Event, apply

log = logging.getLogger("drip.dispatch")
State = SubscriptionState


def moved(session: Session, course: Course) -> list[int]:
    """Subscriptions of `course` with a delivery whose day no longer holds its lesson."""
    pairs = [(lesson.day, lesson.key) for lesson in course.lessons]
    query = (
        select(Delivery.subscription_id)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.course_slug == course.slug, Delivery.lesson_id.is_not(None),
               Delivery.day > 0, tuple_(Delivery.day, Delivery.lesson_id).not_in(pairs))
        .distinct()
    )  # fmt: skip
    return sorted(session.scalars(query))


def first_unreceived(course: Course, received: set[str]) -> int:
    """How many lessons at the start of the course were received: the learner's new day."""
    for lesson in course.lessons:
        if lesson.key not in received:
            return lesson.day - 1
    return course.total_days


def reconcile(session: Session, course: Course, now: datetime) -> int:
    """Move deliveries and live subscribers of an edited course (see above); how many."""
    count = 0
    for sub_id in moved(session, course):
        rows = session.execute(
            select(Delivery.id, Delivery.day, Delivery.lesson_id, Delivery.state)
            .where(Delivery.subscription_id == sub_id)
        ).all()  # fmt: skip
        if any(row.lesson_id is None and row.day > 0 for row in rows):
            log.warning("subscription %d has lessons from before lesson ids were kept; "
                        "left as it is", sub_id)  # fmt: skip
            continue
        _renumber(session, [(row.id, row.lesson_id) for row in rows if row.lesson_id], course)
        received = {row.lesson_id for row in rows if row.state is DeliveryState.SENT}
        sub = session.get(Subscription, sub_id)
        if sub is not None and sub.state in LIVE_STATES and sub.state is not State.PENDING:
            sub.current_day, sub.rewalk = first_unreceived(course, received), False
            if sub.current_day >= course.total_days:
                apply(sub, Event.COMPLETE, course, now)
        count += 1
        log.info("subscription %d of %s moved to the edited course", sub_id, course.slug)
    return count


def _renumber(session: Session, rows: list[tuple[int, str]], course: Course) -> None:
    """Each delivery to its lesson's new day; first all out of the way (negative days), so
    (subscription, day) stays unique at every step."""
    for row_id, _ in rows:
        session.execute(update(Delivery).where(Delivery.id == row_id).values(day=-row_id))
    for row_id, lesson_id in rows:
        day = course.position(lesson_id)
        if day is not None:
            session.execute(update(Delivery).where(Delivery.id == row_id).values(day=day))


@dataclass
class Plan:
    """What an edit of a course will do to its subscribers."""

    next_lessons: Counter[str] = field(default_factory=Counter)  # lesson id -> live subscribers
    moved: int = 0  # live subscribers whose next lesson changes
    inserted: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (get it, never)
    removed: list[str] = field(default_factory=list)
    teasers: list[tuple[str, str, str]] = field(default_factory=list)  # lesson, was, now


def plan(session: Session, old: Course, new: Course) -> Plan:
    """The subscribers of `old` (as the database has them) against the edited course `new`."""
    result = Plan(removed=[x.key for x in old.lessons if new.position(x.key) is None])
    inserted = [x.key for x in new.lessons if old.position(x.key) is None]
    received: dict[int, set[str]] = {}
    for sub_id, lesson_id in session.execute(
        select(Delivery.subscription_id, Delivery.lesson_id)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.course_slug == old.slug, Delivery.state == DeliveryState.SENT)
    ):  # fmt: skip
        received.setdefault(sub_id, set()).add(lesson_id or "")
    subs = session.execute(
        select(Subscription.id, Subscription.state, Subscription.current_day)
        .where(Subscription.course_slug == old.slug)
    ).all()  # fmt: skip
    counts = {key: [0, 0] for key in inserted}
    for sub in subs:
        got = received.get(sub.id, set())
        for key in inserted:  # a pending subscriber starts at lesson 1: they get it too
            counts[key][0 if sub.state in LIVE_STATES else 1] += 1
        if sub.state not in LIVE_STATES or sub.state is State.PENDING:
            continue
        day = first_unreceived(new, got)
        result.next_lessons[new.lesson(day + 1).key if day < new.total_days else "(complete)"] += 1
        old_next = old.lesson(sub.current_day + 1).key if sub.current_day < old.total_days else ""
        result.moved += int(day < new.total_days and new.lesson(day + 1).key != old_next)
    result.inserted = {key: (get, never) for key, (get, never) in counts.items()}
    result.teasers = _teasers(old, new)
    return result


def _teasers(old: Course, new: Course) -> list[tuple[str, str, str]]:
    """Lessons in both whose closing teaser now announces another lesson."""
    changed = []
    for lesson in new.lessons:
        day = old.position(lesson.key)
        if day is None:
            continue
        was, now = old.next_lesson(day), new.next_lesson(lesson.day)
        if (was and was.key) != (now and now.key):
            changed.append((lesson.key, was.key if was else "(end)", now.key if now else "(end)"))
    return changed
