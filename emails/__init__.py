"""Email rendering: Jinja2 layouts around lesson Markdown, into EmailMessage objects."""

from emails.links import Links
from emails.render import LessonRenderer, Recipient, render_confirmation

__all__ = ["LessonRenderer", "Links", "Recipient", "render_confirmation"]
