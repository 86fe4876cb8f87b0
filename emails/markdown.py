"""Lesson Markdown to HTML and text, with the course folder's relative links made absolute."""

from __future__ import annotations

from ..course.markup import MARKDOWN, relative_attrs, relative_urls
from .links import Links


def to_html(source: str, course_slug: str, links: Links) -> str:
    """Render `source`; relative URLs point at the course's files on the web app."""
    tokens = MARKDOWN.parse(source)
    for child, attr, url in relative_attrs(tokens):
        child.attrs[attr] = links.asset(course_slug, url)
    return MARKDOWN.renderer.render(tokens, MARKDOWN.options, {})


def to_text(source: str, course_slug: str, links: Links) -> str:
    """The Markdown source is the plain-text part; only its relative URLs are made absolute."""
    for url in dict.fromkeys(relative_urls(source)):
        source = source.replace(f"]({url}", f"]({links.asset(course_slug, url)}")
    return source
