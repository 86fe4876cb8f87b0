"""SendGrid's signed event webhook: an ECDSA (P-256, SHA-256) signature, base64 DER in
X-Twilio-Email-Event-Webhook-Signature, over the X-Twilio-Email-Event-Webhook-Timestamp
header followed by the raw body, checked with the public key SendGrid shows (base64 DER)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ..config import sendgrid_verification_key
from .common import (
    DEFAULT_MAX_BODY,
    EventKind,
    ProviderEvent,
    WebhookRefused,
    WebhookRequest,
    as_list,
    as_object,
    check_method_and_size,
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

SOURCE = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
WINDOW = 300.0
KINDS = {
    "dropped": EventKind.HARD_BOUNCE,  # SendGrid will not send to the address at all
    "deferred": EventKind.SOFT_BOUNCE,
    "spamreport": EventKind.COMPLAINT,
    "delivered": EventKind.DELIVERED,
}


@lru_cache(maxsize=4)
def load_public_key(configured: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER form, parsed once; a key that is not P-256
    is a configuration mistake, raised as ValueError (the settings check it at load)."""
    return sendgrid_verification_key(configured)


def sendgrid_events(
    request: WebhookRequest,
    *,
    now: datetime,
    public_key: str,
    window: float = WINDOW,
    max_body: int = DEFAULT_MAX_BODY,
) -> list[ProviderEvent]:
    """The events of one signed SendGrid post; event types other than bounce, dropped,
    deferred, spamreport and delivered (processed, opens, clicks...) carry none."""
    key = load_public_key(public_key)
    check_method_and_size(request, max_body)
    timestamp = verify_signature(request, key)
    check_window(epoch_time(timestamp, TIMESTAMP_HEADER), now, window, window, TIMESTAMP_HEADER)
    events = []
    for entry in as_list(read_json(request, max_body), "body"):
        event = _event(as_object(entry, "event"))
        if event is not None:
            events.append(event)
    return events


def verify_signature(request: WebhookRequest, key: ec.EllipticCurvePublicKey) -> str:
    """The timestamp header, once the signature over it and the body holds."""
    signature, timestamp = request.header(SIGNATURE_HEADER), request.header(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRefused("request is not signed", status=401)
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature, UnicodeEncodeError):
        raise WebhookRefused("signature does not match", status=403) from None
    return timestamp


def _kind(entry: dict[str, Any]) -> EventKind | None:
    event = entry.get("event")
    if event == "bounce":
        blocked = entry.get("type") == "blocked"
        return EventKind.SOFT_BOUNCE if blocked else EventKind.HARD_BOUNCE
    return KINDS.get(event) if isinstance(event, str) else None


def _event(entry: dict[str, Any]) -> ProviderEvent | None:
    kind = _kind(entry)
    if kind is None:
        return None
    reason = optional_text(entry, "reason") or optional_text(entry, "response")
    status = entry.get("status")
    return ProviderEvent(
        kind=kind,
        recipient=recipient(entry, "email"),
        message_id=message_id(optional_text(entry, "smtp-id")),
        status=enhanced_status(status if isinstance(status, str) else None, reason),
        diagnostic=one_line(reason or optional_text(entry, "type") or str(entry["event"])),
        source=SOURCE,
        key=identifier(entry, "sg_event_id"),
        occurred_at=epoch_time(entry.get("timestamp"), "timestamp"),
    )
