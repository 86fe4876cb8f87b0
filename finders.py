"""Finding subscribers and subscriptions: by address, by course, by a link's token.

Read-only queries, kept apart from the lifecycle in subscriptions.py (which re-exports them, so
callers ask `subscriptions.find_live` as before); the caller's session decides what they see.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from .inputs import normalize_email
from .models import LIVE_STATES, Subscriber, Subscription, SubscriptionState


def find_subscriber(session: Session, address: str) -> Subscriber | None:
    return session.scalar(
        select(Subscriber).where(Subscriber.email_key == Subscriber.key_for(address))
    )


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


def ever_subscribed(session: Session, subscriber_id: int, course_slug: str) -> bool:
    """Whether the subscriber has any subscription to the course, live or ended."""
    query = select(Subscription.id).where(
        Subscription.subscriber_id == subscriber_id, Subscription.course_slug == course_slug
    )
    return session.scalar(query.limit(1)) is not None


def find_live(
    session: Session, email: str, course_slug: str | None = None,
    states: Sequence[SubscriptionState] = LIVE_STATES,
) -> list[Subscription]:  # fmt: skip
    """The live subscriptions of `email` (of one course, if given)."""
    query = (
        select(Subscription)
        .join(Subscriber)
        .where(
            Subscriber.email_key == Subscriber.key_for(normalize_email(email)),
            Subscription.state.in_(states),
        )
        .order_by(Subscription.id)
    )
    if course_slug is not None:
        query = query.where(Subscription.course_slug == course_slug)
    return list(session.scalars(query))


def find_failed(session: Session, email: str, course_slug: str | None = None) -> list[Subscription]:
    """The subscriptions of `email` whose next lesson was given up on."""
    return find_live(session, email, course_slug, states=(SubscriptionState.FAILED,))


def by_token(session: Session, column: str, token: str) -> Subscription | None:
    """The subscription whose `column` token is `token`, compared in constant time."""
    if not token or len(token) > 64 or not token.isascii() or "\x00" in token:
        return None
    subscription = session.scalar(
        select(Subscription).where(getattr(Subscription, column) == token)
    )
    if subscription is None or not hmac.compare_digest(getattr(subscription, column), token):
        return None
    return subscription
