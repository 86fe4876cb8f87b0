"""The claim's order while sending is capped (a relay's daily cap or warm-up plan): fair across
time zones. Each subscription is ranked within its own zone, earliest due first, and the claim
takes rank 1 of every zone, then rank 2, and so on: one zone's big morning wave cannot hold the
next zone's wave back for hours, and within a zone lessons still go in due order.

Ranking every due row costs a sort of all of them (433 ms at 100,000 due, bench/fair.py). On
PostgreSQL the (timezone, next_due_at, id) index offers each zone's earliest due rows in order:
the zones are found by one index probe each, only the first PER_ZONE x the claim's limit of
every zone are ranked, and as many of them, in the claim's order, are offered to the claim (a
row further down could not be claimed: 37 ms). Another worker's claim under way may hold those
rows locked; a claim that comes back short ranks every due row, as SQLite always does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true

from ..models import Subscriber, Subscription

PER_ZONE = 4  # each zone's rows ranked: this many claims' worth, as others may hold some


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


def ranked_per_zone(conditions: list[Any], now: datetime, limit: int) -> Any:
    """As `ranked`, of each zone's first `limit` x PER_ZONE due rows only, and the first as
    many of those in the claim's order: the zones by a loose scan of the (timezone,
    next_due_at, id) index (the next zone is the least one after the last), then a LATERAL
    read of each zone's earliest due rows, in the index's order."""
    zones = select(func.min(Subscription.timezone).label("tz")).cte("zones", recursive=True)
    after = select(func.min(Subscription.timezone)).where(Subscription.timezone > zones.c.tz)
    zones = zones.union_all(select(after.scalar_subquery()).where(zones.c.tz.is_not(None)))
    first = (
        select(Subscription.id, Subscription.timezone, Subscription.next_due_at)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(*conditions, Subscription.timezone == zones.c.tz, Subscription.next_due_at <= now)
        .order_by(Subscription.next_due_at, Subscription.id)
        .limit(limit * PER_ZONE)
        .lateral("zone_first")
    )
    rank = (
        func.row_number()
        .over(partition_by=first.c.timezone, order_by=(first.c.next_due_at, first.c.id))
        .label("zone_rank")
    )
    return (
        select(first.c.id, rank)
        .select_from(zones)
        .join(first, true())
        .order_by(rank, first.c.next_due_at, first.c.id)
        .limit(limit * PER_ZONE)
        .subquery("ranked")
    )


def order(
    query: Any, conditions: list[Any], now: datetime | None = None, limit: int | None = None
) -> Any:
    """`query` (of Subscription, under `conditions`) ordered round robin across zones: by the
    rank in the zone, then the earliest due first. With `now` and `limit`, only each zone's
    first rows are ranked (ranked_per_zone)."""
    zones = ranked(conditions) if now is None or limit is None else ranked_per_zone(
        conditions, now, limit
    )  # fmt: skip
    return query.join(zones, zones.c.id == Subscription.id).order_by(
        zones.c.zone_rank, Subscription.next_due_at, Subscription.id
    )
