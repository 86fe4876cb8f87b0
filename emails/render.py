"""Lesson and confirmation emails as email.message.EmailMessage.

The costly work (the lesson template, Markdown, layout, CSS inlining) is done once per lesson,
with a marker where each personal value goes; each message then only fills the markers in,
escaped for HTML. Subscriber data is therefore never rendered as a template.

Any failure to build a message (the lesson's template, a value that cannot be encoded) is a
RenderError naming the course file, so the one message fails and the others go on.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..course.model import Course
from ..course.placeholders import render_body
from ..errors import RenderError
from .headers import address_header, domain_of, header, one_line, phrase, wire_address
from .i18n import gettext_for
from .links import Links
from .markdown import to_html, to_text
from .mime import Multipart, Outgoing, QPTemplate, qp

TEMPLATES = Path(__file__).resolve().parent / "templates"
PERSONAL = ("first_name", "email", "unsubscribe_url", "preferences_url", "view_online_url",
            "next_url", "snooze_url", "restart_url")  # fmt: skip
SLOT = {name: f"dripslot{index}x{name.replace('_', '')}z" for index, name in enumerate(PERSONAL)}
FALLBACK_FIRST_NAME = "friend"

layouts = Environment(  # the email layouts; emails/preview.py uses them too
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
    cadence: str | None = None  # the learner's own days (schedule.CADENCES), None: the course's


@dataclass(frozen=True)
class _Prepared:
    """A lesson rendered for nobody in particular, encoded, with slots for the personal values."""

    mime: Multipart
    sender: str  # the course's address in its wire form
    text: QPTemplate
    html: QPTemplate
    page: str  # the inlined HTML, not encoded, with the slots in it


class LessonRenderer:
    """Renders lesson emails, keeping each lesson's prepared form for the next subscriber."""

    def __init__(self, links: Links) -> None:
        self.links = links
        self._prepared: dict[tuple[str, int, bool], _Prepared] = {}

    def render(
        self, course: Course, day: int, recipient: Recipient, *, message_id: str, now: datetime
    ) -> Outgoing:
        """The lesson for `recipient`, as bytes ready to send; RenderError if it cannot be."""
        with _Building(course, day):
            prepared = self._prepared_lesson(course, day, recipient)
            values = self._values(recipient, day, course.language)
            escaped = {name: html.escape(value) for name, value in values.items()}
            to = wire_address(recipient.email)
            personal = [
                *_personal_headers(recipient.name, to, message_id, now),
                f"List-Unsubscribe: <{values['unsubscribe_url']}>\n".encode(),
            ]
            text, page = prepared.text.fill(values), prepared.html.fill(escaped)
            data = prepared.mime.build(personal, text, page)
        return Outgoing(prepared.sender, to, message_id, data)

    def page(self, course: Course, day: int, recipient: Recipient) -> str:
        """The lesson's HTML as the email shows it, for the "view in your browser" page."""
        with _Building(course, day):
            page = self._prepared_lesson(course, day, recipient).page
        for name, value in self._values(recipient, day, course.language).items():
            page = page.replace(SLOT[name], html.escape(value))
        return page

    def _prepared_lesson(self, course: Course, day: int, recipient: Recipient) -> _Prepared:
        """Prepared once per lesson and kind of learner: one who gets a lesson every day reads
        "Tomorrow" above the teaser, one whose days (the course's, narrowed by their own
        cadence) skip some reads "Next time", so a weekdays learner never on a Friday."""
        every_day = len(course.cadence.narrowed(recipient.cadence).days) == 7
        key = (course.slug, day, every_day)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = self._prepare(course, day, every_day)
        return prepared

    def _values(self, recipient: Recipient, day: int, language: str) -> dict[str, str]:
        return {
            "first_name": one_line(recipient.name) or gettext_for(language)(FALLBACK_FIRST_NAME),
            "email": recipient.email,
            "unsubscribe_url": self.links.unsubscribe(recipient.unsubscribe_token),
            "preferences_url": self.links.preferences(recipient.manage_token),
            "view_online_url": self.links.lesson(recipient.manage_token, day),
            "next_url": self.links.pace(recipient.manage_token, "next", day),
            "snooze_url": self.links.pace(recipient.manage_token, "snooze", day, "days=7"),
            "restart_url": self.links.pace(recipient.manage_token, "restart", day),
        }

    def message(
        self, course: Course, day: int, recipient: Recipient, *, message_id: str, now: datetime
    ) -> EmailMessage:
        """The same lesson as an EmailMessage, parsed back from the bytes that would be sent."""
        return self.render(course, day, recipient, message_id=message_id, now=now).as_message()

    def _prepare(self, course: Course, day: int, every_day: bool) -> _Prepared:
        lesson = course.lesson(day)
        values = {"day": day, "total_days": course.total_days, "course_title": course.title}
        body = render_body(lesson, {**values, **SLOT})
        context = {
            "course": course,
            "lesson": lesson,
            "next_lesson": course.next_lesson(day),
            "slot": SLOT,
            "every_day": every_day,
            "_": gettext_for(course.language),
        }
        page = layouts.get_template("lesson.html").render(
            body_html=to_html(body, course.slug, self.links), **context
        )
        text = layouts.get_template("lesson.txt").render(
            body_text=to_text(body, course.slug, self.links), **context
        )
        static = [
            _from_header(course),
            header("Subject", lesson.subject),
            *_list_headers(course),
            header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            feedback_id(course, f"lesson-{day}", "lesson"),
        ]
        inlined = _inliner.inline(page)
        return _Prepared(
            mime=Multipart(static),
            sender=wire_address(course.sender_email),
            text=QPTemplate(text, SLOT),
            html=QPTemplate(inlined, SLOT),
            page=inlined,
        )


