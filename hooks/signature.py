"""Signatures of outgoing webhooks, as the Standard Webhooks specification has them.

Each message carries three headers: `webhook-id` (the message's id, the same on every retry, so
a receiver can drop a duplicate), `webhook-timestamp` (seconds since the epoch, so a receiver
can refuse an old message) and `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
`{id}.{timestamp}.{body}`, keyed with the endpoint's secret (`whsec_` and base64 bytes).
`verify` is the receiver's side, for tests and for receivers written in Python.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, MutableSet
from datetime import datetime

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60  # a message signed longer ago (or ahead) than this is refused


class WebhookVerificationError(Exception):
    """A message whose headers, signature, age or id does not check out."""


def new_secret() -> str:
    """An endpoint's signing secret: 24 random bytes, base64, after `whsec_`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def new_webhook_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret is not whsec_ and base64") from None


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` (without the `v1,`)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt at sending `body`."""
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + signature(secret, webhook_id, timestamp, body),
    }


def verify(
    secret: str, received: Mapping[str, str], body: bytes, now: datetime,
    seen: MutableSet[str] | None = None,
) -> str:  # fmt: skip
    """The webhook id of a message whose signature holds, signed within TOLERANCE_SECONDS of
    `now`, and (given the ids `seen` so far) not seen before; it is then added to `seen`."""
    lowered = {name.lower(): value for name, value in received.items()}
    webhook_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    if not webhook_id or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise WebhookVerificationError("missing or malformed webhook-id or webhook-timestamp")
    if abs(now.timestamp() - int(stamp)) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("the timestamp is too old or too new")
    expected = signature(secret, webhook_id, int(stamp), body)
    offered = [part.split(",", 1) for part in lowered.get("webhook-signature", "").split()]
    if not any(
        len(pair) == 2 and pair[0] == "v1" and hmac.compare_digest(pair[1], expected)
        for pair in offered
    ):
        raise WebhookVerificationError("no signature matches")
    if seen is not None:
        if webhook_id in seen:
            raise WebhookVerificationError(f"webhook id {webhook_id} was received before")
        seen.add(webhook_id)
    return webhook_id
