"""Email rendering: Jinja2 layouts around lesson Markdown, into bytes ready for SMTP."""

from .links import Links
from .mime import Outgoing
from .render import LessonRenderer, Recipient, render_confirmation

__all__ = ["LessonRenderer", "Links", "Outgoing", "Recipient", "render_confirmation"]
