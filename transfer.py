"""Subscriber lists in and out as CSV, columns email, name, timezone, state, current_day.

An import runs in the caller's one transaction: bad rows are reported with their line numbers
and left out, the good ones go in together, and a crash writes nothing. A header that names an
unknown column refuses the whole file.

A cell a spreadsheet would run as a formula (one starting with =, +, -, @, a tab or a carriage
return) is exported with a ' in front, as OWASP advises against CSV injection; the import takes
exactly that quote off again, so an export imports back to the same values.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import subscriptions, suppressions
from .course.model import Course
from .errors import InvalidInput
from .models import Subscriber, Subscription, SubscriptionState
from .subscriptions import Event

COLUMNS = ("email", "name", "timezone", "state", "current_day")
_FORMULA = re.compile(r"'*[=+\-@\t\r]")  # a formula, or one already escaped (escaped again)
_ESCAPED_FORMULA = re.compile(r"'+[=+\-@\t\r]")


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0  # already known to the course: subscribed now, or before (it stands)
    suppressed: int = 0  # on the suppression list: never subscribed again by a list
    problems: list[str] = field(default_factory=list)


def read_rows(file: TextIO, source: str) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line number, row) pairs, and the lines that cannot be rows (a value beyond the named
    columns). A BOM and CRLF endings are fine; a bad header, a file that is not UTF-8 or not
    CSV is InvalidInput: the whole file is refused."""
    reader = csv.reader(file)
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[str] = []
    try:
        header = _header(next(reader, []), source)
        for cells in reader:
            values = [unescape_cell(cell.strip()) for cell in cells]
            problem = _row_problem(header, values)
            if problem:
                problems.append(f"{source}:{reader.line_num}: {problem}")
            elif any(values):
                rows.append(
                    (reader.line_num, {k: v for k, v in zip(header, values, strict=False) if k})
                )
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{source}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InvalidInput(f"{source}:{reader.line_num}: not CSV: {exc}") from None
    return rows, problems


def _header(cells: list[str], source: str) -> list[str]:
    """The column names, lower case; columns without a name are allowed while left empty."""
    names = [cell.strip().lstrip("\ufeff").lower() for cell in cells]
    if "email" not in names:
        raise InvalidInput(f"{source}:1: the header must name an 'email' column "
                           f"(columns: {', '.join(COLUMNS)})")  # fmt: skip
    unknown = sorted({name for name in names if name and name not in COLUMNS})
    if unknown:
        raise InvalidInput(f"{source}:1: unknown column(s) "
                           f"{', '.join(repr(name[:40]) for name in unknown)} "
                           f"(columns: {', '.join(COLUMNS)}); nothing imported")  # fmt: skip
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:
        raise InvalidInput(f"{source}:1: column(s) named twice: {', '.join(twice)}")
    return names


def _row_problem(header: list[str], values: list[str]) -> str | None:
    stray = [i for i, v in enumerate(values) if v and (i >= len(header) or not header[i])]
    if stray:
        return f"a value in column {stray[0] + 1}, which the header does not name"
    if any("\x00" in value for value in values):
        return "a NUL character, which no column may hold"
    return None


def escape_cell(value: str) -> str:
    """`value` as a spreadsheet will show it, never run it: a formula gets a leading '."""
    return "'" + value if _FORMULA.match(value) else value


def unescape_cell(value: str) -> str:
    """The inverse of escape_cell on what it writes: one leading ' off an escaped formula."""
    return value[1:] if _ESCAPED_FORMULA.match(value) else value


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
            if suppressions.is_suppressed(session, email):
                report.suppressed += 1
                continue
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
        cells = (email, name, sub.timezone, sub.state.value, str(sub.current_day))
        writer.writerow([escape_cell(cell) for cell in cells])
        count += 1
    return count
