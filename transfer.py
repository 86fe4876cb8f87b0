"""Subscriber lists in and out as CSV, columns email, name, timezone, state, current_day.

An import runs in the caller's one transaction: bad rows are reported with their line numbers
and left out, the good ones go in together, and a crash writes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import subscriptions
from .course.model import Course
from .errors import InvalidInput
from .models import Subscriber, Subscription, SubscriptionState
from .subscriptions import Event

COLUMNS = ("email", "name", "timezone", "state", "current_day")


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = (
        0  # already known to the course: subscribed now, or before (an unsubscribe stands)
    )
    problems: list[str] = field(default_factory=list)


def read_rows(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line number, row) pairs, and header problems. A BOM and CRLF endings are fine."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if "email" not in header:
            return [], [f"{path}:1: the header must name an 'email' column (columns: {COLUMNS})"]
        reader.fieldnames = header
        rows = [
            (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader
        ]
    return rows, []


def import_rows(
    session: Session,
    course: Course,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    source: str,
    now: datetime,
    confirmed: bool = False,
    progress: Callable[[], None] | None = None,
) -> ImportReport:
    """Subscribe each good row; an active row at day k has lesson k+1 due at once."""
    report = ImportReport()
    for line, row in rows:
        try:
            state, day = _state_and_day(row, course, confirmed)
            email = subscriptions.normalize_email(row.get("email", ""))
            existing = subscriptions.find_subscriber(session, email)
            if existing and subscriptions.ever_subscribed(session, existing.id, course.slug):
                report.skipped += 1
                continue
            sub = subscriptions.subscribe(
                session, course, email, now=now, name=row.get("name", ""),
                timezone=row.get("timezone") or None,
            )  # fmt: skip
        except InvalidInput as exc:
            report.problems.append(f"{source}:{line}: {exc}")
            continue
        finally:
            if progress is not None:
                progress()
        _place(sub, state, day, course, now)
        report.imported += 1
    session.flush()
    return report


def _state_and_day(row: dict[str, str], course: Course, confirmed: bool) -> tuple[str, int]:
    default = SubscriptionState.ACTIVE if confirmed else SubscriptionState.PENDING
    state = row.get("state") or default.value
    if state not in {s.value for s in SubscriptionState}:
        raise InvalidInput(
            f"state {state!r} is not one of {', '.join(s.value for s in SubscriptionState)}"
        )
    try:
        day = int(row.get("current_day") or 0)
    except ValueError:
        raise InvalidInput(f"current_day {row['current_day']!r} is not a whole number") from None
    if not 0 <= day <= course.total_days:
        raise InvalidInput(f"current_day {day} is outside 0..{course.total_days}")
    return state, day


def _place(sub: Subscription, state: str, day: int, course: Course, now: datetime) -> None:
    """Put a new (pending) subscription where the list says it is, through the transitions a
    subscriber would have gone through, so the state log tells the same story."""
    sub.current_day = day
    target = SubscriptionState(state)
    if target is SubscriptionState.PENDING:
        return
    subscriptions.apply(sub, Event.CONFIRM, course, now)
    if target is SubscriptionState.ACTIVE and day >= course.total_days:
        target = SubscriptionState.COMPLETED
    if target in _ARRIVALS:
        subscriptions.apply(sub, _ARRIVALS[target], course, now)


_ARRIVALS = {  # from active, the event that leads to each other state
    SubscriptionState.PAUSED: Event.PAUSE,
    SubscriptionState.FAILED: Event.GAVE_UP,
    SubscriptionState.UNSUBSCRIBED: Event.UNSUBSCRIBE,
    SubscriptionState.BOUNCED: Event.BOUNCED,
    SubscriptionState.COMPLETED: Event.COMPLETE,
}


def export_rows(session: Session, course_slug: str, out: TextIO) -> int:
    """Every subscription of the course, live and ended, oldest first; the count written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    query = (
        select(Subscriber.email, Subscriber.name, Subscription)
        .join(Subscription.subscriber)
        .where(Subscription.course_slug == course_slug)
        .order_by(Subscription.id)
    )
    count = 0
    for email, name, sub in session.execute(query):
        writer.writerow((email, name, sub.timezone, sub.state.value, sub.current_day))
        count += 1
    return count
