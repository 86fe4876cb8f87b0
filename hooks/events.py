"""Which changes of a subscription other systems are told of, and what they are told.

subscriptions.apply calls `announce` after every transition it writes; the dispatcher builds
its lesson events itself and writes them with its batch. Both go through outbox.enqueue, in
the transaction of the change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import object_session

from ..models import Subscription, SubscriptionState
from .outbox import HookEvent, enqueue, listening

# The states whose arrival is an event, whatever caused it.
ARRIVALS = {
    SubscriptionState.UNSUBSCRIBED: "subscriber.unsubscribed",
    SubscriptionState.BOUNCED: "subscriber.bounced",
    SubscriptionState.COMPLETED: "course.completed",
}


def transition_type(
    event: str, previous: SubscriptionState, state: SubscriptionState
) -> str | None:
    """The event type of a transition, or None for one nobody is told of."""
    if event == "confirm" and previous is SubscriptionState.PENDING:
        return "subscriber.confirmed"
    return ARRIVALS.get(state) if previous is not state else None


def subscription_data(sub: Subscription, **more: Any) -> dict[str, Any]:
    """What every event about a subscription says."""
    return {"subscription_id": sub.id, "email": sub.subscriber.email, "course": sub.course_slug,
            "state": str(sub.state), "current_day": sub.current_day, **more}  # fmt: skip


def announce(sub: Subscription, event: str, previous: SubscriptionState, now: datetime) -> None:
    """Queue the webhook messages of a transition just applied to `sub`, in its session."""
    kind = transition_type(event, previous, sub.state)
    session = object_session(sub)
    if kind is None or session is None or not listening(session, kind):
        return
    enqueue(session, [HookEvent(kind, subscription_data(sub), sub.id)], now)
