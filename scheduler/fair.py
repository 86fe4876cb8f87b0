"""The claim's order while sending is capped (a relay's daily cap or warm-up plan): fair across
time zones. Each subscription is ranked within its own zone, earliest due first, and the claim
takes rank 1 of every zone, then rank 2, and so on: one zone's big morning wave cannot hold the
next zone's wave back for hours, and within a zone lessons still go in due order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ..models import Subscriber, Subscription


def ranked(conditions: list[Any]) -> Any:
    """The due subscriptions' ids with their rank in their zone (`zone_rank`), from the same
    conditions as the claim. A subquery: PostgreSQL cannot lock rows (FOR UPDATE SKIP LOCKED)
    in the SELECT that holds the window, so the claim locks in the outer query."""
    rank = func.row_number().over(
        partition_by=Subscription.timezone,
        order_by=(Subscription.next_due_at, Subscription.id),
    )
    return (
        select(Subscription.id, rank.label("zone_rank"))
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(*conditions)
        .subquery("ranked")
    )


def order(query: Any, conditions: list[Any]) -> Any:
    """`query` (of Subscription, under `conditions`) ordered round robin across zones: by the
    rank in the zone, then the earliest due first."""
    zones = ranked(conditions)
    return query.join(zones, zones.c.id == Subscription.id).order_by(
        zones.c.zone_rank, Subscription.next_due_at, Subscription.id
    )
