"""Finding subscriptions for the API: one by id, or a page of them by course, state and
address, in id order after a cursor (the last id of the page before)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from .models import Subscriber, Subscription, SubscriptionState


def one(session: Session, subscription_id: int) -> Subscription | None:
    """The subscription of that id, its subscriber loaded with it."""
    return session.scalar(
        select(Subscription).options(joinedload(Subscription.subscriber))
        .where(Subscription.id == subscription_id)
    )  # fmt: skip


def page(
    session: Session, *, after: int, limit: int, course: str | None = None,
    state: SubscriptionState | None = None, email_key: str | None = None,
) -> list[Subscription]:  # fmt: skip
    """Up to `limit` subscriptions with an id above `after`, in id order, filtered."""
    query = (
        select(Subscription).join(Subscription.subscriber)
        .options(joinedload(Subscription.subscriber))
        .where(Subscription.id > after).order_by(Subscription.id).limit(limit)
    )  # fmt: skip
    if course is not None:
        query = query.where(Subscription.course_slug == course)
    if state is not None:
        query = query.where(Subscription.state == state)
    if email_key is not None:
        query = query.where(Subscriber.email_key == email_key)
    return list(session.scalars(query))
