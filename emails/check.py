"""`drip check`'s last step: every email of a course built as it will be sent, for a subscriber
whose name is as hostile as a signup form lets through.

Loading a course finds what fails for everyone (syntax, unknown placeholders, tags reaching
for other files). What fails only while rendering (`{{ day / 0 }}`, an undefined attribute,
an unsafe access the sandbox refuses, a filter that raises, a course line that cannot be
encoded into a header) is found here, before a subscriber's lesson is stuck on it.
"""

from __future__ import annotations

import html
from datetime import datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage

from ..course.model import Course
from ..errors import RenderError
from .links import Links
from .render import SLOT, LessonRenderer, Recipient, one_line, render_confirmation

# Quotes, angle brackets, an encoded word, CR/LF with a header after it, non-ASCII, markup:
# everything a name must survive as data, 200 characters long (the longest a form accepts).
_HOSTILE = (
    'Zoë "<script>alert(1)</script>" =?utf-8?q?x?= \r\n Bcc: victim@example.com\r\n'
    "Ünïcødé 名前 O'Brien & <b>Co</b> \u2028 {{ day }} "
)
HOSTILE_NAME = (_HOSTILE * 4)[:200]
SAMPLE_SUBSCRIBER = Recipient(
    email="o.brien+check@example.com",
    name=HOSTILE_NAME,
    unsubscribe_token="check-unsubscribe",
    manage_token="check-manage",
)
_MARKER = SLOT["first_name"][:8]  # every personal value's marker starts like this


def render_problems(course: Course, links: Links, now: datetime) -> list[str]:
    """One 'file:line: problem' for each email of `course` (every lesson, the confirmation)
    that cannot be built for the sample subscriber, or comes out damaged."""
    renderer = LessonRenderer(links)
    domain = course.sender_email.rpartition("@")[2]
    problems: list[str] = []
    for lesson in course.lessons:
        try:
            outgoing = renderer.render(
                course, lesson.day, SAMPLE_SUBSCRIBER, message_id=f"<check.{lesson.day}@{domain}>",
                now=now,
            )  # fmt: skip
        except RenderError as exc:
            problems.append(str(exc))
            continue
        problems += _as_problems(f"{lesson.source}:{lesson.body_line}", outgoing.data)
    try:
        outgoing = render_confirmation(
            course, SAMPLE_SUBSCRIBER.email, HOSTILE_NAME, links.confirm("check"),
            message_id=f"<check.confirm@{domain}>", now=now,
        )  # fmt: skip
    except RenderError as exc:
        return [*problems, f"{exc.source}:{exc.line or 1}: confirmation email: {exc.reason}"]
    where = f"{course.path / 'course.toml'}:1: confirmation email"
    return problems + _as_problems(where, outgoing.data)


def _as_problems(where: str, data: bytes) -> list[str]:
    try:
        found = message_problems(data)
    except Exception as exc:  # bytes the standard library's parser chokes on are a problem too
        found = [f"the email does not parse: {type(exc).__name__}: {exc}"]
    return [f"{where}: {problem}" for problem in found]


def message_problems(data: bytes) -> list[str]:
    """What a reader of these bytes would get wrong: a header that does not parse, an address
    that is not the subscriber's alone, a name not escaped in HTML, a placeholder left unfilled
    (a filter such as `{{ first_name | upper }}` changes the marker the value goes into)."""
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    problems = [f"header {name}: {defect}" for name, defect in _header_defects(message)]
    recipients = [a.addr_spec for h in ("To", "Cc", "Bcc") for a in _addresses(message, h)]
    if recipients != [SAMPLE_SUBSCRIBER.email]:
        problems.append(f"the email would go to {recipients}, not to the subscriber alone")
    parts = {kind: message.get_body((kind,)) for kind in ("plain", "html")}
    texts = {kind: part.get_content() if part else "" for kind, part in parts.items()}
    if one_line(HOSTILE_NAME) not in html.unescape(texts["html"]):
        problems.append("the subscriber's name does not appear in the HTML part")
    if "<script" in texts["html"].lower():
        problems.append("the subscriber's name is not escaped in the HTML part")
    if any(_MARKER in text.lower() for text in texts.values()):
        problems.append("a placeholder was changed by a filter and is left unfilled: use it as is")
    return problems


def _header_defects(message: EmailMessage) -> list[tuple[str, str]]:
    found = [("(message)", type(defect).__name__) for defect in message.defects]
    for name, value in message.items():
        found += [(name, str(defect)) for defect in getattr(value, "defects", ())]
    return found


def _addresses(message: EmailMessage, name: str) -> list[Address]:
    return [a for value in message.get_all(name, []) for a in value.addresses]
