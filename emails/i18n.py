"""The layout's own words in the course's language: gettext catalogs (Babel's .po files in
emails/locales), read once per language. Templates call `_("...")`; English is the source
text, so an English course, or a word a catalog lacks, shows the English words.

One catalog per language holds the emails' words and those of the subscriber web pages about
one course (web/templates, and the messages web/*.py marks with `N_("...")`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path

from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.pofile import read_po
from markupsafe import Markup

LOCALES = Path(__file__).resolve().parent / "locales"
TEMPLATES = Path(__file__).resolve().parent / "templates"
WEB = Path(__file__).resolve().parent.parent / "web"
LANGUAGES = ("en", "de")  # English is the templates' own text; the others have a catalog
SUBJECT = "Confirm your subscription: %(title)s"  # the confirmation's subject, built in code
DATE_LOCALES = {"en": "en_GB"}  # English dates as the pages always wrote them: 9 March, 09:00
_CALL = re.compile(r"""(?<!\w)N?_\("((?:[^"\\]|\\.)*)"\)""")


@cache
def catalog(language: str) -> dict[str, str]:
    """msgid -> translation for `language` (empty for English)."""
    path = LOCALES / language / "LC_MESSAGES" / "drip.po"
    if language == "en" or not path.is_file():
        return {}
    with path.open("rb") as file:
        po = read_po(file, locale=language)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def gettext_for(language: str) -> Callable[[str], str]:
    """The `_` the templates of a course in `language` are rendered with."""
    words = catalog(language)
    return lambda text: words.get(text) or text


def html_gettext_for(language: str) -> Callable[[str], str]:
    """The `_` of an autoescaped page: the layout's own words (ours, never a subscriber's) as
    markup, so an apostrophe stays one and `| format` escapes the values put into them; any
    other text (a message that may carry what someone typed) as text, escaped."""
    translate, known = gettext_for(language), layout_words()
    return lambda text: Markup(translate(text)) if text in known else text


def N_(text: str) -> str:
    """Marks a word in code that a page translates later (so `layout_words` finds it)."""
    return text


def when(moment: datetime, language: str) -> str:
    """A day and time as `language` writes them: "Friday, 27 November 2026, 07:30",
    "Freitag, 27. November 2026, 07:30"."""
    locale = DATE_LOCALES.get(language, language)
    day = format_date(moment, "full", locale=locale)
    clock = format_time(moment, "short", locale=locale)
    pattern = str(get_datetime_format("long", locale=locale)).replace("'", "")
    return pattern.replace("{1}", day).replace("{0}", clock)


def _sources() -> Iterator[Path]:
    """The files whose `_("...")` / `N_("...")` calls are the translated words."""
    yield from (p for p in TEMPLATES.iterdir() if p.is_file())
    yield from (WEB / "templates").glob("*.html")
    yield from WEB.glob("*.py")


@cache
def layout_words() -> frozenset[str]:
    """Every text the email layouts and the subscriber pages translate."""
    found = {SUBJECT, "friend"}  # and the name of a subscriber who gave none
    for source in _sources():
        found.update(_CALL.findall(source.read_text(encoding="utf-8")))
    return frozenset(found)


def missing(language: str) -> list[str]:
    """The layout's words `language` has no translation for (none for English)."""
    if language == "en":
        return []
    return sorted(layout_words() - set(catalog(language)))
