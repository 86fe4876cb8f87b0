"""The statements of a dispatch pass that are not about one claim: what is due, and writing a
whole batch at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Integer, Table, bindparam, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..models import Delivery, Subscriber, Subscription, SubscriptionState

log = logging.getLogger("drip.dispatch")
T = TypeVar("T")
DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
SUBSCRIPTIONS: Table = Subscription.__table__  # type: ignore[assignment]


def due(now: datetime, limit: int, course_slugs: list[str]) -> Any:
    """The claim query: subscriptions that are
    - active, of a course this process has loaded,
    - due at `now` (next_due_at <= now),
    - not leased by a live worker (no lease, or its deadline has passed);
    oldest due first, at most `limit`, locked for this transaction and skipped by the others."""
    return (
        select(
            Subscription.id,
            Subscription.course_slug,
            Subscription.current_day,
            Subscription.timezone,
            Subscription.send_time,
            Subscription.retry_attempts,
            Subscription.unsubscribe_token,
            Subscription.manage_token,
            Subscriber.email,
            Subscriber.name,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(
            Subscription.state == SubscriptionState.ACTIVE,
            Subscription.next_due_at <= now,
            Subscription.course_slug.in_(course_slugs),
            or_(Subscription.leased_until.is_(None), Subscription.leased_until <= now),
        )
        .order_by(Subscription.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Subscription)
    )


def update_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """UPDATE many rows by id: SET each row's other keys WHERE id = row_id.

    PostgreSQL gets one statement per group, its columns passed as arrays and joined back with
    unnest(); a statement per row would cost the server more than the rest of the pass. SQLite
    runs in-process, where executemany is as cheap."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for keys, group in groups.items():
        if session.get_bind().dialect.name != "postgresql":
            session.execute(update(table).where(table.c.id == bindparam("row_id")), group)
            continue
        sets = ", ".join(f"{k} = batch.{k}" for k in keys if k != "row_id")
        arrays = ", ".join(f":{k}" for k in keys)
        statement = text(
            f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS batch({', '.join(keys)}) "
            f"WHERE {table.name}.id = batch.row_id"
        ).bindparams(
            *(bindparam(k, [r[k] for r in group], type_=ARRAY(item_type(table, k))) for k in keys)
        )
        session.execute(statement)


def item_type(table: Table, key: str) -> Any:
    return Integer() if key == "row_id" else table.c[key].type


def reconnecting(step: Callable[[], T]) -> T:
    """Run `step` again once if the database connection was lost under it (a restart, a killed
    backend): the pool has discarded the dead connection and the retry gets a fresh one."""
    try:
        return step()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("lost the database connection (%s); reconnecting", exc.orig)
        return step()


def finish(session: Session, ids: list[int], state: SubscriptionState, now: datetime) -> None:
    """Move still-active subscriptions to a final state (an unsubscribe meanwhile stands)."""
    if ids:
        session.execute(
            update(Subscription)
            .where(Subscription.id.in_(ids), Subscription.state == SubscriptionState.ACTIVE)
            .values(state=state, next_due_at=None, ended_at=now, leased_until=None)
        )
