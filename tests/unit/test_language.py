"""A course in its own language: the layout's words from the gettext catalogs, `lang` in the
HTML, and `drip check` warning on a word a catalog lacks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from drip.cli import main
from drip.course import load_course
from drip.emails import LessonRenderer, Links, Recipient, render_confirmation
from drip.emails.i18n import layout_words, missing
from drip.errors import CourseError

from conftest import COURSE_TOML, write_course

NOW = datetime(2026, 3, 2, 6, tzinfo=UTC)
NOBODY = Recipient("anna@example.de", "", "u-token", "m-token")


def part(message, kind: str) -> str:
    body = message.get_body((kind,))
    assert body is not None
    return str(body.get_content())


def german(tmp_path: Path):
    return load_course(write_course(tmp_path / "kurs", toml=COURSE_TOML + 'language = "de"\n'))


def test_a_german_lesson_and_confirmation(tmp_path: Path) -> None:
    course = german(tmp_path)
    renderer = LessonRenderer(Links("https://drip.example.org"))
    first = renderer.message(course, 1, NOBODY, message_id="<a@b>", now=NOW)
    html = part(first, "html")
    text = part(first, "plain")
    assert '<html lang="de">' in html and "Tag 1 von 3" in html and "Hallo zusammen," in html
    assert "Nächste Lektion jetzt senden" in text and "Morgen: Title 2" in text
    assert "Abmelden: https://drip.example.org/unsubscribe/u-token" in text
    last = renderer.message(course, 3, NOBODY, message_id="<c@d>", now=NOW)
    assert "Kurs abgeschlossen" in part(last, "plain")
    confirmation = render_confirmation(
        course, "anna@example.de", "Anna", "https://x/confirm/t", message_id="<e@f>", now=NOW
    ).as_message()
    assert confirmation["Subject"] == "Bitte bestätigen Sie Ihr Abonnement: Tiny Course"
    assert "Hallo Anna," in part(confirmation, "plain")


def test_english_and_german_are_complete_and_another_language_is_warned_about(
    tmp_path: Path, capsys
) -> None:
    assert missing("en") == [] and missing("de") == []
    assert set(missing("fr")) == layout_words()
    folder = write_course(tmp_path / "cours", toml=COURSE_TOML + 'language = "fr"\n')
    assert main(["check", str(folder)]) == 0
    warned = capsys.readouterr().err
    assert "language 'fr' has no translation of 'Tomorrow'" in warned


def test_a_language_that_is_not_a_code_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="language 'Deutsch'"):
        load_course(write_course(tmp_path / "k", toml=COURSE_TOML + 'language = "Deutsch"\n'))


def test_drip_check_warns_about_a_missing_word_of_the_pages(tmp_path: Path, monkeypatch, capsys):
    """A German catalog without one of the subscriber pages' words: `drip check` names it."""
    from babel.messages.pofile import read_po, write_po

    from drip.emails import i18n

    assert {"Time zone", "This link does not work", "paused"} <= layout_words(), "pages' words"
    source = i18n.LOCALES / "de" / "LC_MESSAGES" / "drip.po"
    with source.open("rb") as file:
        po = read_po(file, locale="de")
    del po["Time zone"]
    target = tmp_path / "locales" / "de" / "LC_MESSAGES" / "drip.po"
    target.parent.mkdir(parents=True)
    with target.open("wb") as file:
        write_po(file, po)
    monkeypatch.setattr(i18n, "LOCALES", tmp_path / "locales")
    i18n.catalog.cache_clear()
    try:
        assert missing("de") == ["Time zone"]
        folder = write_course(tmp_path / "kurs", toml=COURSE_TOML + 'language = "de"\n')
        assert main(["check", str(folder)]) == 0
        assert "language 'de' has no translation of 'Time zone'" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        i18n.catalog.cache_clear()
    assert missing("de") == []


def test_dates_are_written_for_the_language() -> None:
    from drip.emails.i18n import when

    moment = datetime(2026, 3, 9, 9, 0)
    assert when(moment, "de") == "Montag, 9. März 2026, 09:00"
    assert when(moment, "en") == "Monday, 9 March 2026, 09:00"
