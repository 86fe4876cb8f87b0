"""Load and validate a course folder: course.toml plus one Markdown file per lesson.

Every problem is collected with its file and line, so an author fixes them all in one go.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from email_validator import EmailNotValidError, validate_email
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from ..errors import CourseError
from ..scheduler.schedule import WEEKDAYS
from .model import Course, Lesson
from .placeholders import template_problems

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
SEND_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
COURSE_KEYS = {
    "slug", "title", "description", "sender_name", "sender_email", "reply_to",
    "postal_address", "timezone", "send_time", "interval_days", "send_days", "quiet_dates",
    "language",
}  # fmt: skip
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
REQUIRED_COURSE_KEYS = ("slug", "title", "sender_name", "sender_email", "postal_address")
LESSON_KEYS = {"day", "subject", "title", "teaser", "preheader", "id"}
LESSON_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
DAY_PREFIX = re.compile(r"^\d+[-_. ]+")
_front_matter_parser = MarkdownIt("commonmark").use(front_matter_plugin)


@dataclass
class Report:
    """Problems found so far, each as 'file:line: message'."""

    problems: list[str] = field(default_factory=list)

    def add(self, path: Path, line: int, message: str) -> None:
        self.problems.append(f"{path}:{line}: {message}")


def load_course(path: Path) -> Course:
    """The course in folder `path`; CourseError listing every problem if it is not sound."""
    report = Report()
    course = _read_course(Path(path), report)
    if report.problems or course is None:
        raise CourseError(report.problems)
    return course


def load_courses(folder: Path) -> dict[str, Course]:
    """Every course in `folder`: one per sub-folder, or `folder` itself if it is one."""
    folder = Path(folder)
    if (folder / "course.toml").is_file():
        candidates = [folder]
    else:
        candidates = sorted(p for p in folder.iterdir() if (p / "course.toml").is_file())
    if not candidates:
        raise CourseError([f"{folder}: no course folder (a folder with a course.toml) found"])
    courses: dict[str, Course] = {}
    problems: list[str] = []
    for candidate in candidates:
        try:
            course = load_course(candidate)
        except CourseError as exc:
            problems.extend(exc.problems)
            continue
        if course.slug in courses:
            problems.append(f"{candidate / 'course.toml'}:1: slug {course.slug!r} is used twice")
        courses[course.slug] = course
    if problems:
        raise CourseError(problems)
    return courses


def _read_course(folder: Path, report: Report) -> Course | None:
    toml_path = folder / "course.toml"
    if not toml_path.is_file():
        report.add(toml_path, 1, "missing: a course folder needs a course.toml")
        return None
    try:
        settings = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        report.add(toml_path, _toml_error_line(exc), f"not valid TOML: {exc}")
        return None
    course_fields = _check_settings(settings, toml_path, report)
    lessons = _read_lessons(folder, report)
    if report.problems:
        return None
    return Course(path=folder, lessons=tuple(lessons), **course_fields)


def _check_settings(settings: dict[str, Any], path: Path, report: Report) -> dict[str, Any]:
    for key in sorted(set(settings) - COURSE_KEYS):
        report.add(path, 1, f"unknown key {key!r} (known: {', '.join(sorted(COURSE_KEYS))})")
    for key in REQUIRED_COURSE_KEYS:
        if not str(settings.get(key, "")).strip():
            report.add(path, 1, f"{key} is required")
    out: dict[str, Any] = {
        key: str(value).strip() for key, value in settings.items() if key in COURSE_KEYS
    }
    if not LANGUAGE.match(out.setdefault("language", "en")):
        report.add(path, 1, f'language {out["language"]!r}: a language code, e.g. "de"')
    if out.get("slug") and not SLUG.match(out["slug"]):
        report.add(path, 1, f"slug {out['slug']!r}: use lowercase letters, digits and '-'")
    for key in ("sender_email", "reply_to"):
        if out.get(key):
            try:
                validate_email(out[key], check_deliverability=False)
            except EmailNotValidError as exc:
                report.add(path, 1, f"{key} {out[key]!r} is not a valid address: {exc}")
    try:
        ZoneInfo(out.setdefault("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        report.add(path, 1, f"timezone {out['timezone']!r} is not a known IANA time zone")
    match = SEND_TIME.match(out.get("send_time", "09:00"))
    if match is None:
        report.add(path, 1, f'send_time {out["send_time"]!r}: write it as HH:MM, e.g. "09:00"')
    else:
        out["send_time"] = time(int(match[1]), int(match[2]))
    interval = settings.get("interval_days", 1)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        report.add(
            path, 1, f"interval_days {interval!r}: must be a whole number of days, 1 or more"
        )
    out["interval_days"] = interval
    out.update(_check_cadence(settings, path, report))
    return out


def _check_cadence(settings: dict[str, Any], path: Path, report: Report) -> dict[str, Any]:
    """`send_days` (weekdays, e.g. ["mon", "tue", "wed", "thu", "fri"]; default every day) and
    `quiet_dates` (dates no lesson goes out on, e.g. [2026-12-25])."""
    out: dict[str, Any] = {}
    days = settings.get("send_days", list(WEEKDAYS))
    names = [str(d).strip().lower()[:3] for d in days] if isinstance(days, list) else []
    if not names or any(name not in WEEKDAYS for name in names):
        report.add(path, 1, f"send_days {days!r}: a list of weekdays, e.g. "
                   '["mon", "tue", "wed", "thu", "fri"]')  # fmt: skip
    else:
        out["send_days"] = frozenset(WEEKDAYS.index(name) for name in names)
    quiet = settings.get("quiet_dates", [])
    dates = [_date(value) for value in quiet] if isinstance(quiet, list) else [None]
    if None in dates:
        report.add(path, 1, f"quiet_dates {quiet!r}: a list of dates, e.g. [2026-12-25]")
    else:
        out["quiet_dates"] = frozenset(d for d in dates if d is not None)
    return out


def _date(value: Any) -> date | None:
    """A TOML date, or a "YYYY-MM-DD" string; None for anything else."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _read_lessons(folder: Path, report: Report) -> list[Lesson]:
    files = sorted(p for p in folder.glob("*.md") if p.name.lower() != "readme.md")
    if not files:
        report.add(folder, 1, "no lessons: add one Markdown file per lesson")
    lessons = [lesson for p in files if (lesson := _read_lesson(p, report)) is not None]
    by_day: dict[int, Lesson] = {}
    by_id: dict[str, Lesson] = {}
    for lesson in lessons:
        if lesson.id in by_id:
            report.add(lesson.source, 2, f"id {lesson.id!r} repeats {by_id[lesson.id].source.name}")
        by_id.setdefault(lesson.id, lesson)
        if lesson.day in by_day:
            report.add(
                lesson.source, 2, f"day {lesson.day} repeats {by_day[lesson.day].source.name}"
            )
        by_day.setdefault(lesson.day, lesson)
    for day in range(1, max(by_day, default=0) + 1):
        if day not in by_day:
            report.add(
                folder, 1, f"day {day} is missing: days must run 1..{max(by_day)} without gaps"
            )
    return [by_day[day] for day in sorted(by_day)]


