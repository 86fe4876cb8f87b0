"""Bounces written for people, without a delivery-status part: Exim, Gmail, older Exchange.

Each shape is recognised by its fixed sentence; the failed addresses are the lines that hold
only an address after it, and each address's reply is the SMTP line in the lines that follow it
(Exim indents them under the address; Exchange repeats the address under "Diagnostic
information for administrators"; Gmail gives one reply for all below the addresses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from .feedback import Delivery, Feedback, classify, find_status, make_event
from .parts import ADDRESS, header

FLAGS = re.IGNORECASE | re.MULTILINE


@dataclass(frozen=True)
class Shape:
    source: str
    sentence: re.Pattern[str]
    action: str  # the RFC 3464 Action the shape amounts to: failed or delayed


def _shape(source: str, sentence: str, action: str) -> Shape:
    return Shape(source, re.compile(sentence, FLAGS), action)


SHAPES = (
    _shape("exim", r"has not yet been delivered to one or more of its\s+recipients", "delayed"),
    _shape(
        "exim",
        r"could not be delivered to one or more of its\s+recipients"
        r"|following\s+address\(es\)\s+failed",
        "failed",
    ),
    _shape("gmail", r"Delivery to the following recipients? has been delayed", "delayed"),
    _shape("gmail", r"Delivery to the following recipients? failed permanently", "failed"),
    _shape(
        "exchange",
        r"Delivery has failed to these recipients or (?:groups|distribution lists)",
        "failed",
    ),
)
# Where the bounce's own words end and the copy of the returned message begins.
COPY_STARTS = re.compile(
    r"^\s*-+\s*(?:This is a copy of the message|Original message)|^\s*Original message headers:",
    FLAGS,
)
ADDRESS_LINE = re.compile(
    rf"^\s*<?(?:mailto:)?({ADDRESS.pattern})>?(?:\s*<mailto:[^>]*>)?(?:\s+\(.*\))?\s*:?\s*$"
)
QUOTED_REPLY = re.compile(r"Remote Server returned '([^']{1,500})'", re.IGNORECASE)
# A reply at the start of a line or after "host ...:", or any code with an enhanced status.
REPLY = re.compile(r"(?:^|:)\s*#?([245])\d\d[ -]|\b([245])\d\d[ -]+[245]\.\d{1,3}\.\d{1,3}\b")
CONTINUATION = re.compile(r"^\s*[245]\d\d-")


def text_events(message: Message, text: str, delivery: Delivery) -> list[Feedback]:
    """Events from the first shape whose sentence the text holds; [] when none does."""
    for shape in SHAPES:
        found = shape.sentence.search(text)
        if found is not None:
            return _shape_events(shape, message, _section(text, found.end()), delivery)
    return []


def _shape_events(
    shape: Shape, message: Message, section: str, delivery: Delivery
) -> list[Feedback]:
    replies = recipient_replies(section) or dict.fromkeys(_failed_header(message), "")
    shared_reply = _reply(section.splitlines())
    events = []
    for recipient, reply in replies.items():
        words = reply or shared_reply
        status = _status(words, shape.action)
        kind = classify(shape.action, status)
        if kind is not None:
            events.append(make_event(kind, recipient, status, words, shape.source, delivery))
    return events


def _section(text: str, start: int) -> str:
    """From after the shape's sentence to where the copy of the returned message begins."""
    rest = text[start:]
    copy = COPY_STARTS.search(rest)
    return rest[: copy.start()] if copy else rest


def recipient_replies(section: str) -> dict[str, str]:
    """Each address that stands alone on a line, with the SMTP reply in the lines under it.

    An address may appear twice (Exchange lists it for people, then for administrators): the
    SMTP reply under either wins; failing one, the first line under it ("Unrouteable address").
    """
    replies: dict[str, str] = {}
    words: dict[str, str] = {}
    current: str | None = None
    lines_under: list[str] = []
    for line in [*section.splitlines(), "end@of.section"]:
        alone = ADDRESS_LINE.match(line)
        if alone is None:
            lines_under.append(line)
            continue
        if current is not None:
            replies[current] = replies.get(current) or _reply(lines_under)
            words[current] = words.get(current) or _first(lines_under)
        current, lines_under = alone[1].strip("."), []
    return {address: reply or words[address] for address, reply in replies.items()}


def _reply(lines: list[str]) -> str:
    """The SMTP reply in the lines: a quoted Exchange one, or a reply line and its
    continuations (`550-5.1.1 ...` lines); "" when there is none."""
    for index, line in enumerate(lines):
        quoted = QUOTED_REPLY.search(line)
        if quoted:
            return quoted[1]
        found = REPLY.search(line)
        if found:
            words = [line[found.start() :].strip(": #")]
            for after in lines[index + 1 :]:
                if not CONTINUATION.match(after) and not CONTINUATION.match(words[-1]):
                    break
                if not after.strip():
                    break
                words.append(after.strip())
            return " ".join(words)
    return ""


def _first(lines: list[str]) -> str:
    """What Exim says when no server replied ("Unrouteable address"), as the diagnostic."""
    return next((line.strip() for line in lines if line.strip()), "")


def _status(reply: str, action: str) -> str:
    """The reply's enhanced status, else its class from the basic code, else the action's."""
    status = find_status(reply)
    if status:
        return status
    found = REPLY.search(reply)
    if found:
        return f"{found[1] or found[2]}.0.0"
    return "4.0.0" if action == "delayed" else "5.0.0"


def _failed_header(message: Message) -> list[str]:
    """Exim's X-Failed-Recipients header, for a bounce whose text lists no address alone."""
    value = header(message, "X-Failed-Recipients")
    return [address for address in ADDRESS.findall(value) if address]
