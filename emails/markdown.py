"""Lesson Markdown to HTML, with the course folder's relative links made absolute."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from .links import Links

_md = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
    ["table", "strikethrough", "replacements", "smartquotes"]
)


def is_relative(url: str) -> bool:
    """A path inside the course folder: no scheme, no host, not an in-page anchor."""
    parts = urlsplit(url)
    return not (parts.scheme or parts.netloc or url.startswith(("#", "/")))


def _relative_attrs(tokens: list[Token]) -> Iterator[tuple[Token, str, str]]:
    """(token, attribute, url) for every relative image source and link target."""
    for token in tokens:
        for child in token.children or []:
            for attr in ("src", "href"):
                value = child.attrs.get(attr)
                if isinstance(value, str) and is_relative(value):
                    yield child, attr, value


def relative_urls(source: str) -> list[str]:
    """The relative URLs of a Markdown text, in document order."""
    return [url for _, _, url in _relative_attrs(_md.parse(source))]


def to_html(source: str, course_slug: str, links: Links) -> str:
    """Render `source`; relative URLs point at the course's files on the web app."""
    tokens = _md.parse(source)
    for child, attr, url in _relative_attrs(tokens):
        child.attrs[attr] = links.asset(course_slug, url)
    return _md.renderer.render(tokens, _md.options, {})


def to_text(source: str, course_slug: str, links: Links) -> str:
    """The Markdown source is the plain-text part; only its relative URLs are made absolute."""
    for url in dict.fromkeys(relative_urls(source)):
        source = source.replace(f"]({url}", f"]({links.asset(course_slug, url)}")
    return source
