"""Course and Lesson: immutable content, loaded once and shared by every send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

from ..scheduler.schedule import EVERY_DAY, Cadence


@dataclass(frozen=True)
class Lesson:
    """One day's email. `body` is the Markdown source after the front matter; `body_line` is
    the file line its first line is on, so problems found later can name the file line."""

    day: int
    subject: str
    title: str
    teaser: str
    body: str
    source: Path
    preheader: str = ""
    body_line: int = 1
    id: str = ""  # stable across edits: front matter `id`, or the file name without its day

    @property
    def key(self) -> str:
        return self.id or self.source.stem


@dataclass(frozen=True)
class Course:
    """A course as its author wrote it: settings from course.toml and lessons ordered by day."""

    slug: str
    title: str
    sender_name: str
    sender_email: str
    postal_address: str
    path: Path
    lessons: tuple[Lesson, ...]
    description: str = ""
    reply_to: str = ""
    timezone: str = "UTC"
    send_time: time = field(default_factory=lambda: time(9, 0))
    interval_days: int = 1
    send_days: frozenset[int] = EVERY_DAY  # weekdays lessons go out on (0 is Monday)
    quiet_dates: frozenset[date] = frozenset()  # local dates no lesson goes out on
    language: str = "en"  # the layout's own words and dates (emails/locales)

    @property
    def cadence(self) -> Cadence:
        return Cadence(self.send_days, self.quiet_dates)

    @property
    def total_days(self) -> int:
        return len(self.lessons)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def lesson(self, day: int) -> Lesson:
        """The lesson for `day` (1-based); IndexError outside the course."""
        if not 1 <= day <= len(self.lessons):
            raise IndexError(f"course {self.slug!r} has no day {day}")
        return self.lessons[day - 1]

    def position(self, lesson_id: str) -> int | None:
        """The day of the lesson with this id in the course as it is now; None if it is gone."""
        return next((lesson.day for lesson in self.lessons if lesson.key == lesson_id), None)

    def next_lesson(self, day: int) -> Lesson | None:
        """The lesson after `day`, whose teaser ends today's email; None on the last day."""
        return self.lessons[day] if day < len(self.lessons) else None
