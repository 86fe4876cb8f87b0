"""Outgoing webhooks: events written to an outbox in the transaction of what they report,
delivered by a pass of their own, signed as the Standard Webhooks specification says."""

from .deliver import Deliverer, DeliveryResult
from .events import announce
from .outbox import EVENT_TYPES, HookEvent, enqueue, listening
from .signature import WebhookVerificationError, new_secret, verify

__all__ = [
    "EVENT_TYPES",
    "Deliverer",
    "DeliveryResult",
    "HookEvent",
    "WebhookVerificationError",
    "announce",
    "enqueue",
    "listening",
    "new_secret",
    "verify",
]
