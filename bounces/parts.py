"""Careful reading of hostile MIME: every helper returns something empty rather than raise."""

from __future__ import annotations

import codecs
import email
import re
from collections.abc import Iterator
from email.message import Message
from email.parser import Parser
from email.policy import compat32

MAX_BYTES = 2_000_000  # reports sit at the start; a huge attached original is cut, not read
MAX_PARTS = 200
MAX_DEPTH = 8
MAX_TEXT = 200_000
ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"'@]+@[A-Za-z0-9.\-\[\]:]+[A-Za-z0-9\]]")
MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)


def parse(data: bytes) -> Message:
    """The message, parsed leniently (compat32 keeps defects as notes instead of errors)."""
    return email.message_from_bytes(data[:MAX_BYTES], policy=compat32)


def walk(message: Message) -> Iterator[Message]:
    """Every part, depth first, into multiparts only (an attached message is one part, whose
    text is not the bounce's), bounded in count and depth so nesting cannot exhaust the stack."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part
        payload = part.get_payload()
        if (
            depth < MAX_DEPTH
            and isinstance(payload, list)
            and part.get_content_maintype() == "multipart"
        ):
            children = [child for child in payload if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))


def header(message: Message, name: str) -> str:
    """One header as text: decoded words kept as they are, stray bytes replaced, never raises."""
    value = message.get(name)
    return "" if value is None else _clean(str(value))


def headers(message: Message, name: str) -> list[str]:
    """Every occurrence of a header, as `header` reads one."""
    return [_clean(str(value)) for value in message.get_all(name) or []]


def _clean(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def content_type(part: Message) -> str:
    return _clean(part.get_content_type()).lower()


def text_of(part: Message) -> str:
    """A leaf part's text, transfer-decoded, in its charset where Python knows it, else UTF-8."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return ""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    charset = _clean(part.get_content_charset() or "utf-8")
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        charset = "utf-8"
    return raw[:MAX_TEXT].decode(charset, "replace")


def body_text(message: Message) -> str:
    """The first text/plain part's text (the human-readable part of a bounce), or ""."""
    for part in walk(message):
        if content_type(part) == "text/plain":
            return text_of(part)
    return ""


def blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part.

    The parser splits delivery-status into blocks and parses a feedback report as one; a part
    it left as text (another content type, a nested report) is split here.
    """
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = text_of(part)
    return [header_block(chunk) for chunk in re.split(r"\r?\n[ \t]*\r?\n", text) if chunk.strip()]


def header_block(text: str) -> Message:
    """Parse header lines (a text/rfc822-headers part, one DSN block) into a Message."""
    return Parser(policy=compat32).parsestr(text[:MAX_TEXT], headersonly=True)


def original_headers(message: Message) -> Message | None:
    """The returned message's own headers: from message/rfc822 or text/rfc822-headers."""
    for part in walk(message):
        kind = content_type(part)
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        elif kind == "text/rfc822-headers":
            return header_block(text_of(part))
    return None


def message_id_of(original: Message | None, text: str = "") -> str | None:
    """The returned message's Message-ID: from its headers, else from a copy quoted in text."""
    if original is not None:
        found = MESSAGE_ID.search(f"Message-ID: {header(original, 'Message-ID')}")
        if found:
            return found[1]
    found = MESSAGE_ID.search(text)
    return found[1] if found else None


def address_in(text: str) -> str:
    """The first mail address in a header value or a line (`rfc822; a@b`, `Name <a@b>`), or ""."""
    found = ADDRESS.search(text)
    return found[0].strip(".") if found else ""
