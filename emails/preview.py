"""Pages for authors: a lesson email as it arrives (HTML and text side by side), and a whole
course as one browsable folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..course.model import Course
from .headers import domain_of
from .render import LessonRenderer, Recipient, layouts

SAMPLE_READER = Recipient(
    email="reader@example.com", name="Alex", unsubscribe_token="preview", manage_token="preview"
)


def lesson_page(
    renderer: LessonRenderer, course: Course, day: int, now: datetime, index_href: str = ""
) -> str:
    domain = domain_of(course.sender_email)
    message = renderer.message(
        course, day, SAMPLE_READER, message_id=f"<preview.{day}@{domain}>", now=now
    )
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    return layouts.get_template("preview.html").render(
        course=course,
        lesson=course.lesson(day),
        message=message,
        html=html_part.get_content() if html_part else "",
        text=text_part.get_content() if text_part else "",
        index_href=index_href,
    )


def write_lesson(
    renderer: LessonRenderer, course: Course, day: int, folder: Path, now: datetime
) -> Path:
    """One side-by-side page, written to folder/<slug>-day<N>.html."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{course.slug}-day{day}.html"
    path.write_text(lesson_page(renderer, course, day, now), encoding="utf-8")
    return path


def write_course(renderer: LessonRenderer, course: Course, folder: Path, now: datetime) -> Path:
    """Every lesson's page and an index.html listing them, in folder/<slug>/."""
    target = folder / course.slug
    target.mkdir(parents=True, exist_ok=True)
    pages = {lesson.day: f"day{lesson.day}.html" for lesson in course.lessons}
    for day, name in pages.items():
        page = lesson_page(renderer, course, day, now, index_href="index.html")
        (target / name).write_text(page, encoding="utf-8")
    index = layouts.get_template("preview_index.html").render(course=course, pages=pages)
    (target / "index.html").write_text(index, encoding="utf-8")
    return target
