"""What every provider's webhook shares: the normalised event, the one refusal, and careful
readers for untrusted JSON, so a hostile body can only ever end in `WebhookRefused`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

DEFAULT_MAX_BODY = 256 * 1024
DIAGNOSTIC_LIMIT = 300
RECIPIENT_LIMIT = 320
IDENTIFIER_LIMIT = 200
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_FRACTION = re.compile(r"(\.\d{6})\d+")


class WebhookRefused(Exception):
    """The request is not believed; `status` is the 4xx to answer with, `reason` says why."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class EventKind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class ProviderEvent:
    """One recipient's fate as a relay reported it, the same shape whichever relay it was.

    `message_id` is the relay's copy of our Message-ID header, in angle brackets, or None when
    the relay reports only its own identifiers; `key` is the relay's id for the event, so a
    webhook delivered twice is recognised."""

    kind: EventKind
    recipient: str
    message_id: str | None
    status: str | None
    diagnostic: str
    source: str
    key: str
    occurred_at: datetime


@dataclass(frozen=True)
class WebhookRequest:
    """A request as plain data, so verification needs no web framework; header names match
    whatever their case."""

    method: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                return value if isinstance(value, str) else None
        return None


class SeenTokens(Protocol):
    """Where one-time tokens are remembered until they could no longer pass the time check."""

    def seen(self, token: str) -> bool: ...

    def remember(self, token: str, until: datetime) -> None: ...


class MemorySeenTokens:
    """Seen tokens in a dict, forgotten once expired: for tests and a single process."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def seen(self, token: str) -> bool:
        return token in self._until

    def remember(self, token: str, until: datetime) -> None:
        """Tokens whose time ran out a day before this one's can no longer be replayed."""
        stale = until - timedelta(days=1)
        for expired in [t for t, expiry in self._until.items() if expiry < stale]:
            del self._until[expired]
        self._until[token] = until


def check_method_and_size(request: WebhookRequest, max_body: int) -> None:
    """Only a POST, and a body no longer than `max_body`, is worth reading at all."""
    if not isinstance(request.method, str) or request.method.upper() != "POST":
        raise WebhookRefused("only POST is accepted", status=405)
    if not isinstance(request.body, bytes) or len(request.body) > max_body:
        raise WebhookRefused(f"body over {max_body} bytes", status=413)


def read_json(request: WebhookRequest, max_body: int) -> Any:
    """The body as JSON, after the method and the size are checked and before anything else."""
    check_method_and_size(request, max_body)
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRefused("body is not UTF-8") from None
    return parse_json(body, "body")


def parse_json(value: str, what: str) -> Any:
    """JSON as Python values; NaN, Infinity, endless nesting and huge numbers are refused."""
    try:
        return json.loads(value, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise WebhookRefused(f"{what} is not JSON: {type(error).__name__}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def as_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookRefused(f"{what} is not an object")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise WebhookRefused(f"{what} is not a list")
    return value


def text(obj: Mapping[str, Any], name: str) -> str:
    """A required string field."""
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise WebhookRefused(f"{name} is missing or not a string")
    return value


def optional_text(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebhookRefused(f"{name} is not a string")
    return value or None


def identifier(obj: Mapping[str, Any], name: str) -> str:
    """A relay's id for something: printable, bounded, so it can become a key."""
    value = text(obj, name)
    if len(value) > IDENTIFIER_LIMIT or not value.isprintable():
        raise WebhookRefused(f"{name} is not an identifier")
    return value


def recipient(obj: Mapping[str, Any], name: str) -> str:
    """An address as the relay spelled it; anything without an @ is not one."""
    value = text(obj, name).strip()
    if "@" not in value or len(value) > RECIPIENT_LIMIT or not value.isprintable():
        raise WebhookRefused(f"{name} is not an address")
    return value


def iso_time(value: str, what: str) -> datetime:
    """An ISO 8601 instant with its offset (relays send up to seven fraction digits)."""
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
        if parsed.tzinfo is None:
            raise WebhookRefused(f"{what} has no offset")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise WebhookRefused(f"{what} is not a time") from None


def epoch_time(value: Any, what: str) -> datetime:
    """Seconds since 1970, as a number or a string of digits."""
    if isinstance(value, str) and re.fullmatch(r"\d{1,12}(\.\d{1,9})?", value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WebhookRefused(f"{what} is not a time")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookRefused(f"{what} is out of range") from None


def check_window(moment: datetime, now: datetime, past: float, future: float, what: str) -> None:
    """Refuse what is older than `past` seconds or more than `future` seconds ahead of `now`."""
    age = (now - moment).total_seconds()
    if age > past:
        raise WebhookRefused(f"{what} is too old", status=403)
    if -age > future:
        raise WebhookRefused(f"{what} is in the future", status=403)


def one_line(value: str | None, limit: int = DIAGNOSTIC_LIMIT) -> str:
    """A relay's words made safe for a log line or a table cell: one line, bounded."""
    if not value:
        return ""
    flat = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def enhanced_status(*texts: str | None) -> str | None:
    """The first RFC 3463 status code (like 5.1.1) in the relay's words."""
    for value in texts:
        found = _ENHANCED_STATUS.search(value or "")
        if found:
            return found.group(1)
    return None


def message_id(value: str | None) -> str | None:
    """Our Message-ID as relays echo it, with or without angle brackets, written as in the
    header: `<left@right>`."""
    if not value:
        return None
    bare = value.strip().strip("<>").strip()
    if not bare or len(bare) > 998 or not bare.isprintable() or " " in bare:
        return None
    return f"<{bare}>"
