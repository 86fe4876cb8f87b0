"""Bounce, complaint and delivery reports from the relays operators send through (Amazon SES
by way of SNS, Postmark, Mailgun, SendGrid), believed only once proven: each function takes a
request as plain data and returns normalised events, or raises `WebhookRefused` with the 4xx
status to answer. Pure: no database, no network (the SNS certificate fetcher is passed in)."""

from .common import (
    DEFAULT_MAX_BODY,
    EventKind,
    MemorySeenTokens,
    ProviderEvent,
    SeenTokens,
    WebhookRefused,
    WebhookRequest,
)
from .mailgun import mailgun_events
from .postmark import postmark_events
from .sendgrid import load_public_key, sendgrid_events
from .ses import SubscriptionConfirmation, ses_events
from .sns import CertificateCache

__all__ = [
    "DEFAULT_MAX_BODY",
    "CertificateCache",
    "EventKind",
    "MemorySeenTokens",
    "ProviderEvent",
    "SeenTokens",
    "SubscriptionConfirmation",
    "WebhookRefused",
    "WebhookRequest",
    "load_public_key",
    "mailgun_events",
    "postmark_events",
    "sendgrid_events",
    "ses_events",
]
