"""One normalised event read from returned mail, and the rules that name its kind."""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field

DIAGNOSTIC_LIMIT = 300  # a remote server's words, kept short enough for a log line or a column
ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
LEADING_CODE = re.compile(r"\s*([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})\s")
MAILBOX_FULL = "5.2.2"  # treated as temporary, as most senders do: the mailbox may be emptied


class Kind(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class Feedback:
    """What one returned message says about one recipient of one delivery.

    `key` identifies the event itself, so a report that arrives twice is recognised: it hashes
    the source, the delivery (message id, else VERP token), the recipient, the kind and status.
    `subscription_id` and `day` are set only when the VERP token's tag checked out.
    """

    kind: Kind
    recipient: str
    message_id: str | None
    verp_token: str | None
    status: str
    diagnostic: str
    source: str
    subscription_id: int | None = None
    day: int | None = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        delivery = self.message_id or self.verp_token or ""
        parts = [self.source, delivery, self.recipient.lower(), str(self.kind), self.status]
        digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()
        object.__setattr__(self, "key", digest[:32])


@dataclass(frozen=True)
class Delivery:
    """What names the returned delivery: its Message-ID, and a VERP token whose tag checked out."""

    message_id: str | None = None
    verp_token: str | None = None
    subscription_id: int | None = None
    day: int | None = None


def make_event(
    kind: Kind, recipient: str, status: str, diagnostic: str, source: str, delivery: Delivery
) -> Feedback:
    """An event about `delivery`, its diagnostic cut to one bounded line."""
    return Feedback(
        kind=kind,
        recipient=recipient,
        message_id=delivery.message_id,
        verp_token=delivery.verp_token,
        status=status,
        diagnostic=one_line(_without_repeated_codes(diagnostic)),
        source=source,
        subscription_id=delivery.subscription_id,
        day=delivery.day,
    )


def classify(action: str, status: str) -> Kind | None:
    """The kind an RFC 3464 Action and Status amount to; None when they report no event.

    A failure is hard unless its status is temporary (4.x.x) or the mailbox is full (5.2.2);
    a delay is always soft; relayed and expanded say nothing about the recipient's mailbox.
    """
    action = action.strip().lower()
    if action == "delivered":
        return Kind.DELIVERED
    if action == "delayed":
        return Kind.SOFT_BOUNCE
    if action == "failed":
        return Kind.SOFT_BOUNCE if _temporary(status) else Kind.HARD_BOUNCE
    if action:
        return None
    if status.startswith("2."):
        return Kind.DELIVERED
    if status.startswith(("4.", "5.")):
        return Kind.SOFT_BOUNCE if _temporary(status) else Kind.HARD_BOUNCE
    return None


def _temporary(status: str) -> bool:
    return status.startswith("4.") or status == MAILBOX_FULL


def find_status(*texts: str) -> str:
    """The first enhanced status code (RFC 3463, e.g. 5.1.1) in the texts, or ""."""
    for text in texts:
        match = ENHANCED_STATUS.search(text)
        if match:
            return ".".join(str(int(number)) for number in match.groups())
    return ""


def _without_repeated_codes(reply: str) -> str:
    """`550-5.1.1 a 550-5.1.1 b 550 5.1.1 c` (a multi-line reply) reads `550-5.1.1 a b c`."""
    first = LEADING_CODE.match(reply)
    if first is None:
        return reply
    again = re.compile(rf"\s{first[1]}[ -]{re.escape(first[2])}\s+")
    return reply[: first.end()] + again.sub(" ", reply[first.end() :])


def one_line(text: str, limit: int = DIAGNOSTIC_LIMIT) -> str:
    """Whitespace runs (folded lines included) become one space, control characters go."""
    text = text[: limit * 8]
    if not text.isprintable():  # a character at a time only when there is one to replace
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
