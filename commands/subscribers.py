"""Commands about subscribers: subscribe, unsubscribe, pause, resume, retry, subscribers,
import, export. Each one that changes state takes --now."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import subscriptions, transfer
from ..errors import InvalidInput
from ..models import SubscriptionState
from ..runtime import Runtime
from . import AddParser, add_now, now_of, out
from .progress import progress


def cmd_subscribe(args: argparse.Namespace, rt: Runtime) -> int:
    course = rt.course(args.course)
    now = now_of(args, rt)
    with rt.sessions() as session, session.begin():
        sub = subscriptions.subscribe(
            session, course, args.email, now=now, name=args.name or "",
            timezone=args.tz, confirmed=args.confirmed,
        )  # fmt: skip
        if sub.state is SubscriptionState.PENDING:
            subscriptions.apply(sub, subscriptions.Event.REQUEST, course, now)
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
        for sub in found:
            subscriptions.apply(sub, event, rt.course(sub.course_slug), now)
            out(f"{args.email}: {sub.state} in {sub.course_slug}")
    if not found:
        raise InvalidInput(f"{args.email} has no live subscription" + (
            f" to {args.course}" if args.course else ""))  # fmt: skip
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
        for sub in found:
            subscriptions.apply(sub, "retry", rt.course(sub.course_slug), now)
    if not found:
        raise InvalidInput(f"{args.email} has no failed lesson to retry" + (
            f" in {args.course}" if args.course else ""))  # fmt: skip
    for sub in found:
        out(f"{args.email}: the failed lesson in {sub.course_slug} is due again")
    return 0


def cmd_subscribers(args: argparse.Namespace, rt: Runtime) -> int:
    if args.course:
        rt.course(args.course)
    out("email\tcourse\tstate\tday\tnext lesson (local)\ttimezone")
    with rt.sessions() as session:
        for email, sub in subscriptions.listing(session, args.course):
            due, state = "-", str(sub.state)
            if sub.next_due_at is not None:
                due = f"{sub.next_due_at.astimezone(subscriptions.zone_of(sub)):%Y-%m-%d %H:%M}"
            elif sub.state is SubscriptionState.FAILED:
                due = f"day {sub.current_day + 1} failed: drip retry"
            out(f"{email}\t{sub.course_slug}\t{state}\t{sub.current_day}\t{due}\t{sub.timezone}")
    return 0


def cmd_import(args: argparse.Namespace, rt: Runtime) -> int:
    course = rt.course(args.course)
    now = now_of(args, rt)
    rows, problems = transfer.read_rows(args.file)
    with rt.sessions() as session, session.begin(), progress(len(rows), "importing") as step:
        report = transfer.import_rows(
            session, course, rows, source=str(args.file), now=now,
            confirmed=args.confirmed, progress=lambda: step(1),
        )  # fmt: skip
    for problem in problems + report.problems:
        print(problem, file=sys.stderr)
    bad = len(problems) + len(report.problems)
    out(f"imported {report.imported}, skipped {report.skipped} already known, bad {bad}")
    return 1 if bad else 0


def cmd_export(args: argparse.Namespace, rt: Runtime) -> int:
    rt.course(args.course)
    with rt.sessions() as session:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as file:
                count = transfer.export_rows(session, args.course, file)
            print(f"exported {count} to {args.output}", file=sys.stderr)
        else:
            transfer.export_rows(session, args.course, sys.stdout)
    return 0


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
    add("subscribers", "list subscriptions", cmd_subscribers).add_argument("--course")
    p = add(
        "import", "subscribe the rows of a CSV file (columns: " + ", ".join(transfer.COLUMNS) + ")",
        cmd_import,
    )  # fmt: skip
    p.add_argument("file", type=Path)
    p.add_argument("--course", required=True)
    p.add_argument("--confirmed", action="store_true", help="rows without a state are active")
    add_now(p)
    p = add("export", "write a course's subscriptions as CSV", cmd_export)
    p.add_argument("--course", required=True)
    p.add_argument("--output", type=Path, help="a file (default: standard output)")
