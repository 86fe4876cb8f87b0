"""Mailgun webhooks: the JSON body carries `signature` {timestamp, token, signature}, the
signature being HMAC-SHA256 of timestamp then token under the webhook signing key. A
timestamp far from now, or a token seen before, is a replay."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from .common import (
    DEFAULT_MAX_BODY,
    EventKind,
    ProviderEvent,
    SeenTokens,
    WebhookRefused,
    WebhookRequest,
    as_object,
    check_window,
    enhanced_status,
    epoch_time,
    identifier,
    message_id,
    one_line,
    optional_text,
    read_json,
    recipient,
)

SOURCE = "mailgun"
WINDOW = 300.0
TOKEN_LIMIT = 200


def mailgun_events(
    request: WebhookRequest,
    *,
    now: datetime,
    signing_key: str,
    seen_tokens: SeenTokens,
    window: float = WINDOW,
    max_body: int = DEFAULT_MAX_BODY,
) -> list[ProviderEvent]:
    """The event of one signed Mailgun webhook; events other than failed, complained and
    delivered (opens, clicks, accepted...) carry none.

    The token is remembered only once the whole request is accepted, and until its timestamp
    leaves the window; a store that keeps it in the same transaction as the events it led to
    lets a failed store be retried."""
    body = as_object(read_json(request, max_body), "body")
    token, timestamp = verify_signature(body.get("signature"), signing_key)
    check_window(timestamp, now, window, window, "timestamp")
    if seen_tokens.seen(token):
        raise WebhookRefused("token seen before", status=403)
    events = _events(as_object(body.get("event-data"), "event-data"))
    seen_tokens.remember(token, timestamp + timedelta(seconds=window))
    return events


def verify_signature(signature: Any, signing_key: str) -> tuple[str, datetime]:
    """The token and timestamp of a signature the key made."""
    if not isinstance(signature, dict):
        raise WebhookRefused("request is not signed", status=401)
    timestamp, token, given = (signature.get(name) for name in ("timestamp", "token", "signature"))
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)  # documented as an int, sent as a string: either is signed
    if not (isinstance(timestamp, str) and isinstance(token, str) and isinstance(given, str)):
        raise WebhookRefused("signature is incomplete", status=401)
    if len(token) > TOKEN_LIMIT or not token.isprintable():
        raise WebhookRefused("token is malformed", status=403)
    when = epoch_time(timestamp, "timestamp")  # digits only, so it encodes
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256)
    if not hmac.compare_digest(
        expected.hexdigest().encode(), given.lower().encode("utf-8", "replace")
    ):
        raise WebhookRefused("signature does not match", status=403)
    return token, when


def _kind(data: dict[str, Any]) -> EventKind | None:
    event = data.get("event")
    if event == "failed":
        severity = data.get("severity")
        return EventKind.HARD_BOUNCE if severity == "permanent" else EventKind.SOFT_BOUNCE
    return {"complained": EventKind.COMPLAINT, "delivered": EventKind.DELIVERED}.get(
        event if isinstance(event, str) else ""
    )


def _events(data: dict[str, Any]) -> list[ProviderEvent]:
    """Mailgun's event id is unique only within a day, so its time goes into the key."""
    kind = _kind(data)
    if kind is None:
        return []
    when = epoch_time(data.get("timestamp"), "event-data.timestamp")
    status, diagnostic = _delivery_status(data)
    return [
        ProviderEvent(
            kind=kind,
            recipient=recipient(data, "recipient"),
            message_id=_our_message_id(data),
            status=status,
            diagnostic=diagnostic or one_line(optional_text(data, "reason")),
            source=SOURCE,
            key=f"{identifier(data, 'id')}@{when.timestamp():.6f}",
            occurred_at=when,
        )
    ]


def _our_message_id(data: dict[str, Any]) -> str | None:
    message = data.get("message")
    if message is None:
        return None
    headers = as_object(as_object(message, "message").get("headers", {}), "message.headers")
    return message_id(optional_text(headers, "message-id"))


def _delivery_status(data: dict[str, Any]) -> tuple[str | None, str]:
    """The enhanced status code and the receiving server's words, when Mailgun has them."""
    value = data.get("delivery-status")
    if value is None:
        return None, ""
    status = as_object(value, "delivery-status")
    words = optional_text(status, "message") or optional_text(status, "description")
    code = status.get("code")
    prefix = f"{code} " if isinstance(code, int) and not isinstance(code, bool) else ""
    enhanced = optional_text(status, "enhanced-code")
    return enhanced_status(enhanced, words), one_line(f"{prefix}{words or ''}")
