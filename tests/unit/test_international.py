"""Names, titles, subjects and addresses in any script: rendered, then read back by the standard
library's strict parser. Pure: no database, no socket."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.course import Course, load_course
from drip.emails import LessonRenderer, Links, Outgoing, Recipient, render_confirmation
from drip.emails.headers import address_header, header, one_line, wire_address
from drip.errors import InvalidInput
from drip.subscriptions import normalize_email

from conftest import lesson_file, write_course
from helpers import (
    addr_spec,
    check_header_lines,
    parse_strictly,
    raw_header,
    rfc2047_display_name,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LINKS = Links("https://drip.example.org")


def body_text(message, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


class Case(NamedTuple):
    name: str  # the subscriber's
    title: str
    subject: str
    sender_name: str
    sender: str
    sender_wire: str
    reader: str
    reader_wire: str


CASES = {
    "german": Case(
        "Jürgen Groß", "Stärkere Knochen: sieben Tage", "Tag 1: Grüße aus München",
        "Knochen-Kurs für Ältere", "kurs@bücher.example", "kurs@xn--bcher-kva.example",
        "jürgen@straße.de", "jürgen@xn--strae-oqa.de",
    ),
    "spanish": Case(
        "José Peña", "Huesos más fuertes", "Día 1: ¿por qué caminar?", "Día a día",
        "cursos@españa.example", "cursos@xn--espaa-rta.example",
        "josé@example.com", "josé@example.com",
    ),
    "japanese": Case(
        "山田太郎", "骨を強くする七日間", "第一日 骨の基本", "骨の講座",
        "講座@例え.jp", "講座@xn--r8jz45g.jp", "山田@例え.jp", "山田@xn--r8jz45g.jp",
    ),
    "arabic": Case(
        "محمد بن عبد الله", "عظام أقوى في سبعة أيام", "اليوم الأول: البداية", "دورة العظام",
        "info@مثال.example", "info@xn--mgbh0fb.example",
        "محمد@مثال.example", "محمد@xn--mgbh0fb.example",
    ),
    "emoji": Case(
        "Ana 💪🦴", "Strong bones 🦴✨", "Day 1 🎉 let's go", "Drip 💧 lessons",
        "lessons@example.com", "lessons@example.com", "😀@example.com", "😀@example.com",
    ),
}  # fmt: skip


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def course_for(tmp_path: Path, case: Case) -> Course:
    toml = (
        f'slug = "tiny"\ntitle = {toml_string(case.title)}\n'
        f"sender_name = {toml_string(case.sender_name)}\n"
        f"sender_email = {toml_string(case.sender)}\n"
        'postal_address = "1 Tiny Road"\ntimezone = "UTC"\n'
    )
    folder = write_course(tmp_path / "tiny", days=2, toml=toml)
    first = lesson_file(1).replace("subject: Subject 1", f"subject: {toml_string(case.subject)}")
    (folder / "01.md").write_text(first, encoding="utf-8")
    return load_course(folder)


def utf8_headers(case: Case) -> frozenset[str]:
    """The headers that carry a local part outside ASCII (as UTF-8, RFC 6532)."""
    return frozenset(
        name
        for name, address in (("From", case.sender), ("To", case.reader))
        if not address.partition("@")[0].isascii()
    )


def with_lines(course: Course, case: Case) -> Course:
    """`course` with the lines of `case`, even those the course loader would refuse."""
    first = replace(course.lessons[0], subject=case.subject)
    return replace(
        course, title=case.title, sender_name=case.sender_name, sender_email=case.sender,
        lessons=(first, *course.lessons[1:]),
    )  # fmt: skip


def emails_for(
    tmp_path: Path, case: Case, course: Course | None = None
) -> list[tuple[Outgoing, str]]:
    """The lesson and the confirmation for `case`, each with the subject it should have."""
    course = course or course_for(tmp_path, case)
    reader = normalize_email(case.reader)
    lesson = LessonRenderer(LINKS).render(
        course, 1, Recipient(reader, case.name, "u" * 32, "m" * 32), message_id="<l@x>", now=NOW
    )
    confirmation = render_confirmation(
        course, reader, case.name, "https://drip.example.org/confirm/t", message_id="<c@x>", now=NOW
    )
    return [
        (lesson, case.subject),
        (confirmation, f"Confirm your subscription: {case.title}"),
    ]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_header_reads_back_as_written(tmp_path: Path, case: Case) -> None:
    for outgoing, subject in emails_for(tmp_path, case):
        check_header_lines(outgoing.data, utf8=utf8_headers(case))
        message = parse_strictly(outgoing.data)
        assert str(message["Subject"]) == subject
        assert message["From"].addresses[0].display_name == case.sender_name
        assert message["To"].addresses[0].display_name == case.name
        assert addr_spec(message, "From") == case.sender_wire
        assert addr_spec(message, "To") == case.reader_wire
        domain = case.sender_wire.partition("@")[2]
        assert str(message["List-Id"]) == f"{case.title} <tiny.{domain}>"
        assert case.name in body_text(message, "plain")
        assert case.name in body_text(message, "html")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_envelope_is_in_a_labels_and_says_when_it_needs_smtputf8(
    tmp_path: Path, case: Case
) -> None:
    for outgoing, _ in emails_for(tmp_path, case):
        assert (outgoing.sender, outgoing.recipient) == (case.sender_wire, case.reader_wire)
        assert outgoing.needs_smtputf8 == bool(utf8_headers(case))
        assert set(outgoing.utf8_addresses) == {
            address for address in (case.sender_wire, case.reader_wire) if not address.isascii()
        }


def test_an_ascii_message_is_ascii_from_end_to_end(tmp_path: Path) -> None:
    case = CASES["german"]._replace(
        sender="kurs@example.com", sender_wire="kurs@example.com",
        reader="user@bücher.example", reader_wire="user@xn--bcher-kva.example",
    )  # fmt: skip
    for outgoing, _ in emails_for(tmp_path, case):
        head = outgoing.data.split(b"\r\n\r\n", 1)[0]
        assert head.isascii() and not outgoing.needs_smtputf8
        assert b"To: =?utf-8?" in head and b"<user@xn--bcher-kva.example>" in head


def test_addresses_are_normalized_by_the_one_validator() -> None:
    assert normalize_email(" José@Bücher.EXAMPLE ") == "José@bücher.example"
    assert normalize_email("a@xn--bcher-kva.example") == "a@bücher.example"
    assert normalize_email("ü@example.de") == "ü@example.de"
    for bad in ("a@b", "Ana <a@b.example>", "a\r\n@b.example", "a@☕.example", "a@-x.example"):
        with pytest.raises(InvalidInput):
            normalize_email(bad)


def test_wire_addresses_use_idna_2008() -> None:
    assert wire_address("a@straße.de") == "a@xn--strae-oqa.de"  # not IDNA 2003's "strasse"
    assert wire_address("josé@bücher.example") == "josé@xn--bcher-kva.example"
    assert wire_address("plain@example.com") == "plain@example.com"


@pytest.mark.parametrize(
    "text", ["=?utf-8?q?Admin?=", "=?utf-8?b?U3VwcG9ydA==?= team", "Eve =?iso-8859-1?q?=E9?="]
)
def test_text_that_looks_like_an_encoded_word_stays_text(tmp_path: Path, text: str) -> None:
    case = CASES["spanish"]._replace(name=text, subject=text, title=text, sender_name=text)
    for outgoing, subject in emails_for(tmp_path, case):
        message = parse_strictly(outgoing.data)
        assert str(message["Subject"]) == subject
        assert message["To"].addresses[0].display_name == text
        assert message["From"].addresses[0].display_name == text
        assert str(message["List-Id"]).startswith(text + " <")
        assert text.encode() not in outgoing.data.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x00"])
def test_line_breaks_never_reach_a_header(tmp_path: Path, sep: str) -> None:
    evil = f"Eve{sep}Bcc: victim@example.com{sep}{sep}body"
    case = CASES["german"]._replace(name=evil, subject=evil, title=evil, sender_name=evil)
    course = with_lines(course_for(tmp_path, CASES["german"]), case)
    for outgoing, _ in emails_for(tmp_path, case, course):
        message = parse_strictly(outgoing.data)
        assert message["Bcc"] is None
        assert message["To"].addresses[0].display_name == "Eve Bcc: victim@example.com body"
        assert str(message["Subject"]).endswith("Eve Bcc: victim@example.com body")


def test_undecodable_bytes_of_a_command_line_do_not_stop_a_lesson(tmp_path: Path) -> None:
    name = "Ana\udcff\udcfeLima"  # what sys.argv makes of bytes that are not UTF-8
    case = CASES["spanish"]._replace(name=name)
    for outgoing, _ in emails_for(tmp_path, case):
        message = parse_strictly(outgoing.data)
        assert message["To"].addresses[0].display_name == "Ana Lima"
        assert "Ana Lima" in body_text(message, "plain")


def test_long_text_folds_into_short_encoded_words(tmp_path: Path) -> None:
    name = "山田太郎" * 50 + " Grüße " + "محمد " * 20
    subject = "Día 1: " + "骨を強くする、" * 40 + "🦴" * 30
    case = CASES["japanese"]._replace(name=name, subject=subject, title=subject)
    for outgoing, expected_subject in emails_for(tmp_path, case):
        check_header_lines(outgoing.data, utf8=utf8_headers(case))
        head = outgoing.data.split(b"\r\n\r\n", 1)[0]
        assert max(len(line) for line in head.split(b"\r\n")) < 120
        message = parse_strictly(outgoing.data)
        assert str(message["Subject"]) == expected_subject
        assert rfc2047_display_name(outgoing.data, "To") == name.strip()


ASCII_NAMES = ["Ana", "O'Brien, Jr.", 'Say "hi" \\ now', "two  spaces", "(not a comment)"]


@pytest.mark.parametrize("name", ASCII_NAMES)
def test_ascii_names_are_quoted_where_needed(name: str) -> None:
    line = address_header("To", name, "ana@example.com")
    message = parse_strictly(line.replace(b"\n", b"\r\n") + b"\r\nbody\r\n")
    assert message["To"].addresses[0].display_name == name
    assert message["To"].addresses[0].addr_spec == "ana@example.com"


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=500))
def test_any_text_makes_headers_that_parse_back(text: str) -> None:
    head = header("Subject", text) + address_header("To", text, "ana@xn--bcher-kva.example")
    data = (head + b"\nbody\n").replace(b"\n", b"\r\n")
    check_header_lines(data)
    message = parse_strictly(data)
    expected = one_line(text)
    assert str(message["Subject"]) == expected
    assert addr_spec(message, "To") == "ana@xn--bcher-kva.example"
    if raw_header(data, "To").startswith("=?"):
        assert rfc2047_display_name(data, "To") == expected
    else:
        assert message["To"].addresses[0].display_name == expected
