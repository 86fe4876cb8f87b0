"""Every statement of a dispatch pass, named: what is due, claiming it, starting its deliveries,
and writing a whole batch at once."""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import Integer, Table, bindparam, exists, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from ..course.model import Course
from ..emails import Recipient
from ..models import (
    Delivery,
    DeliveryState,
    StateChange,
    Subscriber,
    Subscription,
    SubscriptionState,
    Suppression,
)
from ..subscriptions import confirmation_due_condition, due_condition
from .fair import order as fair_order

log = logging.getLogger("drip.dispatch")
T = TypeVar("T")
DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
SUBSCRIPTIONS: Table = Subscription.__table__  # type: ignore[assignment]


@dataclass
class Claim:
    """A leased subscription and its next lesson; the subscription facts decisions read."""

    subscription_id: int
    course: Course
    day: int
    recipient: Recipient
    timezone: str
    send_time: time | None
    retry_attempts: int
    message_id: str
    delivery_id: int | None = None  # None until started, for a message never tried before
    state: SubscriptionState = SubscriptionState.ACTIVE
    last_sent_at: datetime | None = None
    snoozed_until: datetime | None = None
    cadence: str | None = None  # the learner's days (schedule.CADENCES); None: the course's
    confirm_token: str = ""
    resend: bool = False  # a confirmation asked for again: a new Message-ID on the same row
    final: bool = False  # the lessons after this one were all received: it completes the course

    @property
    def current_day(self) -> int:
        """As subscriptions.decide reads it: the lesson before this one, or the last but one
        when this lesson is the last the learner needs."""
        return self.course.total_days - 1 if self.final else self.day - 1

    @property
    def lesson_id(self) -> str | None:
        """The stable id of the claimed lesson (None for a confirmation), kept on its delivery."""
        if self.is_confirmation or not 1 <= self.day <= self.course.total_days:
            return None
        return self.course.lesson(self.day).key

    @property
    def is_confirmation(self) -> bool:
        """A pending subscription's claim is for its confirmation email (delivery day 0)."""
        return self.state is SubscriptionState.PENDING


DUE_KINDS = {"lessons": due_condition, "confirmations": confirmation_due_condition}
ALL_KINDS = frozenset(DUE_KINDS)


