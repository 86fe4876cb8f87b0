"""The `drip` command. Each subcommand is a thin call into the library; `main` turns DripError
into a one-line message and an exit code (2 for bad input, 1 for anything else)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from . import subscriptions
from .config import Settings
from .course import lint, load_course
from .emails import Outgoing, Recipient, render_confirmation
from .errors import ConfigError, CourseError, DripError, InvalidInput, UnknownCourse
from .logs import setup_logging
from .models import Subscriber, Subscription, SubscriptionState
from .runtime import Runtime
from .scheduler.dispatch import PassResult
from .scheduler.runner import run_forever, start_scheduler, utc_now
from .send import SendStatus

log = logging.getLogger("drip.cli")
Handler = Callable[[argparse.Namespace, Runtime], int]
COMMANDS: dict[str, Handler] = {}
PREVIEW_RECIPIENT = Recipient(
    email="reader@example.com", name="Alex", unsubscribe_token="preview", manage_token="preview"
)


def command(handler: Handler) -> Handler:
    COMMANDS[handler.__name__.removeprefix("cmd_").replace("_", "-")] = handler
    return handler


def out(text: str) -> None:
    print(text, flush=True)


@command
def cmd_init(args: argparse.Namespace, rt: Runtime) -> int:
    rt.init_database()
    out(f"database ready: {rt.engine.url.render_as_string(hide_password=True)}")
    out(f"courses: {', '.join(sorted(rt.courses))}")
    return 0


@command
def cmd_check(args: argparse.Namespace, rt: Runtime) -> int:
    try:
        courses = [load_course(args.path)] if args.path else list(rt.courses.values())
    except CourseError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    for course in courses:
        found = lint.warnings(course)
        for warning in found:
            print(warning, file=sys.stderr)
        out(
            f"ok: {course.slug}: {course.title!r}, {course.total_days} lessons, one every "
            f"{course.interval_days} day(s) at {course.send_time:%H:%M} ({course.timezone})"
            + (f", {len(found)} warning(s)" if found else "")
        )
    return 0


@command
def cmd_courses(args: argparse.Namespace, rt: Runtime) -> int:
    with rt.sessions() as session:
        counts = dict(
            session.execute(
                select(Subscription.course_slug, func.count())
                .where(Subscription.state == SubscriptionState.ACTIVE)
                .group_by(Subscription.course_slug)
            ).all()
        )
    for slug, course in sorted(rt.courses.items()):
        out(f"{slug}\t{course.title}\t{course.total_days} lessons\t{counts.get(slug, 0)} active")
    return 0


@command
def cmd_subscribe(args: argparse.Namespace, rt: Runtime) -> int:
    course = rt.course(args.course)
    now = utc_now()
    with rt.sessions() as session, session.begin():
        sub = subscriptions.subscribe(
            session, course, args.email, now=now, name=args.name or "",
            timezone=args.tz, confirmed=args.confirmed,
        )  # fmt: skip
        email, name, token, state = (
            sub.subscriber.email,
            sub.subscriber.name,
            sub.confirm_token,
            sub.state,
        )
    out(f"{email}: {state} in {course.slug}")
    if state is SubscriptionState.PENDING:
        domain = course.sender_email.rpartition("@")[2]
        message = render_confirmation(
            course,
            email,
            name,
            rt.links.confirm(token),
            message_id=make_msgid(domain=domain),
            now=now,
        )
        with rt.transport as transport:
            (result,) = transport.send_messages([message])
        if result.status is not SendStatus.SENT:
            print(f"drip: the confirmation email was not sent: {result.reply}", file=sys.stderr)
            return 1
        out(f"confirmation email sent ({result.reply})")
    return 0


def _change_state(args: argparse.Namespace, rt: Runtime, verb: str) -> int:
    if args.course:
        rt.course(args.course)
    now = utc_now()
    with rt.sessions() as session, session.begin():
        found = subscriptions.find_live(session, args.email, args.course)
        for sub in found:
            if verb == "unsubscribe":
                subscriptions.unsubscribe(sub, now)
            elif verb == "pause":
                subscriptions.pause(sub)
            else:
                subscriptions.resume(sub, rt.course(sub.course_slug), now)
            out(f"{args.email}: {sub.state} in {sub.course_slug}")
    if not found:
        raise InvalidInput(f"{args.email} has no live subscription" + (
            f" to {args.course}" if args.course else ""))  # fmt: skip
    return 0


@command
def cmd_unsubscribe(args: argparse.Namespace, rt: Runtime) -> int:
    return _change_state(args, rt, "unsubscribe")


@command
def cmd_pause(args: argparse.Namespace, rt: Runtime) -> int:
    return _change_state(args, rt, "pause")


@command
def cmd_resume(args: argparse.Namespace, rt: Runtime) -> int:
    return _change_state(args, rt, "resume")


@command
def cmd_retry(args: argparse.Namespace, rt: Runtime) -> int:
    if args.course:
        rt.course(args.course)
    now = utc_now()
    with rt.sessions() as session, session.begin():
        found = subscriptions.find_live(session, args.email, args.course)
        retried = [sub.course_slug for sub in found if subscriptions.retry(sub, now)]
    if not retried:
        raise InvalidInput(f"{args.email} has no failed lesson to retry" + (
            f" in {args.course}" if args.course else ""))  # fmt: skip
    for slug in retried:
        out(f"{args.email}: the failed lesson in {slug} is due again")
    return 0


@command
def cmd_subscribers(args: argparse.Namespace, rt: Runtime) -> int:
    query = (
        select(Subscriber.email, Subscription)
        .join(Subscription.subscriber)
        .order_by(Subscription.course_slug, Subscriber.email_key, Subscription.id)
    )
    if args.course:
        rt.course(args.course)
        query = query.where(Subscription.course_slug == args.course)
    out("email\tcourse\tstate\tday\tnext lesson (local)\ttimezone")
    with rt.sessions() as session:
        for email, sub in session.execute(query):
            due, state = "-", str(sub.state)
            if sub.next_due_at is not None:
                due = f"{sub.next_due_at.astimezone(ZoneInfo(sub.timezone)):%Y-%m-%d %H:%M}"
            elif subscriptions.is_given_up(sub):
                state, due = "failed", f"day {sub.current_day + 1} failed: drip retry"
            out(f"{email}\t{sub.course_slug}\t{state}\t{sub.current_day}\t{due}\t{sub.timezone}")
    return 0


@command
def cmd_stats(args: argparse.Namespace, rt: Runtime) -> int:
    from . import stats

    if args.course:
        rt.course(args.course)
    now = parse_instant(args.now) if args.now else utc_now()
    with rt.sessions() as session:
        figures = stats.collect(session, now, args.course)
    if args.plot:
        try:
            out(f"plot written to {stats.plot(figures, args.plot)}")
        except ImportError:
            raise DripError("--plot needs matplotlib: pip install 'drip-courses[plot]'") from None
    if args.json:
        out(json.dumps(figures.as_dict(), indent=2))
    elif not args.plot:
        from rich.console import Console

        console = Console()
        for table in stats.tables(figures):
            console.print(table)
    return 0


@command
def cmd_import(args: argparse.Namespace, rt: Runtime) -> int:
    from . import transfer

    course = rt.course(args.course)
    rows, problems = transfer.read_rows(args.file)
    with rt.sessions() as session, session.begin(), _progress(len(rows), "importing") as step:
        report = transfer.import_rows(
            session, course, rows, source=str(args.file), now=utc_now(),
            confirmed=args.confirmed, progress=lambda: step(1),
        )  # fmt: skip
    for problem in problems + report.problems:
        print(problem, file=sys.stderr)
    bad = len(problems) + len(report.problems)
    out(f"imported {report.imported}, skipped {report.skipped} already known, bad {bad}")
    return 1 if bad else 0


@command
def cmd_export(args: argparse.Namespace, rt: Runtime) -> int:
    from . import transfer

    rt.course(args.course)
    with rt.sessions() as session:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as file:
                count = transfer.export_rows(session, args.course, file)
            print(f"exported {count} to {args.output}", file=sys.stderr)
        else:
            transfer.export_rows(session, args.course, sys.stdout)
    return 0


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A step(n) callback: a progress bar with the rate and the time left at a terminal, and a
    log line every 1,000 otherwise."""
    if not sys.stdout.isatty():
        done = [0]

        def step(n: int = 1) -> None:
            before, done[0] = done[0], done[0] + n
            if before // 1000 != done[0] // 1000:
                log.info("%s: %d of %d", label, done[0], total)

        yield step
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed or 0:,.0f}/s")

    columns = (BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn())
    with Progress(TextColumn("{task.description}"), *columns) as bar:
        task = bar.add_task(label, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


@command
def cmd_tick(args: argparse.Namespace, rt: Runtime) -> int:
    now = parse_instant(args.now) if args.now else utc_now()
    # a progress bar for a person at a terminal; otherwise the log has a line per batch
    tty = sys.stdout.isatty()
    result = _tick_with_progress(rt, now) if tty else rt.dispatcher.run_pass(now)
    out(f"{now.isoformat()}: sent {result.sent}, deferred {result.deferred}, "
        f"bounced {result.bounced}, failed {result.failed}")  # fmt: skip
    return 0


def _tick_with_progress(rt: Runtime, now: datetime) -> PassResult:
    """A pass with a progress bar (rate and time left), for a person at a terminal."""
    from . import stats

    with rt.sessions() as session:
        due = stats.due_count(session, now)
    with _progress(due, "sending") as step:
        rt.dispatcher.progress = lambda batch: step(batch.total)
        return rt.dispatcher.run_pass(now)


@command
def cmd_run(args: argparse.Namespace, rt: Runtime) -> int:
    """The scheduler and the web pages in one process (the embedded default)."""
    rt.init_database()
    if args.no_web:
        run_forever(rt.dispatcher, rt.settings.tick_seconds)
        return 0
    scheduler = start_scheduler(rt.dispatcher, rt.settings.tick_seconds)
    try:
        _serve(args, rt)
    finally:
        log.info("stopping: finishing the pass under way")
        scheduler.shutdown(wait=True)
    return 0


@command
def cmd_serve(args: argparse.Namespace, rt: Runtime) -> int:
    """The web pages alone (run the scheduler elsewhere, or with `drip run --no-web`)."""
    rt.sessions  # noqa: B018 -- refuse to start on an uninitialised database
    _serve(args, rt)
    return 0


def _serve(args: argparse.Namespace, rt: Runtime) -> None:
    import uvicorn

    from .web import create_app

    host = args.host or rt.settings.web_host
    port = args.port or rt.settings.web_port
    # uvicorn stops on SIGINT/SIGTERM, then raises the signal again for the handler it found:
    # let that be a no-op, so the caller still finishes its work and exits 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    uvicorn.run(create_app(rt), host=host, port=port, log_level="info")


@command
def cmd_preview(args: argparse.Namespace, rt: Runtime) -> int:
    from .emails import preview

    course = rt.course(args.slug)
    if args.all:
        out(str(preview.write_course(rt.renderer, course, args.output, utc_now()) / "index.html"))
        return 0
    if args.day is None:
        raise InvalidInput("give a DAY, or --all for the whole course")
    outgoing = _lesson_message(rt, args.slug, args.day, PREVIEW_RECIPIENT)
    if args.open:
        out(str(preview.write_lesson(rt.renderer, course, args.day, args.output, utc_now())))
        return 0
    message = outgoing.as_message()
    if args.format == "eml":
        sys.stdout.write(outgoing.data.decode("ascii").replace("\r\n", "\n"))
    else:
        part = message.get_body(preferencelist=("plain" if args.format == "text" else "html",))
        sys.stdout.write(part.get_content() if part is not None else "")
    return 0


@command
def cmd_send_test(args: argparse.Namespace, rt: Runtime) -> int:
    recipient = Recipient(
        email=subscriptions.normalize_email(args.to), name="", unsubscribe_token="test",
        manage_token="test",
    )  # fmt: skip
    with rt.transport as transport:
        (result,) = transport.send_messages([_lesson_message(rt, args.slug, args.day, recipient)])
    out(f"{result.status.value}: {result.reply}")
    return 0 if result.status is SendStatus.SENT else 1


def _lesson_message(rt: Runtime, slug: str, day: int, recipient: Recipient) -> Outgoing:
    course = rt.course(slug)
    if not 1 <= day <= course.total_days:
        raise InvalidInput(f"{slug} has days 1..{course.total_days}, not {day}")
    domain = course.sender_email.rpartition("@")[2]
    return rt.renderer.render(
        course, day, recipient, message_id=make_msgid(domain=domain), now=utc_now()
    )


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant; without an offset it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"--now {text!r} is not an ISO-8601 date and time") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drip", description="Email drip courses.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help)

    add("init", "create or upgrade the database")
    add("check", "validate a course folder").add_argument("path", nargs="?", type=Path)
    add("courses", "list the loaded courses")
    p = add("subscribe", "subscribe an address to a course")
    p.add_argument("email")
    p.add_argument("--course", required=True)
    p.add_argument("--name")
    p.add_argument("--tz", help="IANA time zone, e.g. Europe/Paris (default: the course's)")
    p.add_argument("--confirmed", action="store_true", help="skip the confirmation email")
    for name, help in (("unsubscribe", "end"), ("pause", "pause"), ("resume", "resume")):
        p = add(name, f"{help} an address's subscriptions")
        p.add_argument("email")
        p.add_argument("--course")
    p = add("retry", "make a lesson given up after retrying too long due again")
    p.add_argument("email")
    p.add_argument("--course")
    add("subscribers", "list subscriptions").add_argument("--course")
    p = add("import", "subscribe the rows of a CSV file (email, name, timezone, state, day)")
    p.add_argument("file", type=Path)
    p.add_argument("--course", required=True)
    p.add_argument("--confirmed", action="store_true", help="rows without a state are active")
    p = add("export", "write a course's subscriptions as CSV")
    p.add_argument("--course", required=True)
    p.add_argument("--output", type=Path, help="a file (default: standard output)")
    p = add("stats", "subscribers by state, lessons sent, stuck lessons, the next wave")
    p.add_argument("--course")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="draw sends per day (matplotlib)")
    p.add_argument("--now", help=argparse.SUPPRESS)
    add("tick", "run one dispatch pass").add_argument(
        "--now", help="ISO-8601 instant (UTC if no offset)"
    )
    for name, help in (
        ("run", "run the scheduler and the web pages"),
        ("serve", "run the web pages"),
    ):
        p = add(name, help)
        p.add_argument("--host", help="address to listen on (default: DRIP_WEB_HOST, 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (default: DRIP_WEB_PORT, 8000)")
        if name == "run":
            p.add_argument("--no-web", action="store_true", help="the scheduler alone")
    p = add("preview", "print a lesson email as a subscriber gets it")
    p.add_argument("slug")
    p.add_argument("day", type=int, nargs="?")
    p.add_argument("--open", action="store_true", help="write HTML and text side by side to a file")
    p.add_argument("--all", action="store_true", help="write every lesson and an index to a folder")
    p.add_argument(
        "--output", type=Path, default=Path("preview"), help="folder (default ./preview)"
    )
    p.add_argument("--format", choices=("html", "text", "eml"), default="text")
    p = add("send-test", "send a lesson to an address now, outside any subscription")
    p.add_argument("slug")
    p.add_argument("day", type=int)
    p.add_argument("--to", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load()
    except ConfigError as exc:
        print(f"drip: {exc}", file=sys.stderr)
        return 2
    handler = setup_logging(args.verbose, settings.log_format)
    runtime: Runtime | None = None
    try:
        runtime = Runtime(settings)
        return COMMANDS[args.command](args, runtime)
    except (InvalidInput, UnknownCourse, ConfigError) as exc:
        print(f"drip: {exc}", file=sys.stderr)
        return 2
    except CourseError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    except DripError as exc:
        print(f"drip: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.close()
        logging.getLogger().removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
