"""The layout's own words in the course's language: gettext catalogs (Babel's .po files in
emails/locales), read once per language. Templates call `_("...")`; English is the source
text, so an English course, or a word a catalog lacks, shows the English words."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = Path(__file__).resolve().parent / "locales"
TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("en", "de")  # English is the templates' own text; the others have a catalog
SUBJECT = "Confirm your subscription: %(title)s"  # the confirmation's subject, built in code
_CALL = re.compile(r"""\b_\("((?:[^"\\]|\\.)*)"\)""")


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


@cache
def layout_words() -> frozenset[str]:
    """Every text the email layouts translate (the `_("...")` calls in emails/templates)."""
    found = {SUBJECT, "friend"}  # and the name of a subscriber who gave none
    for template in TEMPLATES.iterdir():
        found.update(_CALL.findall(template.read_text(encoding="utf-8")))
    return frozenset(found)


def missing(language: str) -> list[str]:
    """The layout's words `language` has no translation for (none for English)."""
    if language == "en":
        return []
    return sorted(layout_words() - set(catalog(language)))
