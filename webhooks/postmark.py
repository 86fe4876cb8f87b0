"""Postmark bounce, spam complaint and delivery webhooks. Postmark signs nothing: the webhook
URL carries HTTP basic credentials we chose, and those are what we check, in constant time.

Postmark's MessageID is Postmark's own identifier, not our Message-ID header, so these events
carry no message_id; the recipient and Postmark's record id identify them."""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import datetime
from typing import Any

from .common import (
    DEFAULT_MAX_BODY,
    EventKind,
    ProviderEvent,
    WebhookRefused,
    WebhookRequest,
    as_object,
    check_method_and_size,
    enhanced_status,
    identifier,
    iso_time,
    one_line,
    optional_text,
    read_json,
    recipient,
    text,
)

SOURCE = "postmark"
# Postmark's bounce types that say something about the address; the rest (auto-replies,
# subscribe requests, open relay tests, challenge messages...) are not bounces of ours.
BOUNCE_KINDS = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "BadEmailAddress": EventKind.HARD_BOUNCE,
    "SoftBounce": EventKind.SOFT_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
    "DnsError": EventKind.SOFT_BOUNCE,
    "Blocked": EventKind.SOFT_BOUNCE,
    "SpamComplaint": EventKind.COMPLAINT,
}


def check_basic_auth(request: WebhookRequest, user: str, password: str) -> None:
    """The Authorization header must carry exactly our user and password."""
    header = request.header("Authorization")
    if not header:
        raise WebhookRefused("no credentials", status=401)
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise WebhookRefused("credentials are not HTTP basic", status=401)
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused("credentials are not base64", status=401) from None
    expected = f"{user}:{password}".encode()
    if not hmac.compare_digest(given, expected):
        raise WebhookRefused("wrong credentials", status=401)


def postmark_events(
    request: WebhookRequest,
    *,
    user: str,
    password: str,
    max_body: int = DEFAULT_MAX_BODY,
) -> list[ProviderEvent]:
    """The event of one Postmark webhook once its credentials hold; record types other than
    Bounce, SpamComplaint and Delivery (opens, clicks, subscription changes) carry none."""
    check_method_and_size(request, max_body)
    check_basic_auth(request, user, password)
    record = as_object(read_json(request, max_body), "body")
    record_type = optional_text(record, "RecordType")
    if record_type == "Delivery":
        return [_delivery(record)]
    if record_type in {"Bounce", "SpamComplaint"}:
        kind = BOUNCE_KINDS.get(text(record, "Type"))
        return [] if kind is None else [_bounce(record, kind)]
    return []


def _record_id(record: dict[str, Any]) -> str:
    value = record.get("ID")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return identifier(record, "ID")


def _bounce(record: dict[str, Any], kind: EventKind) -> ProviderEvent:
    details = optional_text(record, "Details")
    description = optional_text(record, "Description")
    return ProviderEvent(
        kind=kind,
        recipient=recipient(record, "Email"),
        message_id=None,
        status=enhanced_status(details, description),
        diagnostic=one_line(details or description or text(record, "Type")),
        source=SOURCE,
        key=f"{text(record, 'RecordType')}:{_record_id(record)}",
        occurred_at=_time(record, "BouncedAt"),
    )


def _delivery(record: dict[str, Any]) -> ProviderEvent:
    """A delivery has no id of its own: Postmark's message id and the recipient name it."""
    address = recipient(record, "Recipient")
    details = optional_text(record, "Details")
    return ProviderEvent(
        kind=EventKind.DELIVERED,
        recipient=address,
        message_id=None,
        status=enhanced_status(details),
        diagnostic=one_line(details),
        source=SOURCE,
        key=f"Delivery:{identifier(record, 'MessageID')}:{address}",
        occurred_at=_time(record, "DeliveredAt"),
    )


def _time(record: dict[str, Any], name: str) -> datetime:
    return iso_time(text(record, name), name)
