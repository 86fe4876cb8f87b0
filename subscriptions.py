"""The subscription lifecycle: subscribe, confirm, pause, resume, unsubscribe.

Each step takes `now` and a session; the caller commits. The CLI and the web pages share these.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from .course.model import Course
from .errors import InvalidInput
from .models import LIVE_STATES, Subscriber, Subscription, SubscriptionState
from .scheduler.schedule import resume_due

log = logging.getLogger("drip.subscriptions")
MAX_NAME_LENGTH = 200


def normalize_email(address: str) -> str:
    """The address in its normal form; InvalidInput saying why it is not an address."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"{address!r} is not a valid email address: {exc}") from exc


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"{name!r} is not a known time zone (e.g. Europe/Paris)") from exc
    return name


def check_name(name: str) -> str:
    """Names are kept as typed (they are data, shown escaped), only bounded in length."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"the name is longer than {MAX_NAME_LENGTH} characters")
    return name


def subscribe(
    session: Session,
    course: Course,
    email: str,
    *,
    now: datetime,
    name: str = "",
    timezone: str | None = None,
    confirmed: bool = False,
) -> Subscription:
    """The live subscription of `email` to `course`, created pending (or active if `confirmed`).

    An address already pending, active or paused keeps its subscription as it is; an ended one
    (unsubscribed, bounced, completed) starts again from lesson 1 as a new subscription.
    """
    address = normalize_email(email)
    zone = check_timezone(timezone or course.timezone)
    name = check_name(name)
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.email_key == Subscriber.key_for(address))
    )
    if subscriber is None:
        subscriber = Subscriber(
            email=address, email_key=Subscriber.key_for(address), name=name, created_at=now
        )
        session.add(subscriber)
        session.flush()
    elif name:
        subscriber.name = name
    subscription = live_subscription(session, subscriber.id, course.slug)
    if subscription is None:
        subscription = Subscription(
            subscriber=subscriber,
            course_slug=course.slug,
            state=SubscriptionState.PENDING,
            current_day=0,
            retry_attempts=0,
            timezone=zone,
            created_at=now,
        )
        session.add(subscription)
    session.flush()  # the new subscription gets its id, for the log line of its activation
    if confirmed:
        activate(subscription, now)
    return subscription


def live_subscription(
    session: Session, subscriber_id: int, course_slug: str
) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.course_slug == course_slug,
            Subscription.state.in_(LIVE_STATES),
        )
    )


def find_live(session: Session, email: str, course_slug: str | None = None) -> list[Subscription]:
    """The live subscriptions of `email` (of one course, if given)."""
    query = (
        select(Subscription)
        .join(Subscriber)
        .where(
            Subscriber.email_key == Subscriber.key_for(normalize_email(email)),
            Subscription.state.in_(LIVE_STATES),
        )
        .order_by(Subscription.id)
    )
    if course_slug is not None:
        query = query.where(Subscription.course_slug == course_slug)
    return list(session.scalars(query))


def by_token(session: Session, column: str, token: str) -> Subscription | None:
    """The subscription whose `column` token is `token`, compared in constant time."""
    if not token or len(token) > 64:
        return None
    subscription = session.scalar(
        select(Subscription).where(getattr(Subscription, column) == token)
    )
    if subscription is None or not hmac.compare_digest(getattr(subscription, column), token):
        return None
    return subscription


def _changed(subscription: Subscription, state: SubscriptionState) -> None:
    """Move to `state`, with one structured log line (see logs.py)."""
    previous, subscription.state = subscription.state, state
    log.info(
        "subscription %s of %s: %s -> %s", subscription.id, subscription.course_slug,
        previous, state,
        extra={"event": "state", "subscription_id": subscription.id, "state": str(state),
               "course": subscription.course_slug},
    )  # fmt: skip


def activate(subscription: Subscription, now: datetime) -> None:
    """Double opt-in done: lesson 1 is due at once. Activating twice changes nothing."""
    if subscription.state is SubscriptionState.PENDING:
        _changed(subscription, SubscriptionState.ACTIVE)
        subscription.confirmed_at = now
        subscription.next_due_at = now


def unsubscribe(subscription: Subscription, now: datetime) -> None:
    if subscription.state in LIVE_STATES:
        _changed(subscription, SubscriptionState.UNSUBSCRIBED)
        subscription.next_due_at = None
        subscription.ended_at = now


def pause(subscription: Subscription) -> None:
    if subscription.state is SubscriptionState.ACTIVE:
        _changed(subscription, SubscriptionState.PAUSED)
        subscription.next_due_at = None


def resume(subscription: Subscription, course: Course, now: datetime) -> None:
    """Active again: the next lesson at the next send time, never two on one local day."""
    if subscription.state is not SubscriptionState.PAUSED:
        return
    _changed(subscription, SubscriptionState.ACTIVE)
    subscription.next_due_at = resume_due(
        now,
        ZoneInfo(subscription.timezone),
        subscription.send_time or course.send_time,
        course.interval_days,
        subscription.last_sent_at,
    )


def is_given_up(subscription: Subscription) -> bool:
    """Active but due never: dispatch gave up on its next lesson after retrying too long."""
    return subscription.state is SubscriptionState.ACTIVE and subscription.next_due_at is None


def retry(subscription: Subscription, now: datetime) -> bool:
    """The operator's retry of a given-up lesson: due at once, with a fresh retry budget.
    Returns False (and changes nothing) for a subscription that was not given up."""
    if not is_given_up(subscription):
        return False
    subscription.next_due_at = now
    subscription.retry_attempts = 0
    return True