def due(
    now: datetime, limit: int, course_slugs: list[str], kinds: frozenset[str], fair: bool = False,
    per_zone: bool = False,
) -> Any:  # fmt: skip
    """The claim query: subscriptions that are
    - due at `now`: a lesson (subscriptions.due_condition) and/or a confirmation email
      (confirmation_due_condition), as `kinds` says,
    - of a course this process has loaded,
    - not leased by a live worker (no lease, or its deadline has passed),
    - not of a suppressed address (suppressions.end_suppressed_due ends those);
    oldest due first (or, `fair` while sending is capped, round robin across time zones:
    scheduler/fair.py; `per_zone`: ranking each zone's first rows only, on PostgreSQL), at
    most `limit`, locked for this transaction and skipped by the others."""
    conditions = claimable(now, course_slugs, kinds)
    query = (
        select(
            Subscription.id,
            Subscription.course_slug,
            Subscription.current_day,
            Subscription.timezone,
            Subscription.send_time,
            Subscription.cadence,
            Subscription.rewalk,
            Subscription.retry_attempts,
            Subscription.unsubscribe_token,
            Subscription.manage_token,
            Subscription.state,
            Subscription.confirm_token,
            Subscriber.email,
            Subscriber.name,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(*conditions)
    )
    if fair:
        query = fair_order(query, conditions, *((now, limit) if per_zone else ()))
    else:
        query = query.order_by(Subscription.next_due_at)
    return query.limit(limit).with_for_update(skip_locked=True, of=Subscription)


def claimable(now: datetime, course_slugs: list[str], kinds: frozenset[str]) -> list[Any]:
    """The conditions of a claimable subscription (joined with its subscriber), as `due`
    lists them."""
    return [
        or_(*(condition(now) for kind, condition in DUE_KINDS.items() if kind in kinds)),
        Subscription.course_slug.in_(course_slugs),
        or_(Subscription.leased_until.is_(None), Subscription.leased_until <= now),
        ~exists().where(Suppression.email_key == Subscriber.email_key),
    ]


def claim_due(
    session: Session, now: datetime, limit: int, courses: Mapping[str, Course],
    lease: timedelta, new_message_id: Callable[[Course, int, int], str],
    kinds: frozenset[str] = ALL_KINDS, fair: bool = False,
) -> list[Claim]:  # fmt: skip
    """Lease what is due and return it as claims (`fair`: round robin across time zones);
    a message tried before keeps its Message-ID (a confirmation asked for again after one
    went out gets a new one)."""
    per_zone = fair and session.get_bind().dialect.name == "postgresql"
    rows = session.execute(due(now, limit, list(courses), kinds, fair, per_zone)).all()
    if per_zone and len(rows) < limit:  # few due, or others' claims hold the zones' first
        rows = session.execute(due(now, limit, list(courses), kinds, fair)).all()
    if not rows:
        return []
    ahead = received_ahead(session, [r.id for r in rows if _passes_over(r)])
    pairs = [(row.id, _day_of(row, ahead.get(row.id, set()))) for row in rows]
    tried = {
        (d.subscription_id, d.day): d
        for d in session.execute(
            select(Delivery.id, Delivery.subscription_id, Delivery.day, Delivery.message_id,
                   Delivery.state)
            .where(tuple_(Delivery.subscription_id, Delivery.day).in_(pairs))
        )
    }  # fmt: skip
    session.execute(
        update(Subscription)
        .where(Subscription.id.in_([row.id for row in rows]))
        .values(leased_until=now + lease)
    )
    claims = [_claim(row, pair[1], courses[row.course_slug], tried.get(pair), new_message_id)
              for row, pair in zip(rows, pairs, strict=True)]  # fmt: skip
    for claim in claims:  # every lesson after this one was received: it completes the course
        skip = ahead.get(claim.subscription_id, set())
        claim.final = all(day in skip for day in range(claim.day + 1, claim.course.total_days + 1))
    return claims


def _passes_over(row: Any) -> bool:
    """Lessons already received are passed over, unless the learner asked to go through them
    again (a restart or a jump); a course edit can put received lessons ahead of the next."""
    return row.state is not SubscriptionState.PENDING and not row.rewalk


def received_ahead(session: Session, subscription_ids: list[int]) -> dict[int, set[int]]:
    """The days after each subscription's current one whose lessons it has received already
    (usually none: only after the course was edited)."""
    if not subscription_ids:
        return {}
    found: dict[int, set[int]] = {}
    for sub_id, day in session.execute(
        select(Delivery.subscription_id, Delivery.day)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.subscription_id.in_(subscription_ids),
               Delivery.state == DeliveryState.SENT, Delivery.day > Subscription.current_day)
    ):  # fmt: skip
        found.setdefault(sub_id, set()).add(day)
    return found


def _day_of(row: Any, received: set[int]) -> int:
    """The delivery a claim is for: the next lesson not passed over, or 0 for a pending one's
    confirmation."""
    if row.state is SubscriptionState.PENDING:
        return 0
    day = row.current_day + 1
    while day in received:
        day += 1
    return day


def _claim(
    row: Any, day: int, course: Course, before: Any,
    new_message_id: Callable[[Course, int, int], str],
) -> Claim:  # fmt: skip
    resend = before is not None and before.state is DeliveryState.SENT
    keep = before is not None and not resend
    return Claim(
        subscription_id=row.id, course=course, day=day,
        recipient=Recipient(row.email, row.name, row.unsubscribe_token, row.manage_token,
                            row.cadence),
        timezone=row.timezone, send_time=row.send_time, retry_attempts=row.retry_attempts,
        cadence=row.cadence,
        message_id=before.message_id if keep else new_message_id(course, row.id, day),
        delivery_id=before.id if before is not None else None, state=row.state,
        confirm_token=row.confirm_token, resend=resend,
    )  # fmt: skip


