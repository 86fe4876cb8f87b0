"""Email rendering: Jinja2 layouts around lesson Markdown, into bytes ready for SMTP."""

from emails.links import Links
from emails.mime import Outgoing
from emails.render import LessonRenderer, Recipient, render_confirmation

__all__ = ["LessonRenderer", "Links", "Outgoing", "Recipient", "render_confirmation"]
