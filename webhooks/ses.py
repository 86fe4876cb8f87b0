"""Amazon SES bounce, complaint and delivery notifications, arriving through SNS: the envelope
is verified (webhooks.sns) before the SES JSON inside it is read."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from .common import (
    DEFAULT_MAX_BODY,
    EventKind,
    ProviderEvent,
    WebhookRefused,
    WebhookRequest,
    as_list,
    as_object,
    enhanced_status,
    identifier,
    iso_time,
    message_id,
    one_line,
    optional_text,
    parse_json,
    read_json,
    recipient,
    text,
)
from .sns import CertificateCache, verify_sns

SOURCE = "ses"


@dataclass(frozen=True)
class SubscriptionConfirmation:
    """SNS asks us to confirm a subscription: the caller decides whether to visit the URL."""

    topic_arn: str
    subscribe_url: str


def ses_events(
    request: WebhookRequest,
    *,
    now: datetime,
    certificates: CertificateCache,
    trusted: Sequence[x509.Certificate],
    topics: Collection[str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> list[ProviderEvent] | SubscriptionConfirmation:
    """The events of a signed SNS notification from SES, or the confirmation SNS asks for.

    `topics`, when given, are the only topic ARNs believed; `trusted` are the CA certificates
    an SNS signing certificate must chain to."""
    envelope = as_object(read_json(request, max_body), "body")
    announced = request.header("x-amz-sns-message-type")
    if announced is not None and announced != envelope.get("Type"):
        raise WebhookRefused("x-amz-sns-message-type does not match the message")
    sns = verify_sns(envelope, now=now, certificates=certificates, trusted=trusted, topics=topics)
    if sns.type == "SubscriptionConfirmation" and sns.subscribe_url:
        return SubscriptionConfirmation(sns.topic_arn, sns.subscribe_url)
    if sns.type != "Notification":
        return []
    return ses_notification(as_object(parse_json(sns.message, "Message"), "Message"))


def ses_notification(notification: dict[str, Any]) -> list[ProviderEvent]:
    """Events of one SES notification; kinds other than bounce, complaint and delivery (the
    subscription test message, opens, sends) carry none."""
    kind = notification.get("notificationType") or notification.get("eventType")
    readers = {"Bounce": _bounce, "Complaint": _complaint, "Delivery": _delivery}
    reader = readers.get(kind) if isinstance(kind, str) else None
    if reader is None:
        return []
    mail = as_object(notification.get("mail"), "mail")
    return reader(notification, mail, our_message_id(mail))


def our_message_id(mail: dict[str, Any]) -> str | None:
    """Our Message-ID header from the original headers SES kept (SES's own messageId is not
    it)."""
    common = notification_part(mail, "commonHeaders")
    found = message_id(optional_text(common, "messageId")) if common else None
    if found:
        return found
    for header in as_list(mail.get("headers", []), "mail.headers"):
        header = as_object(header, "mail.headers entry")
        if optional_text(header, "name") and text(header, "name").lower() == "message-id":
            return message_id(optional_text(header, "value"))
    return None


def notification_part(parent: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = parent.get(name)
    return None if value is None else as_object(value, name)


def _bounce(
    notification: dict[str, Any], mail: dict[str, Any], our_id: str | None
) -> list[ProviderEvent]:
    bounce = as_object(notification.get("bounce"), "bounce")
    bounce_type = text(bounce, "bounceType")
    kind = EventKind.HARD_BOUNCE if bounce_type == "Permanent" else EventKind.SOFT_BOUNCE
    feedback = identifier(bounce, "feedbackId")
    when = iso_time(text(bounce, "timestamp"), "bounce.timestamp")
    fallback = f"{bounce_type} {optional_text(bounce, 'bounceSubType') or ''}"
    events = []
    for entry in as_list(bounce.get("bouncedRecipients"), "bouncedRecipients"):
        entry = as_object(entry, "bouncedRecipients entry")
        address = recipient(entry, "emailAddress")
        diagnostic = optional_text(entry, "diagnosticCode")
        events.append(
            ProviderEvent(
                kind=kind,
                recipient=address,
                message_id=our_id,
                status=enhanced_status(optional_text(entry, "status"), diagnostic),
                diagnostic=one_line(diagnostic or fallback),
                source=SOURCE,
                key=f"{feedback}:{address}",
                occurred_at=when,
            )
        )
    return events


def _complaint(
    notification: dict[str, Any], mail: dict[str, Any], our_id: str | None
) -> list[ProviderEvent]:
    complaint = as_object(notification.get("complaint"), "complaint")
    feedback = identifier(complaint, "feedbackId")
    when = iso_time(text(complaint, "timestamp"), "complaint.timestamp")
    diagnostic = one_line(optional_text(complaint, "complaintFeedbackType") or "complaint")
    events = []
    for entry in as_list(complaint.get("complainedRecipients"), "complainedRecipients"):
        address = recipient(as_object(entry, "complainedRecipients entry"), "emailAddress")
        events.append(
            ProviderEvent(
                EventKind.COMPLAINT,
                address,
                our_id,
                None,
                diagnostic,
                SOURCE,
                f"{feedback}:{address}",
                when,
            )
        )
    return events


def _delivery(
    notification: dict[str, Any], mail: dict[str, Any], our_id: str | None
) -> list[ProviderEvent]:
    """SES gives a delivery no id of its own: its message id and the recipient name it."""
    delivery = as_object(notification.get("delivery"), "delivery")
    ses_id = identifier(mail, "messageId")
    when = iso_time(text(delivery, "timestamp"), "delivery.timestamp")
    response = optional_text(delivery, "smtpResponse")
    events = []
    for entry in as_list(delivery.get("recipients"), "delivery.recipients"):
        address = recipient({"recipient": entry}, "recipient")
        events.append(
            ProviderEvent(
                EventKind.DELIVERED,
                address,
                our_id,
                enhanced_status(response),
                one_line(response),
                SOURCE,
                f"{ses_id}:{address}",
                when,
            )
        )
    return events
