"""Lesson and confirmation emails: structure, headers, escaping. Pure: no database, no socket."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest

from drip.course import Course, load_course
from drip.emails import LessonRenderer, Links, Recipient, render_confirmation

from conftest import write_course

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LINKS = Links("https://drip.example.org")


@pytest.fixture
def course(tmp_path: Path) -> Course:
    folder = write_course(tmp_path / "tiny", days=3)
    (folder / "02.md").write_text(
        "---\nday: 2\nsubject: Day two\ntitle: Title 2\nteaser: Teaser of lesson 2.\n"
        "preheader: Inbox preview\n---\n"
        "Dear {{ first_name }}, day {{ day }} of {{ total_days }}.\n\n"
        "![A diagram](images/diagram.png)\n\n[Manage]({{ preferences_url }})\n",
        encoding="utf-8",
    )
    return load_course(folder)


def render(course: Course, day: int, name: str = "Ada", email: str = "ada@example.com"):
    recipient = Recipient(email=email, name=name, unsubscribe_token="u" * 32, manage_token="m" * 32)
    return LessonRenderer(LINKS).message(
        course, day, recipient, message_id="<x.1@tiny.example>", now=NOW
    )


def parts(msg) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_headers_and_structure(course: Course) -> None:
    msg = render(course, 1)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert msg["From"] == "Tiny Sender <lessons@tiny.example>"
    assert msg["To"] == "Ada <ada@example.com>"
    assert msg["Subject"] == "Subject 1"
    assert msg["Reply-To"] == "reply@tiny.example"
    assert msg["Message-ID"] == "<x.1@tiny.example>"
    assert msg["Date"] == "Mon, 02 Mar 2026 08:00:00 +0000"
    assert msg["List-Id"] == "Tiny Course <tiny.tiny.example>"
    assert msg["List-Unsubscribe"] == f"<https://drip.example.org/unsubscribe/{'u' * 32}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_wire_bytes_are_crlf_with_short_lines(course: Course) -> None:
    recipient = Recipient("ada@example.com", "Ada Ünal", "u" * 32, "m" * 32)
    outgoing = LessonRenderer(LINKS).render(course, 2, recipient, message_id="<w@x>", now=NOW)
    assert (outgoing.sender, outgoing.recipient) == ("lessons@tiny.example", "ada@example.com")
    wire = outgoing.data
    assert (
        b"\r\nList-Unsubscribe: <https://drip.example.org/unsubscribe/" + b"u" * 32 + b">\r\n"
        in wire
    )
    assert b"\n" not in wire.replace(b"\r\n", b""), "bare LF"
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998
    body = wire.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76, "quoted-printable lines"
    assert outgoing.as_message()["To"].addresses[0].display_name == "Ada Ünal"


def test_body_teaser_footer_and_inlined_css(course: Course) -> None:
    text, html = parts(render(course, 2))
    assert "Dear Ada, day 2 of 3." in text and "Dear Ada, day 2 of 3." in html
    assert "Tomorrow: Title 3 - Teaser of lesson 3." in text
    assert "Tomorrow: Title 3" in html and "Teaser of lesson 3." in html
    assert (
        '<img src="https://drip.example.org/courses/tiny/images/diagram.png" alt="A diagram"'
        in html
    )
    assert "https://drip.example.org/courses/tiny/images/diagram.png" in text
    assert f'href="https://drip.example.org/preferences/{"m" * 32}"' in html
    assert f"https://drip.example.org/lessons/{'m' * 32}/2" in html
    assert "Inbox preview" in html
    assert "<style" not in html and 'style="' in html, "CSS is inlined"
    for needle in ("Unsubscribe", "1 Tiny Road, Smalltown", "ada@example.com subscribed"):
        assert needle in text and needle in html


def test_last_day_has_course_complete_instead_of_teaser(course: Course) -> None:
    text, html = parts(render(course, 3))
    assert "Course complete" in text and "Course complete" in html
    assert "Tomorrow" not in text and "Tomorrow" not in html


def test_subscriber_data_is_literal_and_escaped(course: Course) -> None:
    name = "Eve\r\nBcc: victim@example.com {{ 7*191 }} <script>alert(1)</script> & co"
    msg = render(course, 2, name=name)
    raw = msg.as_bytes(policy=policy.SMTP).decode("utf-8", "replace")
    headers = raw.split("\r\n\r\n", 1)[0]
    assert "\r\nBcc:" not in headers
    assert "\r" not in msg["To"] and "\n" not in msg["To"]
    assert msg["To"].addresses[0].addr_spec == "ada@example.com"
    text, html = parts(msg)
    assert "{{ 7*191 }}" in text and "1337" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html and "<script>" not in html


def test_rendering_is_the_same_for_a_second_subscriber(course: Course) -> None:
    renderer = LessonRenderer(LINKS)
    first = renderer.message(
        course, 1, Recipient("a@example.com", "A", "t1", "m1"), message_id="<1@x>", now=NOW
    )
    second = renderer.message(
        course, 1, Recipient("b@example.com", "", "t2", "m2"), message_id="<2@x>", now=NOW
    )
    assert "Hi A," in parts(first)[0] and "Hi friend," in parts(second)[0]
    assert "t1" in first["List-Unsubscribe"] and "t2" in second["List-Unsubscribe"]


def test_confirmation_email(course: Course) -> None:
    msg = render_confirmation(
        course, "ada@example.com", "Ada", "https://drip.example.org/confirm/abc",
        message_id="<c@tiny.example>", now=NOW,
    ).as_message()  # fmt: skip
    text, html = parts(msg)
    assert msg["Subject"] == "Confirm your subscription: Tiny Course"
    assert "https://drip.example.org/confirm/abc" in text
    assert 'href="https://drip.example.org/confirm/abc"' in html


def test_every_email_names_its_course_and_lesson_for_gmail_feedback_loops() -> None:
    from drip.config import BUNDLED_COURSES
    from drip.course import load_course
    from drip.emails import LessonRenderer, Links, Recipient, render_confirmation

    course = load_course(BUNDLED_COURSES / "bone-health")
    renderer = LessonRenderer(Links("https://drip.example.org"))
    reader = Recipient("ana@example.com", "Ana", "u" * 32, "m" * 32)
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    lesson = renderer.render(course, 3, reader, message_id="<x@example.com>", now=now)
    confirmation = render_confirmation(course, "ana@example.com", "Ana", "https://x/confirm/t",
                                       message_id="<y@example.com>", now=now)  # fmt: skip
    assert lesson.as_message()["Feedback-ID"] == "lesson-3:bone-health:lesson:drip"
    assert confirmation.as_message()["Feedback-ID"] == "confirm:bone-health:confirmation:drip"
