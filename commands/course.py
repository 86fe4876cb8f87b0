"""Commands about courses: init, check, courses, preview, send-test, course (its breaker)."""

from __future__ import annotations

import argparse
import sys
from email.utils import make_msgid
from pathlib import Path

from .. import breaker, stats, subscriptions
from ..course import lint, load_course
from ..emails import Outgoing, Recipient, domain_of
from ..emails.check import render_problems
from ..emails.i18n import missing
from ..errors import CourseError, InvalidInput
from ..runtime import Runtime
from ..send import SendStatus
from . import AddParser, add_now, edits, now_of, out

PREVIEW_RECIPIENT = Recipient(
    email="reader@example.com", name="Alex", unsubscribe_token="preview", manage_token="preview"
)


def cmd_init(args: argparse.Namespace, rt: Runtime) -> int:
    rt.init_database()
    out(f"database ready: {rt.engine.url.render_as_string(hide_password=True)}")
    out(f"courses: {', '.join(sorted(rt.courses))}")
    return 0


def cmd_check(args: argparse.Namespace, rt: Runtime) -> int:
    """Load, then build every email for a hostile sample subscriber: a course that passes
    sends without a template or encoding error."""
    try:
        courses = [load_course(args.path)] if args.path else list(rt.courses.values())
    except CourseError as exc:
        return _problems(exc.problems)
    problems = [p for c in courses for p in render_problems(c, rt.links, rt.clock())]
    if problems:
        return _problems(problems)
    for course in courses:
        found = lint.warnings(course) + [
            f"{course.path / 'course.toml'}:1: warning: language {course.language!r} has no "
            f"translation of {word!r} (emails/locales/{course.language}/LC_MESSAGES/drip.po)"
            for word in missing(course.language)
        ]
        for warning in found:
            print(warning, file=sys.stderr)
        out(
            f"ok: {course.slug}: {course.title!r}, {course.total_days} lessons, one every "
            f"{course.interval_days} day(s) at {course.send_time:%H:%M} ({course.timezone})"
            + (f", {len(found)} warning(s)" if found else "")
        )
    return 0


def _problems(problems: list[str]) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(problems)} problem(s) found", file=sys.stderr)
    return 1


def cmd_courses(args: argparse.Namespace, rt: Runtime) -> int:
    with rt.sessions() as session:
        counts = stats.active_by_course(session)
    for slug, course in sorted(rt.courses.items()):
        out(f"{slug}\t{course.title}\t{course.total_days} lessons\t{counts.get(slug, 0)} active")
    return 0


def cmd_preview(args: argparse.Namespace, rt: Runtime) -> int:
    from ..emails import preview

    course = rt.course(args.slug)
    now = rt.clock()
    if args.all:
        out(str(preview.write_course(rt.renderer, course, args.output, now) / "index.html"))
        return 0
    if args.day is None:
        raise InvalidInput("give a DAY, or --all for the whole course")
    outgoing = _lesson_message(rt, args.slug, args.day, PREVIEW_RECIPIENT)
    if args.open:
        out(str(preview.write_lesson(rt.renderer, course, args.day, args.output, now)))
        return 0
    message = outgoing.as_message()
    if args.format == "eml":
        sys.stdout.write(outgoing.data.decode("utf-8", "replace").replace("\r\n", "\n"))
    else:
        part = message.get_body(preferencelist=("plain" if args.format == "text" else "html",))
        sys.stdout.write(part.get_content() if part is not None else "")
    return 0


def cmd_send_test(args: argparse.Namespace, rt: Runtime) -> int:
    recipient = Recipient(
        email=subscriptions.normalize_email(args.to), name="", unsubscribe_token="test",
        manage_token="test",
    )  # fmt: skip
    with rt.new_transport() as transport:
        (result,) = transport.send_messages([_lesson_message(rt, args.slug, args.day, recipient)])
    out(f"{result.status.value}: {result.reply}")
    return 0 if result.status is SendStatus.SENT else 1


def cmd_course(args: argparse.Namespace, rt: Runtime) -> int:
    """`course diff PATH` shows what an edit will do (edits.py); `course holds` lists what the
    circuit breaker holds; `course resume SLUG` lets a held course send again (its lessons go
    out in due order, none skipped)."""
    if args.action == "diff":
        if not args.target:
            raise InvalidInput("give the PATH of the edited course folder")
        return edits.cmd_course_diff(argparse.Namespace(path=Path(args.target)), rt)
    if args.action == "holds":
        with rt.sessions() as session:
            for hold in breaker.holds(session):
                if hold.held:
                    out(f"{hold.course_slug}\theld since {hold.held_at:%Y-%m-%d %H:%M}Z\t"
                        f"{hold.reason}")  # fmt: skip
        return 0
    if not args.target:
        raise InvalidInput("give the SLUG of the course to resume")
    course = rt.course(args.target)
    with rt.write_sessions() as session, session.begin():
        resumed = breaker.resume(session, course.slug, now_of(args, rt))
    out(f"{course.slug}: resumed" if resumed else f"{course.slug}: not held; nothing to do")
    if resumed:
        rt.wake()
    return 0


def _lesson_message(rt: Runtime, slug: str, day: int, recipient: Recipient) -> Outgoing:
    course = rt.course(slug)
    if not 1 <= day <= course.total_days:
        raise InvalidInput(f"{slug} has days 1..{course.total_days}, not {day}")
    domain = domain_of(course.sender_email)
    return rt.renderer.render(
        course, day, recipient, message_id=make_msgid(domain=domain), now=rt.clock()
    )


def register(add: AddParser) -> None:
    add("init", "create or upgrade the database", cmd_init)
    add("check", "validate a course folder", cmd_check).add_argument("path", nargs="?", type=Path)
    add("courses", "list the loaded courses", cmd_courses)
    p = add("preview", "print a lesson email as a subscriber gets it", cmd_preview)
    p.add_argument("slug")
    p.add_argument("day", type=int, nargs="?")
    p.add_argument("--open", action="store_true", help="write HTML and text side by side to a file")
    p.add_argument("--all", action="store_true", help="write every lesson and an index to a folder")
    p.add_argument(
        "--output", type=Path, default=Path("preview"), help="folder (default ./preview)"
    )
    p.add_argument("--format", choices=("html", "text", "eml"), default="text")
    p = add("course", "what an edited course folder will do to its subscribers (diff PATH); "
            "the courses the circuit breaker holds (holds), or one let go on (resume SLUG)",
            cmd_course)  # fmt: skip
    p.add_argument("action", choices=("diff", "holds", "resume"))
    p.add_argument("target", nargs="?", help="the edited course folder, or the course's SLUG")
    add_now(p)
    p = add("send-test", "send a lesson to an address now, outside any subscription", cmd_send_test)
    p.add_argument("slug")
    p.add_argument("day", type=int)
    p.add_argument("--to", required=True)