def feedback_id(course: Course, campaign: str, kind: str) -> bytes:
    """Gmail's Feedback-ID (campaign:customer:type:sender), so its Postmaster Tools report
    complaints per lesson and per course."""
    return f"Feedback-ID: {campaign}:{course.slug}:{kind}:drip\n".encode()


def _list_headers(course: Course) -> list[bytes]:
    label = phrase(course.title, "List-Id")
    lines = [f"List-Id: {label} <{course.slug}.{domain_of(course.sender_email)}>\n".encode()]
    if course.reply_to:
        lines.append(address_header("Reply-To", "", wire_address(course.reply_to)))
    return lines


def render_confirmation(
    course: Course, email: str, name: str, confirm_url: str, *, message_id: str, now: datetime
) -> Outgoing:
    """The double opt-in email: one link that activates the subscription (or RenderError)."""
    _ = gettext_for(course.language)
    context = {"course": course, "first_name": one_line(name), "confirm_url": confirm_url, "_": _}
    with _Building(course):
        text = layouts.get_template("confirm.txt").render(**context)
        page = _inliner.inline(layouts.get_template("confirm.html").render(**context))
        mime = Multipart(
            [
                _from_header(course),
                header(
                    "Subject", _("Confirm your subscription: %(title)s") % {"title": course.title}
                ),
                *_list_headers(course),
                feedback_id(course, "confirm", "confirmation"),
            ]
        )
        to = wire_address(email)
        data = mime.build(_personal_headers(name, to, message_id, now), qp(text), qp(page))
    return Outgoing(wire_address(course.sender_email), to, message_id, data)


def _personal_headers(name: str, to: str, message_id: str, now: datetime) -> list[bytes]:
    """To (`to` in its wire form), Date and Message-ID: the headers each message has its own."""
    return [
        address_header("To", name, to),
        f"Date: {format_datetime(now)}\nMessage-ID: {message_id}\n".encode(),
    ]


def _from_header(course: Course) -> bytes:
    return address_header("From", course.sender_name, wire_address(course.sender_email))


class _Building:
    """A `with` block that builds one message: whatever it raises becomes a RenderError naming
    the course file the message comes from (the lesson's file, or course.toml), so it fails
    that one message only. A RenderError from the lesson's template already names its line."""

    def __init__(self, course: Course, day: int | None = None) -> None:
        self.course, self.day = course, day

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if not isinstance(exc, Exception) or isinstance(exc, RenderError):
            return
        if self.day is None:
            source = self.course.path / "course.toml"
        elif 1 <= self.day <= self.course.total_days:
            source = self.course.lesson(self.day).source
        else:
            source = self.course.path
        raise RenderError(
            f"the email cannot be built: {type(exc).__name__}: {exc}", source
        ) from exc
