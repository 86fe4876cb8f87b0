"""The suppression list: addresses drip never sends to, with why and since when.

Keys are Subscriber.key_for(address) (case-folded), so "Ana@Example.com" and "ana@example.com"
are one entry. Suppressing ends the address's live subscriptions at once (through
subscriptions.apply); the dispatcher also refuses to claim a suppressed address, and marks any
it finds due.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TextIO

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from . import subscriptions
from .course.model import Course
from .errors import InvalidInput
from .models import (
    LIVE_STATES,
    Subscriber,
    Subscription,
    Suppression,
    SuppressionReason,
    insert_new,
)
from .subscriptions import Event

COLUMNS = ("email", "reason", "detail", "created_at")
# What ends a live subscription of an address suppressed for each reason.
ENDING = {
    SuppressionReason.HARD_BOUNCE: Event.REPORTED_BOUNCE,
    SuppressionReason.COMPLAINT: Event.UNSUBSCRIBE,
    SuppressionReason.MANUAL: Event.UNSUBSCRIBE,
}


def find(session: Session, address: str) -> Suppression | None:
    return session.scalar(
        select(Suppression).where(Suppression.email_key == Subscriber.key_for(address))
    )


def is_suppressed(session: Session, address: str) -> bool:
    return find(session, address) is not None


# Built once: a batch of signups asks it with a list of any length (an expanding parameter).
SUPPRESSED_KEYS = select(Suppression.email_key).where(
    Suppression.email_key.in_(bindparam("keys", expanding=True))
)


def suppressed_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of these address keys are suppressed."""
    wanted = list(set(keys))
    if not wanted:
        return set()
    return set(session.scalars(SUPPRESSED_KEYS, {"keys": wanted}))


def suppress(
    session: Session, address: str, reason: SuppressionReason, detail: str, now: datetime,
    courses: dict[str, Course],
) -> bool:  # fmt: skip
    """Suppress `address` and end its live subscriptions; False if it already was (the first
    reason stands)."""
    return bool(suppress_all(session, [(address, reason, detail)], now, courses))


def suppress_all(
    session: Session, entries: Sequence[tuple[str, SuppressionReason, str]], now: datetime,
    courses: dict[str, Course],
) -> set[str]:  # fmt: skip
    """Suppress each (address, reason, detail) and end the live subscriptions of those newly
    suppressed: one INSERT and one query per ending for the lot. An address suppressed already
    (or twice in `entries`) keeps its first reason. The address keys newly suppressed."""
    rows: dict[str, dict[str, object]] = {}
    for address, reason, detail in entries:
        rows.setdefault(Subscriber.key_for(address), {
            "email_key": Subscriber.key_for(address), "email": address.strip(),
            "reason": reason, "detail": detail[:500], "created_at": now})  # fmt: skip
    table = Suppression.__table__
    added = insert_new(session, table, list(rows.values()), table.c.email_key)  # type: ignore[arg-type]
    for event in dict.fromkeys(ENDING.values()):
        keys = [key for key in added if ENDING[rows[key]["reason"]] is event]  # type: ignore[index]
        if keys:
            end_live(session, keys, event, now, courses)
    session.flush()
    return added


def end_live(
    session: Session, keys: list[str], event: Event, now: datetime, courses: dict[str, Course]
) -> int:
    """Apply `event` to every live subscription of these address keys; how many ended."""
    query = (
        select(Subscription)
        .join(Subscriber)
        .where(Subscriber.email_key.in_(keys), Subscription.state.in_(LIVE_STATES))
    )
    ended = 0
    for sub in session.scalars(query):
        ended += subscriptions.apply(sub, event, courses.get(sub.course_slug), now)
    return ended


def end_suppressed_due(session: Session, now: datetime, courses: dict[str, Course]) -> int:
    """End the due subscriptions of suppressed addresses (suppressed behind drip's back, e.g.
    straight into the table): they are marked, not left due for ever."""
    found = session.execute(
        select(Subscriber.email_key, Suppression.reason)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .join(Suppression, Suppression.email_key == Subscriber.email_key)
        .where(Subscription.state.in_(LIVE_STATES), Subscription.next_due_at <= now)
        .limit(500)
    ).all()
    return sum(end_live(session, [key], ENDING[reason], now, courses) for key, reason in found)


def remove(session: Session, address: str) -> bool:
    """Lift a suppression; the address may subscribe again (its ended subscriptions stay)."""
    result = session.execute(
        delete(Suppression).where(Suppression.email_key == Subscriber.key_for(address))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def listing(session: Session, search: str = "", limit: int | None = None) -> list[Suppression]:
    """The list by address; only addresses containing `search` (any case), at most `limit`."""
    query = select(Suppression).order_by(Suppression.email_key).limit(limit)
    if search:
        query = query.where(Suppression.email_key.contains(search.casefold(), autoescape=True))
    return list(session.scalars(query))


def export_rows(session: Session, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = listing(session)
    for row in rows:
        writer.writerow((row.email, row.reason.value, row.detail, row.created_at.isoformat()))
    return len(rows)


def import_rows(
    session: Session, file: TextIO, now: datetime, courses: dict[str, Course], source: str
) -> tuple[int, list[str]]:
    """Suppress each address of a CSV with an `email` column (and optionally `reason`,
    `detail`); (newly suppressed, problems by line)."""
    reader = csv.DictReader(file)
    if "email" not in [name.strip().lower() for name in reader.fieldnames or []]:
        raise InvalidInput(f"{source}:1: the header must name an 'email' column")
    added, problems = 0, []
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        try:
            address = subscriptions.normalize_email(row.get("email", ""))
            reason = SuppressionReason(row.get("reason") or SuppressionReason.MANUAL.value)
        except (InvalidInput, ValueError) as exc:
            problems.append(f"{source}:{reader.line_num}: {exc}")
            continue
        added += suppress(session, address, reason, row.get("detail", ""), now, courses)
    return added, problems
