"""Requests as the relays would send them, signed with keys and certificates made here: a test
CA and an SNS signing certificate, a Mailgun signing key, a SendGrid P-256 key, Postmark
credentials. Nothing here touches the network."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from drip.webhooks import WebhookRequest
from drip.webhooks.sns import canonical_string

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:drip-bounces"
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425c464de12884c9"
)
MAILGUN_KEY = "key-test-signing-0123456789"
POSTMARK_USER, POSTMARK_PASSWORD = "drip-hooks", "s3cret-pass"


@cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One key per name for the whole run: making RSA keys is the slow part."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None = None,
    *,
    ca: bool = False,
    valid_from: datetime = NOW - timedelta(days=30),
    valid_to: datetime = NOW + timedelta(days=300),
) -> x509.Certificate:
    """A certificate for `subject`, self-signed unless `issuer` (name, key) is given."""
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


@cache
def root_ca() -> x509.Certificate:
    return certificate("Test Root CA", rsa_key("ca"), ca=True)


@cache
def signing_certificate() -> x509.Certificate:
    return certificate("sns.amazonaws.com", rsa_key("sns"), ("Test Root CA", rsa_key("ca")))


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


class CertificateServer:
    """A fetcher that answers from a dict and counts what it was asked for."""

    def __init__(self, documents: dict[str, bytes] | None = None) -> None:
        self.documents = (
            documents if documents is not None else {CERT_URL: pem(signing_certificate())}
        )
        self.asked: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        return self.documents[url]


def sns_envelope(
    message: str,
    *,
    message_type: str = "Notification",
    timestamp: datetime = NOW - timedelta(seconds=5),
    version: str = "1",
    key: rsa.RSAPrivateKey | None = None,
    cert_url: str = CERT_URL,
    subject: str | None = None,
    topic: str = TOPIC,
) -> dict[str, Any]:
    """An SNS message signed as SNS signs: the canonical string under the signing key."""
    envelope: dict[str, Any] = {
        "Type": message_type,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": topic,
        "Message": message,
        "Timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
    }
    if subject is not None:
        envelope["Subject"] = subject
    if message_type != "Notification":
        envelope["Token"] = "2336412f37fb687f5d51e6e2425c464de12884c9"
        envelope["SubscribeURL"] = SUBSCRIBE_URL
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signed = canonical_string(envelope, message_type)
    signature = (key or rsa_key("sns")).sign(signed, padding.PKCS1v15(), digest)
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope


def post(body: bytes | str | Any, headers: dict[str, str] | None = None) -> WebhookRequest:
    """A POST whose body is given as bytes, or as text, or as a value to write as JSON."""
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return WebhookRequest("POST", headers or {}, body)


def ses_notification(kind: str, **details: Any) -> str:
    """An SES notification as SNS carries it: JSON in a string."""
    mail = {
        "timestamp": "2026-03-02T05:59:00.000Z",
        "messageId": "0102018e-ses-own-id",
        "source": "lessons@drip.example",
        "destination": ["jane@example.com"],
        "headersTruncated": False,
        "headers": [{"name": "Message-ID", "value": "<lesson.42@drip.example>"}],
        "commonHeaders": {"messageId": "<lesson.42@drip.example>", "subject": "Day 3"},
    }
    return json.dumps({"notificationType": kind, "mail": mail, **details})


def mailgun_body(
    event_data: dict[str, Any],
    *,
    timestamp: datetime = NOW,
    token: str = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
    key: str = MAILGUN_KEY,
) -> dict[str, Any]:
    stamp = str(int(timestamp.timestamp()))
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": event_data,
    }


@cache
def sendgrid_key(name: str = "sendgrid") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_public_key(name: str = "sendgrid") -> str:
    der = (
        sendgrid_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def sendgrid_request(
    events: Any, *, timestamp: datetime = NOW, name: str = "sendgrid", body: bytes | None = None
) -> WebhookRequest:
    """A post signed as SendGrid signs: ECDSA over the timestamp header then the raw body."""
    raw = body if body is not None else json.dumps(events).encode()
    stamp = str(int(timestamp.timestamp()))
    signature = sendgrid_key(name).sign(stamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }
    return WebhookRequest("POST", headers, raw)


def basic_auth(user: str = POSTMARK_USER, password: str = POSTMARK_PASSWORD) -> dict[str, str]:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {credentials}"}


# Samples after each relay's documentation

BOUNCE = {
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "jane@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User\r\n unknown",
            },
            {"emailAddress": "joe@example.com"},
        ],
        "timestamp": "2026-03-02T05:59:38.237Z",
        "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
    }
}
POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Description": "The server was unable to deliver your message (ex: unknown user).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": "jane@example.com",
    "From": "lessons@drip.example",
    "BouncedAt": "2026-03-02T05:58:00.9070259Z",
}
MAILGUN_FAILED = {
    "event": "failed",
    "severity": "permanent",
    "id": "G9Bn5sl1TC6nu79C8C0bwg",
    "timestamp": NOW.timestamp() - 30.5,
    "recipient": "jane@example.com",
    "reason": "bounce",
    "message": {"headers": {"message-id": "lesson.42@drip.example", "to": "jane@example.com"}},
    "delivery-status": {
        "code": 550,
        "enhanced-code": "5.1.1",
        "message": "5.1.1 The email account that you tried to reach does not exist.",
        "description": "",
    },
}
SENDGRID_EVENTS = [
    {
        "email": "jane@example.com",
        "timestamp": int(NOW.timestamp()) - 60,
        "smtp-id": "<lesson.42@drip.example>",
        "event": "bounce",
        "type": "bounce",
        "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
        "reason": "500 unknown recipient",
        "status": "5.0.0",
    },
    {
        "email": "joe@example.com",
        "timestamp": int(NOW.timestamp()) - 50,
        "event": "bounce",
        "type": "blocked",
        "sg_event_id": "blocked-1",
        "reason": "550 5.7.1 blocked by policy",
    },
    {"email": "amy@example.com", "timestamp": 1772431000, "event": "deferred",
     "sg_event_id": "def-1", "response": "400 try again later"},
    {"email": "bo@example.com", "timestamp": 1772431000, "event": "dropped",
     "sg_event_id": "drop-1", "reason": "Bounced Address"},
    {"email": "cy@example.com", "timestamp": 1772431000, "event": "spamreport",
     "sg_event_id": "spam-1"},
    {"email": "di@example.com", "timestamp": 1772431000, "event": "delivered",
     "sg_event_id": "del-1", "response": "250 2.0.0 OK"},
    {"email": "ed@example.com", "timestamp": 1772431000, "event": "open", "sg_event_id": "o-1"},
]  # fmt: skip


# Whole requests for the web routes: settings that turn every route on, and one signed report
# of each kind from each relay.

PROVIDERS = ("ses", "postmark", "mailgun", "sendgrid")


def webhook_settings(folder: Path) -> dict[str, object]:
    """Settings for all four routes, with the keys, credentials and test CA made here."""
    ca_file = folder / "sns-ca.pem"
    ca_file.write_bytes(pem(root_ca()))
    return {
        "ses_webhook": True, "ses_topic_arns": TOPIC, "sns_trusted_ca_file": ca_file,
        "postmark_webhook_user": POSTMARK_USER, "postmark_webhook_password": POSTMARK_PASSWORD,
        "mailgun_signing_key": MAILGUN_KEY, "sendgrid_public_key": sendgrid_public_key(),
    }  # fmt: skip


def relay_report(
    provider: str, kind: str, address: str, message_id: str, *, key: str = "1",
    at: datetime = NOW,
) -> WebhookRequest:  # fmt: skip
    """A signed report from `provider` that `address` hard-bounced (`kind` "bounce") or
    complained ("complaint") about the message `message_id`; `key` makes its event id."""
    when = at - timedelta(seconds=30)
    build = {"ses": _ses, "postmark": _postmark, "mailgun": _mailgun, "sendgrid": _sendgrid}
    return build[provider](kind, address, message_id, key, when)


def _ses(kind: str, address: str, mid: str, key: str, when: datetime) -> WebhookRequest:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    mail = {"messageId": f"ses-{key}", "commonHeaders": {"messageId": mid}}
    if kind == "bounce":
        details: dict[str, Any] = {"bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "timestamp": stamp,
            "feedbackId": f"bounce-{key}",
            "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}]}}  # fmt: skip
    else:
        details = {"complaint": {"timestamp": stamp, "feedbackId": f"complaint-{key}",
                                 "complainedRecipients": [{"emailAddress": address}]}}  # fmt: skip
    notification = {"notificationType": kind.title(), "mail": mail, **details}
    envelope = sns_envelope(json.dumps(notification), timestamp=when + timedelta(seconds=25))
    return post(envelope, {"x-amz-sns-message-type": "Notification"})


def _postmark(kind: str, address: str, mid: str, key: str, when: datetime) -> WebhookRequest:
    record_type = "Bounce" if kind == "bounce" else "SpamComplaint"
    record = {**POSTMARK_BOUNCE, "RecordType": record_type, "ID": int(key), "Email": address,
              "BouncedAt": when.isoformat()}  # fmt: skip
    if kind != "bounce":
        record["Type"] = "SpamComplaint"
    return post(record, basic_auth())


def _mailgun(kind: str, address: str, mid: str, key: str, when: datetime) -> WebhookRequest:
    data: dict[str, Any] = {
        "event": "failed" if kind == "bounce" else "complained", "severity": "permanent",
        "id": f"event-{key}", "timestamp": when.timestamp(), "recipient": address,
        "message": {"headers": {"message-id": mid.strip("<>")}},
    }  # fmt: skip
    if kind == "bounce":
        data["delivery-status"] = {"code": 550, "enhanced-code": "5.1.1", "message": "no such user"}
    return post(mailgun_body(data, timestamp=when + timedelta(seconds=25), token=f"token-{key}"))


def _sendgrid(kind: str, address: str, mid: str, key: str, when: datetime) -> WebhookRequest:
    event = {
        "email": address, "timestamp": int(when.timestamp()), "smtp-id": mid,
        "event": "bounce" if kind == "bounce" else "spamreport", "type": "bounce",
        "sg_event_id": f"event-{key}", "status": "5.1.1", "reason": "550 no such user",
    }  # fmt: skip
    return sendgrid_request([event], timestamp=when + timedelta(seconds=25))
