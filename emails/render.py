"""Lesson and confirmation emails as email.message.EmailMessage.

The costly work (the lesson template, Markdown, layout, CSS inlining) is done once per lesson,
with a marker where each personal value goes; each message then only fills the markers in,
escaped for HTML. Subscriber data is therefore never rendered as a template.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, select_autoescape

from course.model import Course
from course.placeholders import compile_body
from emails.links import Links
from emails.markdown import to_html, to_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
PERSONAL = ("first_name", "email", "unsubscribe_url", "preferences_url", "view_online_url")
SLOT = {name: f"dripslot{index}x{name.replace('_', '')}z" for index, name in enumerate(PERSONAL)}
FALLBACK_FIRST_NAME = "friend"
# CRLF on the wire; headers folded only past RFC 5322's 998, so List-Unsubscribe stays one line.
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

_layouts = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_inliner = css_inline.CSSInliner(keep_style_tags=False)


@dataclass(frozen=True)
class Recipient:
    """Who a lesson goes to, and the tokens of their personal links."""

    email: str
    name: str
    unsubscribe_token: str
    manage_token: str


def one_line(value: str) -> str:
    """`value` with control characters (CR, LF, ...) turned into spaces: safe in a header."""
    return _CONTROL.sub(" ", value).strip()


@dataclass(frozen=True)
class _Prepared:
    """A lesson rendered for nobody in particular: markers where the personal values go."""

    subject: str
    html: str
    text: str


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(SLOT[name], value)
    return template


class LessonRenderer:
    """Renders lesson emails, keeping each lesson's prepared form for the next subscriber."""

    def __init__(self, links: Links) -> None:
        self.links = links
        self._prepared: dict[tuple[str, int], _Prepared] = {}

    def render(
        self, course: Course, day: int, recipient: Recipient, *, message_id: str, now: datetime
    ) -> EmailMessage:
        prepared = self._prepared.get((course.slug, day))
        if prepared is None:
            prepared = self._prepared[(course.slug, day)] = self._prepare(course, day)
        unsubscribe_url = self.links.unsubscribe(recipient.unsubscribe_token)
        values = {
            "first_name": one_line(recipient.name) or FALLBACK_FIRST_NAME,
            "email": recipient.email,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": self.links.preferences(recipient.manage_token),
            "view_online_url": self.links.lesson(recipient.manage_token, day),
        }
        escaped = {name: html.escape(value) for name, value in values.items()}
        msg = _envelope(course, recipient, prepared.subject, message_id, now)
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        _set_body(msg, _fill(prepared.text, values), _fill(prepared.html, escaped))
        return msg

    def _prepare(self, course: Course, day: int) -> _Prepared:
        lesson = course.lesson(day)
        body = compile_body(lesson.body).render(
            day=day, total_days=course.total_days, course_title=course.title, **SLOT
        )
        context = {
            "course": course,
            "lesson": lesson,
            "next_lesson": course.next_lesson(day),
            "slot": SLOT,
        }
        page = _layouts.get_template("lesson.html").render(
            body_html=to_html(body, course.slug, self.links), **context
        )
        text = _layouts.get_template("lesson.txt").render(
            body_text=to_text(body, course.slug, self.links), **context
        )
        return _Prepared(subject=lesson.subject, html=_inliner.inline(page), text=text)


def render_confirmation(
    course: Course, email: str, name: str, confirm_url: str, *, message_id: str, now: datetime
) -> EmailMessage:
    """The double opt-in email: one link that activates the subscription."""
    context = {"course": course, "first_name": one_line(name), "confirm_url": confirm_url}
    recipient = Recipient(email=email, name=name, unsubscribe_token="", manage_token="")
    msg = _envelope(course, recipient, f"Confirm your subscription: {course.title}", message_id, now)
    page = _layouts.get_template("confirm.html").render(**context)
    _set_body(msg, _layouts.get_template("confirm.txt").render(**context), _inliner.inline(page))
    return msg


def _envelope(
    course: Course, recipient: Recipient, subject: str, message_id: str, now: datetime
) -> EmailMessage:
    msg = EmailMessage(policy=WIRE_POLICY)
    msg["From"] = Address(one_line(course.sender_name), addr_spec=course.sender_email)
    msg["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    if course.reply_to:
        msg["Reply-To"] = course.reply_to
    domain = course.sender_email.rpartition("@")[2]
    msg["List-Id"] = f"{one_line(course.title)} <{course.slug}.{domain}>"
    return msg


def _set_body(msg: EmailMessage, text: str, page: str) -> None:
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    msg.add_alternative(page, subtype="html", charset="utf-8", cte="quoted-printable")
