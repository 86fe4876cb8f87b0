"""Signups from the form, written a batch at a time: one transaction, three lookups (built
once) and one flush for everyone who asked while the previous batch was being written.

Each signup is `subscriptions.enrol` with REQUEST (its confirmation email due at once), as
`drip subscribe` does one at a time. A suppressed address is answered like any other and
nothing is written for it (no enumeration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
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


# The batch's lookups, built once (expanding parameters take lists of any length): the known
# subscribers among its addresses, and their live subscriptions to its courses.
SUBSCRIBERS = select(Subscriber).where(Subscriber.email_key.in_(bindparam("keys", expanding=True)))
LIVE = (
    select(Subscriber.email_key, Subscription)
    .join(Subscription.subscriber)
    .where(
        Subscriber.email_key.in_(bindparam("keys", expanding=True)),
        Subscription.course_slug.in_(bindparam("slugs", expanding=True)),
        Subscription.state.in_(LIVE_STATES),
    )
)


def write(session: Session, signups: Sequence[Signup], now: datetime) -> list[bool]:
    """Enrol every signup in `session` (the caller commits); for each, whether a confirmation
    email is now due (not for an active subscriber, nor a suppressed address). The same
    address twice in a batch is one subscriber, as it would be one request after the other."""
    keys = [Subscriber.key_for(signup.address) for signup in signups]
    suppressed = suppressions.suppressed_keys(session, keys)
    asked = {"keys": list(set(keys)), "slugs": list({signup.course.slug for signup in signups})}
    subscribers = {s.email_key: s for s in session.scalars(SUBSCRIBERS, asked)}
    live = {(key, sub.course_slug): sub for key, sub in session.execute(LIVE, asked)}
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