def _read_lesson(path: Path, report: Report) -> Lesson | None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        report.add(path, 1, f"not UTF-8 text: {exc}")
        return None
    tokens = _front_matter_parser.parse(text)
    if not tokens or tokens[0].type != "front_matter" or tokens[0].map is None:
        report.add(
            path, 1, "no front matter: start the file with a '---' block (day, subject, ...)"
        )
        return None
    front, body_start = tokens[0], tokens[0].map[1]
    meta_lines = _front_matter_lines(front.content, path, report)
    if meta_lines is None:
        return None
    values, lines = meta_lines
    for key in sorted(set(values) - LESSON_KEYS):
        report.add(
            path, lines[key], f"unknown key {key!r} (known: {', '.join(sorted(LESSON_KEYS))})"
        )
    day = values.get("day")
    if isinstance(day, bool) or not isinstance(day, int) or day < 1:
        report.add(path, lines.get("day", 1), f"day {day!r}: must be a whole number, 1 or more")
        return None
    fields = {key: str(values.get(key) or "").strip() for key in LESSON_KEYS - {"day"}}
    for key in ("subject", "title"):
        if not fields[key]:
            report.add(path, lines.get(key, 1), f"{key} is empty")
    if "\n" in fields["subject"]:
        report.add(path, lines["subject"], "subject must be one line")
    if day > 1 and not fields["teaser"]:
        report.add(
            path, lines.get("teaser", 1), "teaser is required after day 1 (shown the day before)"
        )
    fields["id"] = _lesson_id(fields["id"], path, lines.get("id", 1), report)
    body, body_line = _read_body(text, body_start, path, report)
    return Lesson(day=day, body=body, source=path, body_line=body_line, **fields)


def _lesson_id(given: str, path: Path, line: int, report: Report) -> str:
    """The lesson's stable id: as given, or its file name without the day prefix."""
    found = given or DAY_PREFIX.sub("", path.stem).lower() or path.stem.lower()
    if not LESSON_ID.match(found):
        report.add(path, line, f"id {found!r}: use lowercase letters, digits, '-' and '_' "
                   "(it names the lesson across edits)")  # fmt: skip
    return found


def _read_body(text: str, start: int, path: Path, report: Report) -> tuple[str, int]:
    """The body (the lines from index `start`, without empty lines around it) and the file
    line it starts on; its template is checked here, so that nothing fails when it is sent."""
    lines = text.splitlines()[start:]
    body = "\n".join(lines).strip("\n") + "\n"
    if not body.strip():
        report.add(path, start + 1, "the lesson has no body")
    body_line = start + next((i for i, line in enumerate(lines) if line), 0) + 1
    for line, message in template_problems(body):
        report.add(path, body_line + line - 1, message)
    return body, body_line


def _front_matter_lines(
    source: str, path: Path, report: Report
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """The front matter's values and the file line of each key (the block starts on line 2)."""
    try:
        node = yaml.compose(source, Loader=yaml.SafeLoader)
        values = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        report.add(path, line, f"front matter is not valid YAML: {exc}")
        return None
    if not isinstance(values, dict) or not isinstance(node, yaml.MappingNode):
        report.add(path, 2, "front matter must be 'key: value' lines")
        return None
    lines = {str(key.value): key.start_mark.line + 2 for key, _ in node.value}
    return values, lines


def _toml_error_line(exc: Exception) -> int:
    match = re.search(r"line (\d+)", str(exc))
    return int(match[1]) if match else 1
