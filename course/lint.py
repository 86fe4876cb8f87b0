"""Warnings for a sound course: things a subscriber would notice that are not errors.

- a relative image that is not in the course folder;
- an image without alt text (screen readers, and mail clients that block images, show it);
- a lesson over 1,000 words (a daily email people finish reading);
- a teaser that does not match the lesson it announces: the teaser of lesson k+1 shares no
  significant word (4 letters or more, not a common word) with that lesson's title, subject
  or body, so "Tomorrow: ..." probably promises something else.
"""

from __future__ import annotations

import re

from .markup import MARKDOWN, is_relative
from .model import Course, Lesson

MAX_WORDS = 1000

_WORD = re.compile(r"[a-z]{4,}")
STOP_WORDS = frozenset(
    """about after again also because been before being between both come does doing done down
    each even every from have here into just know like make more most much must need only other
    over same should some such than that their them then there these they this those through
    today tomorrow very want week well were what when where which while will with would your
    yours lesson lessons""".split()  # noqa: SIM905
)


def warnings(course: Course) -> list[str]:
    """Every warning as 'file:line: warning: ...', lesson by lesson."""
    found: list[str] = []
    for lesson in course.lessons:
        found += _images(course, lesson)
        words = len(lesson.body.split())
        if words > MAX_WORDS:
            found.append(f"{lesson.source}:1: warning: {words} words, over {MAX_WORDS}")
        previous = course.lessons[lesson.day - 2] if lesson.day > 1 else None
        if previous is not None and lesson.teaser and not _shares_a_word(lesson):
            found.append(
                f"{lesson.source}:1: warning: the teaser shown after day {previous.day} "
                f"({lesson.teaser!r}) shares no word with this lesson"
            )
    return found


def _images(course: Course, lesson: Lesson) -> list[str]:
    found = []
    offset = lesson.body_line - 1
    for token in MARKDOWN.parse(lesson.body):
        line = offset + (token.map[0] if token.map else 0) + 1
        for child in token.children or []:
            if child.type != "image":
                continue
            src = str(child.attrs.get("src", ""))
            if not child.content.strip():
                found.append(f"{lesson.source}:{line}: warning: image {src!r} has no alt text")
            if is_relative(src) and not (course.path / src).is_file():
                found.append(f"{lesson.source}:{line}: warning: image {src!r} not found")
    return found


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - STOP_WORDS


def _stem(word: str) -> str:
    return word[:5]


def _shares_a_word(lesson: Lesson) -> bool:
    teaser = {_stem(w) for w in _words(lesson.teaser)}
    if not teaser:
        return True
    lesson_words = {_stem(w) for w in _words(f"{lesson.title} {lesson.subject} {lesson.body}")}
    return bool(teaser & lesson_words)