def start_deliveries(session: Session, claims: Sequence[Claim], now: datetime) -> set[int]:
    """Record a 'sending' delivery for each claim whose subscription is still in the state it
    was claimed in (an unsubscribe or a confirmation meanwhile stops it); the ids of those
    subscriptions. Claims of the others are left alone (the caller releases them)."""
    states = dict(
        session.execute(
            select(Subscription.id, Subscription.state).where(
                Subscription.id.in_([c.subscription_id for c in claims])
            )
        ).all()
    )
    live = {c.subscription_id for c in claims if states.get(c.subscription_id) is c.state}
    started = [c for c in claims if c.subscription_id in live]
    again = [c for c in started if c.delivery_id is not None]
    if again:
        session.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == bindparam("row_id"))
            .values(state=DeliveryState.SENDING, attempts=DELIVERIES.c.attempts + 1,
                    updated_at=now, message_id=bindparam("new_message_id"),
                    lesson_id=bindparam("new_lesson_id")),
            [{"row_id": c.delivery_id, "new_message_id": c.message_id,
              "new_lesson_id": c.lesson_id} for c in again],
        )  # fmt: skip
    new = [c for c in started if c.delivery_id is None]
    if new:
        rows = [
            {"subscription_id": c.subscription_id, "day": c.day, "state": DeliveryState.SENDING,
             "message_id": c.message_id, "smtp_reply": "", "attempts": 1, "created_at": now,
             "updated_at": now, "lesson_id": c.lesson_id}
            for c in new
        ]  # fmt: skip
        returned = session.execute(
            insert(DELIVERIES).returning(DELIVERIES.c.id, DELIVERIES.c.subscription_id), rows
        )
        ids = {r.subscription_id: r.id for r in returned}
        for claim in new:
            claim.delivery_id = ids[claim.subscription_id]
    return live


def release(session: Session, subscription_ids: list[int]) -> None:
    """Give up the lease of claims that will not be sent (the subscription stopped meanwhile)."""
    if subscription_ids:
        session.execute(
            update(Subscription)
            .where(Subscription.id.in_(subscription_ids))
            .values(leased_until=None)
        )


def add_state_changes(session: Session, rows: list[dict[str, Any]]) -> None:
    """The history rows of a batch's changes of state, in one statement."""
    if rows:
        session.execute(insert(StateChange), rows)


def update_rows(
    session: Session, table: Table, rows: list[dict[str, Any]], *,
    only_in: SubscriptionState | None = None,
) -> None:  # fmt: skip
    """UPDATE many rows by id: SET each row's other keys WHERE id = row_id (and, with
    `only_in`, only rows still in that state: an unsubscribe meanwhile stands).

    PostgreSQL gets one statement per group, its columns passed as arrays and joined back with
    unnest(); a statement per row would cost the server more than the rest of the pass. SQLite
    runs in-process, where executemany is as cheap."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for keys, group in groups.items():
        if session.get_bind().dialect.name != "postgresql":
            where = [table.c.id == bindparam("row_id")]
            if only_in is not None:
                where.append(table.c.state == only_in.value)
            session.execute(update(table).where(*where), group)
            continue
        sets = ", ".join(f"{k} = batch.{k}" for k in keys if k != "row_id")
        arrays = ", ".join(f":{k}" for k in keys)
        guard = f" AND {table.name}.state = '{only_in.value}'" if only_in is not None else ""
        statement = text(
            f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS batch({', '.join(keys)}) "
            f"WHERE {table.name}.id = batch.row_id{guard}"
        ).bindparams(
            *(bindparam(k, [r[k] for r in group], type_=ARRAY(item_type(table, k))) for k in keys)
        )
        session.execute(statement)


def item_type(table: Table, key: str) -> Any:
    return Integer() if key == "row_id" else table.c[key].type


def reconnecting(
    step: Callable[[], T], *, patience: float = 0.0, sleep: Callable[[float], None] = clock.sleep
) -> T:
    """Run `step`, and again when the database connection was lost under it (a restart, a killed
    backend) or cannot be made: once at once, then with a growing wait for up to `patience`
    seconds in all. The pool discards dead connections, so each retry gets a fresh one."""
    waited, delay, retried = 0.0, 0.25, False
    while True:
        try:
            return step()
        except DBAPIError as exc:
            if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
                raise
            if retried and waited + delay > patience:
                raise
            log.warning("lost the database connection (%s); reconnecting",
                        " ".join(str(exc.orig).split())[:200])  # fmt: skip
            if retried:
                sleep(delay)
                waited, delay = waited + delay, min(delay * 2, 5.0)
            retried = True
