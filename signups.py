"""Signups from the form, written a batch at a time: one transaction, two lookups and one
flush for everyone who asked while the previous batch was being written.

Each signup is `subscriptions.enrol` with REQUEST (its confirmation email due at once), as
`drip subscribe` does one at a time. A suppressed address is answered like any other and
nothing is written for it (no enumeration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import subscriptions, suppressions
from .course.model import Course
from .models import LIVE_STATES, Subscriber, Subscription, SubscriptionState
from .subscriptions import Event


@dataclass(frozen=True)
class Signup:
    course: Course
    address: str  # as subscriptions.normalize_email returns it
    name: str = ""
    timezone: str | None = None


def write(session: Session, signups: Sequence[Signup], now: datetime) -> list[bool]:
    """Enrol every signup in `session` (the caller commits); for each, whether a confirmation
    email is now due (not for an active subscriber, nor a suppressed address). The same
    address twice in a batch is one subscriber, as it would be one request after the other."""
    keys = [Subscriber.key_for(signup.address) for signup in signups]
    suppressed = suppressions.suppressed_keys(session, keys)
    subscribers = {s.email_key: s for s in session.scalars(
        select(Subscriber).where(Subscriber.email_key.in_(set(keys))))}  # fmt: skip
    live = _live(session, set(keys), {signup.course.slug for signup in signups})
    due = []
    for signup, key in zip(signups, keys, strict=True):
        if key in suppressed:
            due.append(False)
            continue
        subscriber = subscribers.get(key)
        sub = subscriptions.enrol(
            session, signup.course, signup.address, subscriber, live.get((key, signup.course.slug)),
            now=now, name=signup.name, timezone=signup.timezone, then=Event.REQUEST,
        )  # fmt: skip
        if subscriber is None:
            subscribers[key] = sub.subscriber  # new, so the next signup of it finds it
        live[(key, signup.course.slug)] = sub
        pending = sub.state is SubscriptionState.PENDING
        if pending:
            sub.created_at = now  # a fresh confirmation link lasts the full expiry again
        due.append(pending)
    session.flush()
    return due


def _live(session: Session, keys: set[str], slugs: set[str]) -> dict[tuple[str, str], Subscription]:
    """The live subscriptions of these addresses to these courses, by (address key, course)."""
    query = (
        select(Subscriber.email_key, Subscription)
        .join(Subscription.subscriber)
        .where(
            Subscriber.email_key.in_(keys),
            Subscription.course_slug.in_(slugs),
            Subscription.state.in_(LIVE_STATES),
        )
    )
    return {(key, sub.course_slug): sub for key, sub in session.execute(query)}
