"""Commands about subscribers: subscribe, unsubscribe, pause, resume, retry, subscribers,
import, export. Each one that changes state takes --now."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, TextIO

from .. import console, subscriptions, suppressions, transfer
from ..errors import InvalidInput
from ..models import SubscriptionState
from ..runtime import Runtime
from ..scheduler.schedule import zone
from . import AddParser, add_now, now_of, out
from .progress import progress


def cmd_subscribe(args: argparse.Namespace, rt: Runtime) -> int:
    course = rt.course(args.course)
    now = now_of(args, rt)
    with rt.sessions() as session, session.begin():
        entry = suppressions.find(session, args.email)
        if entry is not None:
            since = f"{entry.reason}, since {entry.created_at:%Y-%m-%d}"
            raise InvalidInput(f"{args.email} is suppressed ({since}): `drip suppress remove`")
        sub = subscriptions.subscribe(
            session, course, args.email, now=now, name=args.name or "",
            timezone=args.tz, confirmed=args.confirmed, then=subscriptions.Event.REQUEST,
        )  # fmt: skip
        email, state = sub.subscriber.email, sub.state
    out(f"{email}: {state} in {course.slug}")
    if state is SubscriptionState.PENDING:
        result = rt.confirmations.run_pass(now)
        if result.confirmations:
            out("confirmation email sent")
        else:
            print("drip: the confirmation email is queued: the relay did not take it yet; "
                  "the running service retries it", file=sys.stderr)  # fmt: skip
    return 0


def _change_state(args: argparse.Namespace, rt: Runtime, event: str) -> int:
    if args.course:
        rt.course(args.course)
    now = now_of(args, rt)
    with rt.sessions() as session, session.begin():
        found = subscriptions.find_live(session, args.email, args.course)
        # every course is resolved before the first change, so an error leaves all unchanged
        for sub, course in [(sub, rt.course(sub.course_slug)) for sub in found]:
            subscriptions.apply(sub, event, course, now)
        changed = [(sub.course_slug, sub.state) for sub in found]
    if not found:
        raise InvalidInput(f"{args.email} has no live subscription" + (
            f" to {args.course}" if args.course else ""))  # fmt: skip
    for slug, state in changed:
        out(f"{args.email}: {state} in {slug}")
    return 0


def cmd_unsubscribe(args: argparse.Namespace, rt: Runtime) -> int:
    return _change_state(args, rt, "unsubscribe")


def cmd_pause(args: argparse.Namespace, rt: Runtime) -> int:
    return _change_state(args, rt, "pause")


def cmd_resume(args: argparse.Namespace, rt: Runtime) -> int:
    return _change_state(args, rt, "resume")


def cmd_retry(args: argparse.Namespace, rt: Runtime) -> int:
    if args.course:
        rt.course(args.course)
    now = now_of(args, rt)
    with rt.sessions() as session, session.begin():
        found = subscriptions.find_failed(session, args.email, args.course)
        for sub, course in [(sub, rt.course(sub.course_slug)) for sub in found]:
            subscriptions.apply(sub, "retry", course, now)
    if not found:
        raise InvalidInput(f"{args.email} has no failed lesson to retry" + (
            f" in {args.course}" if args.course else ""))  # fmt: skip
    for sub in found:
        out(f"{args.email}: the failed lesson in {sub.course_slug} is due again")
    return 0


def cmd_subscribers(args: argparse.Namespace, rt: Runtime) -> int:
    """Every subscription with its id (the id the logs and the console name), in natural
    order of course and address; --json for scripts."""
    if args.course:
        rt.course(args.course)
    with rt.sessions() as session:
        listed = console.subscriber_list(session, course=args.course, state=args.state)
    if args.json:
        out(json.dumps([row.as_dict() for row in listed], indent=2))
        return 0
    out("id\temail\tcourse\tstate\tday\tnext lesson (local)\ttimezone")
    for row in listed:
        due = "-"
        if row.next_due_at is not None:
            due = f"{row.next_due_at.astimezone(zone(row.timezone)):%Y-%m-%d %H:%M}"
        elif row.state == SubscriptionState.FAILED:
            due = f"day {row.day + 1} failed: drip retry"
        out(f"{row.id}\t{row.email}\t{row.course}\t{row.state}\t{row.day}\t{due}\t{row.timezone}")
    return 0


def cmd_import(args: argparse.Namespace, rt: Runtime) -> int:
    course = rt.course(args.course)
    now = now_of(args, rt)
    with _opened(args.file, "r") as file:  # read and checked whole before the transaction
        rows, problems = transfer.read_rows(file, _source_name(args.file))
    with rt.sessions() as session, session.begin(), progress(len(rows), "importing") as step:
        report = transfer.import_rows(
            session, course, rows, source=_source_name(args.file), now=now,
            confirmed=args.confirmed, progress=lambda: step(1),
        )  # fmt: skip
    for problem in problems + report.problems:
        print(problem, file=sys.stderr)
    bad = len(problems) + len(report.problems)
    out(f"imported {report.imported}, skipped {report.skipped} already known, "
        f"{report.suppressed} suppressed, bad {bad}")  # fmt: skip
    return 1 if bad else 0


def cmd_export(args: argparse.Namespace, rt: Runtime) -> int:
    rt.course(args.course)
    with rt.sessions() as session, _opened(args.output, "w") as file:
        count = transfer.export_rows(session, args.course, file)
    if args.output != STDIO:
        print(f"exported {count} to {args.output}", file=sys.stderr)
    return 0


STDIO = "-"  # a FILE argument that means standard input or output


def _source_name(name: str) -> str:
    return "<stdin>" if name == STDIO else name


@contextmanager
def _opened(name: str, mode: Literal["r", "w"]) -> Iterator[TextIO]:
    """The CSV file `name` as UTF-8 text (a BOM is skipped), or standard input or output for
    `-`; a file that cannot be opened is bad input."""
    if name == STDIO:
        with _standard_stream(mode) as stream:
            yield stream
        return
    try:
        encoding = "utf-8-sig" if mode == "r" else "utf-8"
        file = open(name, mode, encoding=encoding, newline="")  # noqa: SIM115 -- closed below
    except OSError as exc:
        raise InvalidInput(f"cannot open {name}: {exc.strerror or exc}") from None
    with file:
        yield file


@contextmanager
def _standard_stream(mode: Literal["r", "w"]) -> Iterator[TextIO]:
    """Standard output, or standard input read as a CSV file is (UTF-8, newlines kept for csv)."""
    if mode == "w" or not isinstance(sys.stdin, io.TextIOWrapper):  # a test's text stand-in
        yield sys.stdout if mode == "w" else sys.stdin
        return
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    try:
        yield stdin
    finally:
        stdin.detach()  # standard input itself stays open


def register(add: AddParser) -> None:
    p = add("subscribe", "subscribe an address to a course", cmd_subscribe)
    p.add_argument("email")
    p.add_argument("--course", required=True)
    p.add_argument("--name")
    p.add_argument("--tz", help="IANA time zone, e.g. Europe/Paris (default: the course's)")
    p.add_argument("--confirmed", action="store_true", help="skip the confirmation email")
    add_now(p)
    for handler, verb in ((cmd_unsubscribe, "end"), (cmd_pause, "pause"), (cmd_resume, "resume")):
        name = handler.__name__.removeprefix("cmd_")
        p = add(name, f"{verb} an address's subscriptions", handler)
        p.add_argument("email")
        p.add_argument("--course")
        add_now(p)
    p = add("retry", "make a lesson given up after retrying too long due again", cmd_retry)
    p.add_argument("email")
    p.add_argument("--course")
    add_now(p)
    p = add("subscribers", "list subscriptions with their ids", cmd_subscribers)
    p.add_argument("--course")
    p.add_argument("--state", choices=[state.value for state in SubscriptionState])
    p.add_argument("--json", action="store_true", help="a JSON array for scripts")
    p = add(
        "import", "subscribe the rows of a CSV file (columns: " + ", ".join(transfer.COLUMNS)
        + "; only email is required, another column refuses the file)", cmd_import,
    )  # fmt: skip
    p.add_argument("file", metavar="FILE.csv", help="the CSV file, or - for standard input")
    p.add_argument("--course", required=True)
    p.add_argument("--confirmed", action="store_true", help="rows without a state are active")
    add_now(p)
    p = add("export", "write a course's subscriptions as CSV", cmd_export)
    p.add_argument("--course", required=True)
    p.add_argument("--output", default=STDIO, help="a file, or - (the default): standard output")
