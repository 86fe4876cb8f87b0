"""Email rendering: Jinja2 layouts around lesson Markdown, into bytes ready for SMTP."""

from .headers import domain_of
from .links import Links
from .mime import Outgoing
from .render import LessonRenderer, Recipient, render_confirmation

__all__ = [
    "LessonRenderer",
    "Links",
    "Outgoing",
    "Recipient",
    "domain_of",
    "render_confirmation",
]
