"""`drip check` builds every email of a course for a hostile subscriber: what would fail at send
time is a problem with file and line now. Pure: no database, no socket."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.config import BUNDLED_COURSES
from drip.course import Course, load_course, load_courses
from drip.emails import LessonRenderer, Links, Recipient
from drip.emails.check import HOSTILE_NAME, message_problems, render_problems
from drip.emails.render import one_line
from drip.errors import RenderError

from conftest import lesson_file, write_course

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LINKS = Links("https://drip.example.org")


def course_with(tmp_path: Path, day: int, body: str) -> Course:
    folder = write_course(tmp_path / "c", days=3)
    (folder / f"{day:02d}.md").write_text(lesson_file(day, body=body), encoding="utf-8")
    return load_course(folder)


def test_hostile_name_is_as_long_as_a_form_allows_and_has_everything() -> None:
    assert len(HOSTILE_NAME) == 200
    for piece in ('"', "<script>", "=?utf-8?q?", "\r\n", "Bcc:", "ë", "名"):
        assert piece in HOSTILE_NAME


def test_a_sound_course_and_the_bundled_one_check_clean(tmp_path: Path) -> None:
    assert render_problems(load_course(write_course(tmp_path / "ok")), LINKS, NOW) == []
    for course in load_courses(BUNDLED_COURSES).values():
        assert render_problems(course, LINKS, NOW) == []


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("Hello\n\n{{ day / 0 }}\n", 10, "ZeroDivisionError: division by zero"),
        ("x\n{{ first_name.nope }}\n", 9, "UndefinedError: 'str object' has no attribute 'nope'"),
        ("{{ ''.__class__ }}\n", 8, "SecurityError: access to attribute '__class__'"),
        ('a\nb\n{{ "%d" | format("x") }}\n', 10, "TypeError: %d format"),
        ("{% for i in range(3) %}\n{{ i }}\n{{ [][i] }}\n{% endfor %}\n", 10, "UndefinedError"),
    ],
)
def test_runtime_template_errors_are_problems_with_file_and_line(
    tmp_path: Path, body: str, line: int, reason: str
) -> None:
    course = course_with(tmp_path, 2, body)  # loads: these fail only when rendered
    (problem,) = render_problems(course, LINKS, NOW)
    assert problem.startswith(f"{course.path / '02.md'}:{line}: template error: {reason}")
    assert "\n" not in problem


def test_the_renderer_raises_render_error_for_that_lesson_only(tmp_path: Path) -> None:
    course = course_with(tmp_path, 2, "Hello\n\n{{ day / 0 }}\n")
    renderer = LessonRenderer(LINKS)
    reader = Recipient("a@example.com", "Ada", "u", "m")
    with pytest.raises(RenderError) as caught:
        renderer.render(course, 2, reader, message_id="<x@tiny.example>", now=NOW)
    assert (caught.value.source, caught.value.line) == (course.path / "02.md", 10)
    assert caught.value.reason == "template error: ZeroDivisionError: division by zero"
    assert renderer.render(course, 3, reader, message_id="<y@tiny.example>", now=NOW).data
    with pytest.raises(RenderError):
        renderer.page(course, 2, reader)


def test_a_value_that_cannot_be_encoded_names_the_file(tmp_path: Path) -> None:
    course = replace(load_course(write_course(tmp_path / "c", days=2)), title="Bad \ud800 title")
    found = render_problems(course, LINKS, NOW)
    assert [p.split(": ", 1)[0] for p in found] == [
        f"{course.path / '01.md'}:1",
        f"{course.path / '02.md'}:1",
        f"{course.path / 'course.toml'}:1",
    ]
    assert all("the email cannot be built: UnicodeEncodeError" in p for p in found), found


def test_non_ascii_course_lines_are_checked_without_crashing(tmp_path: Path) -> None:
    folder = write_course(tmp_path / "c", days=2)
    toml = (folder / "course.toml").read_text(encoding="utf-8")
    (folder / "course.toml").write_text(toml.replace("Tiny Course", "Kürs ä"), encoding="utf-8")
    lesson = lesson_file(1).replace("Subject 1", "Día 1").replace("Title 1", "Título ä")
    (folder / "01.md").write_text(lesson, encoding="utf-8")
    found = render_problems(load_course(folder), LINKS, NOW)
    assert all(p.startswith(str(folder)) and "\n" not in p for p in found), found


def test_a_placeholder_damaged_by_a_filter_is_reported(tmp_path: Path) -> None:
    course = course_with(tmp_path, 3, "Hi {{ first_name | upper }}!\n")
    assert render_problems(course, LINKS, NOW) == [
        f"{course.path / '03.md'}:8: a placeholder was changed by a filter and is left unfilled: "
        "use it as is"
    ]


def test_an_injected_recipient_or_unescaped_name_is_reported() -> None:
    data = (
        b"To: Eve <o.brien+check@example.com>\r\nBcc: victim@example.com\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n'
        b"<p>Hi <script>alert(1)</script></p>\r\n"
    )
    assert message_problems(data) == [
        "the email would go to ['o.brien+check@example.com', 'victim@example.com'], "
        "not to the subscriber alone",
        "the subscriber's name does not appear in the HTML part",
        "the subscriber's name is not escaped in the HTML part",
    ]


BUNDLED = next(iter(load_courses(BUNDLED_COURSES).values()))
RENDERER = LessonRenderer(LINKS)  # shared: each lesson is prepared once for all examples


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=200), day=st.integers(1, BUNDLED.total_days))
def test_any_name_renders_and_is_escaped_in_html(name: str, day: int) -> None:
    reader = Recipient("reader@example.com", name, "u" * 32, "m" * 32)
    message = RENDERER.message(BUNDLED, day, reader, message_id="<p@example.com>", now=NOW)
    shown = one_line(name) or "friend"
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    assert f"Hi {html.escape(shown)}," in html_part.get_content()
    assert f"Hi {shown}," in text_part.get_content()
    assert [a.addr_spec for a in message["To"].addresses] == ["reader@example.com"]
