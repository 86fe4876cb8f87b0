"""Careful reading of hostile MIME: every helper returns something empty rather than raise."""

from __future__ import annotations

import codecs
import email
import re
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from typing import TypeAlias

TypedPart: TypeAlias = tuple[str, Message]  # a part and its content type, lower-cased
MAX_BYTES = 2_000_000  # reports sit at the start; a huge attached original is cut, not read
MAX_PARTS = 200
MAX_DEPTH = 8
MAX_TEXT = 200_000
ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"'@]+@[A-Za-z0-9.\-\[\]:]+[A-Za-z0-9\]]")
MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)


def parse(data: bytes) -> Message:
    """The message, parsed leniently (compat32 keeps defects as notes instead of errors).

    The standard parser recurses once per nested multipart: a message nested deeper than the
    stack allows is no bounce, and reads as an empty message.
    """
    try:
        return email.message_from_bytes(data[:MAX_BYTES], policy=compat32)
    except RecursionError:
        return Message()


def walk(message: Message) -> list[TypedPart]:
    """Every part with its content type, depth first, into multiparts only (an attached message
    is one part, whose text is not the bounce's), bounded in count and depth."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    found: list[TypedPart] = []
    while stack and len(found) < MAX_PARTS:
        part, depth = stack.pop()
        kind = content_type(part)
        found.append((kind, part))
        payload = part.get_payload()
        if depth < MAX_DEPTH and isinstance(payload, list) and kind.startswith("multipart/"):
            children = [child for child in payload if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
    return found


def header(message: Message, name: str) -> str:
    """One header as text: encoded words decoded, stray bytes replaced; "" when absent."""
    value = message.get(name)
    return "" if value is None else _clean(str(value))


def headers(message: Message, name: str) -> list[str]:
    """Every occurrence of a header, as `header` reads one."""
    return [_clean(str(value)) for value in message.get_all(name) or []]


def _clean(text: str) -> str:
    """Stray bytes replaced, and RFC 2047 encoded words (`=?utf-8?q?...?=`) decoded."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    if "=?" not in text:
        return text
    try:
        chunks = decode_header(text)
    except (HeaderParseError, ValueError):
        return text
    return "".join(_decoded(chunk, charset) for chunk, charset in chunks)


def _decoded(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    return chunk.decode(_known(charset or "ascii"), "replace")


def _known(charset: str) -> str:
    """The charset if Python has a codec for it, else UTF-8 (wrong names are common)."""
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        return "utf-8"
    return charset


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
    charset = _known(part.get_content_charset() or "utf-8")
    return raw[:MAX_TEXT].decode(charset, "replace")


def body_text(parts: list[TypedPart]) -> str:
    """The first text/plain part's text (the human-readable part of a bounce), or ""."""
    for kind, part in parts:
        if kind == "text/plain":
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


def original_headers(parts: list[TypedPart]) -> Message | None:
    """The returned message's own headers: from message/rfc822 or text/rfc822-headers."""
    for kind, part in parts:
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
