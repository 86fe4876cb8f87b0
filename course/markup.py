"""How lesson Markdown is parsed, and which of its URLs point into the course folder.

The course checks and the email renderer both read lessons through this one parser, so a
warning from `drip check` is about the same document the subscriber gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

MARKDOWN = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
    ["table", "strikethrough", "replacements", "smartquotes"]
)


def is_relative(url: str) -> bool:
    """A path inside the course folder: no scheme, no host, not an in-page anchor."""
    parts = urlsplit(url)
    return not (parts.scheme or parts.netloc or url.startswith(("#", "/")))


def relative_attrs(tokens: list[Token]) -> Iterator[tuple[Token, str, str]]:
    """(token, attribute, url) for every relative image source and link target."""
    for token in tokens:
        for child in token.children or []:
            for attr in ("src", "href"):
                value = child.attrs.get(attr)
                if isinstance(value, str) and is_relative(value):
                    yield child, attr, value


def relative_urls(source: str) -> list[str]:
    """The relative URLs of a Markdown text, in document order."""
    return [url for _, _, url in relative_attrs(MARKDOWN.parse(source))]
