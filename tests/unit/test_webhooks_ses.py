"""Amazon SES through SNS: only messages signed by a certificate from sns.<region>.amazonaws.com
that chains to the trusted CA become events; everything else is refused with a 4xx."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from drip.webhooks import (
    CertificateCache,
    EventKind,
    ProviderEvent,
    SubscriptionConfirmation,
    WebhookRefused,
    WebhookRequest,
    ses_events,
)

from relay_webhooks import (
    BOUNCE,
    CERT_URL,
    NOW,
    TOPIC,
    CertificateServer,
    certificate,
    pem,
    post,
    root_ca,
    rsa_key,
    ses_notification,
    signing_certificate,
    sns_envelope,
)


def receive(request: WebhookRequest, server: CertificateServer | None = None, **options):
    certificates = CertificateCache(server or CertificateServer())
    return ses_events(request, now=NOW, certificates=certificates, trusted=[root_ca()], **options)


def refusal(request: WebhookRequest, server: CertificateServer | None = None, **options):
    with pytest.raises(WebhookRefused) as refused:
        receive(request, server, **options)
    assert 400 <= refused.value.status < 500
    return refused.value


@pytest.mark.parametrize("version", ["1", "2"])
def test_permanent_bounce_is_hard_for_each_recipient(version: str) -> None:
    envelope = sns_envelope(ses_notification("Bounce", **BOUNCE), version=version)
    events = receive(post(envelope, {"x-amz-sns-message-type": "Notification"}))
    assert events == [
        ProviderEvent(
            kind=EventKind.HARD_BOUNCE,
            recipient="jane@example.com",
            message_id="<lesson.42@drip.example>",
            status="5.1.1",
            diagnostic="smtp; 550 5.1.1 <jane@example.com>... User unknown",
            source="ses",
            key=f"{BOUNCE['bounce']['feedbackId']}:jane@example.com",
            occurred_at=NOW - timedelta(seconds=21.763),
        ),
        ProviderEvent(
            kind=EventKind.HARD_BOUNCE,
            recipient="joe@example.com",
            message_id="<lesson.42@drip.example>",
            status=None,
            diagnostic="Permanent General",
            source="ses",
            key=f"{BOUNCE['bounce']['feedbackId']}:joe@example.com",
            occurred_at=NOW - timedelta(seconds=21.763),
        ),
    ]


def test_transient_bounce_complaint_and_delivery() -> None:
    transient = {"bounce": {**BOUNCE["bounce"], "bounceType": "Transient"}}
    (soft, _) = receive(post(sns_envelope(ses_notification("Bounce", **transient))))
    assert soft.kind == EventKind.SOFT_BOUNCE
    complaint = {
        "complaint": {
            "complainedRecipients": [{"emailAddress": "jane@example.com"}],
            "timestamp": "2026-03-02T05:59:00Z",
            "feedbackId": "0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000",
            "complaintFeedbackType": "abuse",
        }
    }
    (complained,) = receive(post(sns_envelope(ses_notification("Complaint", **complaint))))
    assert (complained.kind, complained.diagnostic) == (EventKind.COMPLAINT, "abuse")
    assert complained.key.startswith("0000013786031775")
    delivery = {
        "delivery": {
            "timestamp": "2026-03-02T05:59:01.000Z",
            "recipients": ["jane@example.com"],
            "smtpResponse": "250 2.6.0 Message received",
        }
    }
    (delivered,) = receive(post(sns_envelope(ses_notification("Delivery", **delivery))))
    assert (delivered.kind, delivered.status) == (EventKind.DELIVERED, "2.6.0")
    assert delivered.key == "0102018e-ses-own-id:jane@example.com"
    assert delivered.message_id == "<lesson.42@drip.example>"


def test_message_id_from_the_header_list_when_common_headers_lack_it() -> None:
    message = json.loads(ses_notification("Bounce", **BOUNCE))
    del message["mail"]["commonHeaders"]
    message["mail"]["headers"] = [{"name": "message-id", "value": "lesson.7@drip.example"}]
    (first, _) = receive(post(sns_envelope(json.dumps(message))))
    assert first.message_id == "<lesson.7@drip.example>"


def test_subscription_confirmation_is_handed_back_not_visited() -> None:
    envelope = sns_envelope("You have chosen to subscribe", message_type="SubscriptionConfirmation")
    server = CertificateServer()
    result = receive(post(envelope), server)
    assert result == SubscriptionConfirmation(TOPIC, envelope["SubscribeURL"])
    assert server.asked == [CERT_URL]  # the certificate only; the SubscribeURL is not fetched


def test_unsubscribe_confirmation_and_other_notifications_carry_no_events() -> None:
    leaving = sns_envelope("unsubscribed", message_type="UnsubscribeConfirmation")
    assert receive(post(leaving)) == []
    test_message = json.dumps({"notificationType": "AmazonSnsSubscriptionSucceeded"})
    assert receive(post(sns_envelope(test_message, subject="hello"))) == []


def test_certificate_is_fetched_once() -> None:
    server = CertificateServer()
    certificates = CertificateCache(server)
    for _ in range(3):
        request = post(sns_envelope(ses_notification("Bounce", **BOUNCE)))
        ses_events(request, now=NOW, certificates=certificates, trusted=[root_ca()])
    assert server.asked == [CERT_URL]


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://evil.com/cert.pem",
        "https://sns.amazonaws.com.evil.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com@evil.com/cert.pem",
        "https://evil.com\\@sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
        "https://sns.amazonaws.com/cert.pem",
        "https://s3.eu-west-1.amazonaws.com/cert.pem",
        "file:///etc/passwd",
    ],
)
def test_certificate_elsewhere_is_refused_before_fetching(url: str) -> None:
    server = CertificateServer({url: pem(signing_certificate())})
    envelope = sns_envelope(ses_notification("Bounce", **BOUNCE), cert_url=url)
    assert refusal(post(envelope), server).status == 403
    assert server.asked == []


def test_forged_and_tampered_messages_are_refused() -> None:
    forged = sns_envelope(ses_notification("Bounce", **BOUNCE), key=rsa_key("intruder"))
    assert refusal(post(forged)).status == 403
    tampered = sns_envelope(ses_notification("Bounce", **BOUNCE))
    tampered["Message"] = tampered["Message"].replace("jane@", "john@")
    assert refusal(post(tampered)).status == 403
    unsigned = sns_envelope(ses_notification("Bounce", **BOUNCE))
    del unsigned["Signature"]
    assert refusal(post(unsigned)).status == 401
    downgraded = sns_envelope(ses_notification("Bounce", **BOUNCE))
    downgraded["SignatureVersion"] = "3"
    assert refusal(post(downgraded)).status == 403


def test_certificate_from_another_ca_or_out_of_date_is_refused() -> None:
    rogue_ca = ("Test Root CA", rsa_key("rogue"))  # same name, another key
    rogue = certificate("sns.amazonaws.com", rsa_key("sns"), rogue_ca)
    assert refusal(post(_bounce()), CertificateServer({CERT_URL: pem(rogue)})).status == 403
    expired = certificate(
        "sns.amazonaws.com",
        rsa_key("sns"),
        ("Test Root CA", rsa_key("ca")),
        valid_to=NOW - timedelta(days=1),
    )
    assert refusal(post(_bounce()), CertificateServer({CERT_URL: pem(expired)})).status == 403
    self_signed = certificate("sns.amazonaws.com", rsa_key("sns"), ca=True)
    assert refusal(post(_bounce()), CertificateServer({CERT_URL: pem(self_signed)})).status == 403
    garbage = CertificateServer({CERT_URL: b"-----BEGIN CERTIFICATE-----\nAAAA\n"})
    assert refusal(post(_bounce()), garbage).status == 403
    assert refusal(post(_bounce()), CertificateServer({})).status == 400  # fetch failed


def test_chain_through_an_intermediate_sent_along() -> None:
    intermediate = certificate(
        "Test Intermediate", rsa_key("intermediate"), ("Test Root CA", rsa_key("ca")), ca=True
    )
    leaf = certificate(
        "sns.amazonaws.com", rsa_key("sns"), ("Test Intermediate", rsa_key("intermediate"))
    )
    server = CertificateServer({CERT_URL: pem(leaf, intermediate)})
    assert len(receive(post(_bounce()), server)) == 2
    alone = CertificateServer({CERT_URL: pem(leaf)})
    assert refusal(post(_bounce()), alone).status == 403


def test_old_future_and_foreign_topic_messages_are_refused() -> None:
    old = sns_envelope(
        ses_notification("Bounce", **BOUNCE), timestamp=NOW - timedelta(hours=1, seconds=1)
    )
    assert refusal(post(old)).status == 403
    future = sns_envelope(ses_notification("Bounce", **BOUNCE), timestamp=NOW + timedelta(hours=1))
    assert refusal(post(future)).status == 403
    assert refusal(post(_bounce()), topics={"arn:aws:sns:eu-west-1:1:other"}).status == 403
    assert len(receive(post(_bounce()), topics={TOPIC})) == 2


def test_malformed_requests_are_refused() -> None:
    whole = json.dumps(sns_envelope(ses_notification("Bounce", **BOUNCE))).encode()
    assert refusal(post(whole[: len(whole) // 2])).status == 400
    assert refusal(post(b"\xff\xfe not utf-8")).status == 400
    assert refusal(post([1, 2, 3])).status == 400
    assert (
        refusal(post(whole, {"X-Amz-Sns-Message-Type": "SubscriptionConfirmation"})).status == 400
    )
    assert refusal(WebhookRequest("GET", {}, whole)).status == 405
    assert refusal(post(whole), max_body=len(whole) - 1).status == 413
    for moment in ("0001-01-01T00:00:00+05:00", "2026-03-02T05:59:00", "yesterday"):
        assert refusal(post({**_bounce(), "Timestamp": moment})).status == 400
    not_json = sns_envelope("{not json")
    assert refusal(post(not_json)).status == 400
    wrong_types = json.loads(ses_notification("Bounce", **BOUNCE))
    wrong_types["bounce"]["bouncedRecipients"] = "jane@example.com"
    assert refusal(post(sns_envelope(json.dumps(wrong_types)))).status == 400


def _bounce() -> dict:
    return sns_envelope(ses_notification("Bounce", **BOUNCE))
