"""Postmark, Mailgun and SendGrid webhooks: proven requests give events, the rest is refused
with a 4xx and nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from drip.webhooks import (
    EventKind,
    MemorySeenTokens,
    ProviderEvent,
    WebhookRefused,
    WebhookRequest,
    mailgun_events,
    postmark_events,
    sendgrid_events,
)

from relay_webhooks import (
    MAILGUN_FAILED,
    MAILGUN_KEY,
    NOW,
    POSTMARK_BOUNCE,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
    SENDGRID_EVENTS,
    basic_auth,
    mailgun_body,
    post,
    sendgrid_public_key,
    sendgrid_request,
)


def refused(call, *args, **kwargs) -> WebhookRefused:
    with pytest.raises(WebhookRefused) as refusal:
        call(*args, **kwargs)
    assert 400 <= refusal.value.status < 500
    return refusal.value


# Postmark


def postmark(request: WebhookRequest, **options) -> list[ProviderEvent]:
    return postmark_events(request, user=POSTMARK_USER, password=POSTMARK_PASSWORD, **options)


def test_postmark_hard_bounce() -> None:
    (event,) = postmark(post(POSTMARK_BOUNCE, basic_auth()))
    assert event == ProviderEvent(
        kind=EventKind.HARD_BOUNCE,
        recipient="jane@example.com",
        message_id=None,
        status="5.1.1",
        diagnostic=str(POSTMARK_BOUNCE["Details"]),
        source="postmark",
        key="Bounce:4323372036854775807",
        occurred_at=datetime(2026, 3, 2, 5, 58, 0, 907025, tzinfo=UTC),
    )


def test_postmark_soft_bounce_complaint_delivery_and_the_rest() -> None:
    soft = {**POSTMARK_BOUNCE, "Type": "SoftBounce", "BouncedAt": "2026-03-02T00:58:00-05:00"}
    (event,) = postmark(post(soft, basic_auth()))
    assert (event.kind, event.occurred_at) == (EventKind.SOFT_BOUNCE, NOW - timedelta(minutes=2))
    complaint = {
        **POSTMARK_BOUNCE,
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "ID": 42,
    }
    (event,) = postmark(post(complaint, basic_auth()))
    assert (event.kind, event.key) == (EventKind.COMPLAINT, "SpamComplaint:42")
    delivery = {
        "RecordType": "Delivery",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": "jane@example.com",
        "DeliveredAt": "2026-03-02T05:58:00Z",
        "Details": "smtp;250 2.0.0 OK",
    }
    (event,) = postmark(post(delivery, basic_auth()))
    assert (event.kind, event.status) == (EventKind.DELIVERED, "2.0.0")
    assert event.key == "Delivery:883953f4-6105-42a2-a16a-77a8eac79483:jane@example.com"
    assert postmark(post({**POSTMARK_BOUNCE, "Type": "AutoResponder"}, basic_auth())) == []
    assert postmark(post({"RecordType": "Open", "Recipient": "x@y"}, basic_auth())) == []


def test_postmark_without_or_with_wrong_credentials_is_refused() -> None:
    assert refused(postmark, post(POSTMARK_BOUNCE)).status == 401
    wrong = basic_auth(password="guess")
    assert refused(postmark, post(POSTMARK_BOUNCE, wrong)).status == 401
    other_user = basic_auth(user="admin")
    assert refused(postmark, post(POSTMARK_BOUNCE, other_user)).status == 401
    bearer = {"Authorization": "Bearer abc"}
    assert refused(postmark, post(POSTMARK_BOUNCE, bearer)).status == 401
    # refused before the body is read, however broken it is
    assert refused(postmark, post(b"{truncated", {"Authorization": "Basic !!"})).status == 401


def test_postmark_malformed_oversized_and_wrong_types_are_refused() -> None:
    whole = json.dumps(POSTMARK_BOUNCE).encode()
    assert refused(postmark, post(whole[:-5], basic_auth())).status == 400
    assert refused(postmark, post(whole, basic_auth()), max_body=100).status == 413
    assert refused(postmark, post({**POSTMARK_BOUNCE, "Email": 7}, basic_auth())).status == 400
    assert refused(postmark, post({**POSTMARK_BOUNCE, "BouncedAt": "yesterday"}, basic_auth()))
    assert refused(postmark, post({**POSTMARK_BOUNCE, "ID": None}, basic_auth())).status == 400


# Mailgun


def mailgun(body, tokens: MemorySeenTokens | None = None, **options) -> list[ProviderEvent]:
    return mailgun_events(
        post(body),
        now=NOW,
        signing_key=MAILGUN_KEY,
        seen_tokens=tokens if tokens is not None else MemorySeenTokens(),
        **options,
    )


def test_mailgun_permanent_failure() -> None:
    (event,) = mailgun(mailgun_body(MAILGUN_FAILED))
    assert event == ProviderEvent(
        kind=EventKind.HARD_BOUNCE,
        recipient="jane@example.com",
        message_id="<lesson.42@drip.example>",
        status="5.1.1",
        diagnostic="550 5.1.1 The email account that you tried to reach does not exist.",
        source="mailgun",
        key=f"G9Bn5sl1TC6nu79C8C0bwg@{MAILGUN_FAILED['timestamp']:.6f}",
        occurred_at=datetime.fromtimestamp(float(str(MAILGUN_FAILED["timestamp"])), UTC),
    )


def test_mailgun_temporary_failure_complaint_delivery_and_the_rest() -> None:
    temporary = {**MAILGUN_FAILED, "severity": "temporary"}
    assert mailgun(mailgun_body(temporary))[0].kind == EventKind.SOFT_BOUNCE
    complained = {k: v for k, v in MAILGUN_FAILED.items() if k != "delivery-status"}
    (event,) = mailgun(mailgun_body({**complained, "event": "complained"}))
    assert (event.kind, event.status) == (EventKind.COMPLAINT, None)
    assert mailgun(mailgun_body({**MAILGUN_FAILED, "event": "delivered"}))[0].kind == (
        EventKind.DELIVERED
    )
    assert mailgun(mailgun_body({**MAILGUN_FAILED, "event": "opened"})) == []


def test_mailgun_replayed_token_is_refused_and_remembered_only_when_accepted() -> None:
    tokens = MemorySeenTokens()
    body = mailgun_body(MAILGUN_FAILED, token="once-only")
    assert len(mailgun(body, tokens)) == 1
    assert refused(mailgun, body, tokens).status == 403
    broken = mailgun_body({**MAILGUN_FAILED, "recipient": None}, token="broken-one")
    assert refused(mailgun, broken, tokens).status == 400
    assert not tokens.seen("broken-one")


def test_mailgun_forged_unsigned_and_old_are_refused() -> None:
    assert refused(mailgun, mailgun_body(MAILGUN_FAILED, key="another-key")).status == 403
    tampered = mailgun_body(MAILGUN_FAILED)
    tampered["event-data"]["recipient"] = "someone@example.com"
    tampered["signature"]["token"] = "a-token-of-our-own"
    assert refused(mailgun, tampered).status == 403
    assert refused(mailgun, {"event-data": MAILGUN_FAILED}).status == 401
    unsigned = mailgun_body(MAILGUN_FAILED)
    del unsigned["signature"]["signature"]
    assert refused(mailgun, unsigned).status == 401
    old = mailgun_body(MAILGUN_FAILED, timestamp=NOW - timedelta(minutes=6))
    assert refused(mailgun, old).status == 403
    ahead = mailgun_body(MAILGUN_FAILED, timestamp=NOW + timedelta(minutes=6))
    assert refused(mailgun, ahead).status == 403
    assert len(mailgun(old, window=600)) == 1


def test_mailgun_truncated_oversized_and_wrong_types_are_refused() -> None:
    whole = json.dumps(mailgun_body(MAILGUN_FAILED)).encode()
    assert refused(mailgun, whole[:100]).status == 400
    assert refused(mailgun, whole, max_body=len(whole) - 1).status == 413
    numbers = mailgun_body(MAILGUN_FAILED)
    numbers["signature"]["timestamp"] = int(numbers["signature"]["timestamp"])
    assert len(mailgun(numbers)) == 1  # the documented int signs as its digits
    numbers["signature"]["timestamp"] = float(numbers["signature"]["timestamp"])
    assert refused(mailgun, numbers).status == 401
    assert refused(mailgun, mailgun_body({**MAILGUN_FAILED, "timestamp": "soon"})).status == 400
    assert refused(mailgun, mailgun_body({**MAILGUN_FAILED, "message": []})).status == 400


# SendGrid


def sendgrid(request: WebhookRequest, **options) -> list[ProviderEvent]:
    return sendgrid_events(request, now=NOW, public_key=sendgrid_public_key(), **options)


def test_sendgrid_events_in_a_signed_batch() -> None:
    events = sendgrid(sendgrid_request(SENDGRID_EVENTS))
    assert events[0] == ProviderEvent(
        kind=EventKind.HARD_BOUNCE,
        recipient="jane@example.com",
        message_id="<lesson.42@drip.example>",
        status="5.0.0",
        diagnostic="500 unknown recipient",
        source="sendgrid",
        key="6g4ZI7SA-xmRDv57GoPIPw==",
        occurred_at=NOW - timedelta(seconds=60),
    )
    assert [(e.kind, e.recipient, e.status) for e in events[1:]] == [
        (EventKind.SOFT_BOUNCE, "joe@example.com", "5.7.1"),
        (EventKind.SOFT_BOUNCE, "amy@example.com", None),
        (EventKind.HARD_BOUNCE, "bo@example.com", None),
        (EventKind.COMPLAINT, "cy@example.com", None),
        (EventKind.DELIVERED, "di@example.com", "2.0.0"),
    ]


def test_sendgrid_forged_unsigned_and_old_are_refused() -> None:
    other_key = sendgrid_request(SENDGRID_EVENTS, name="intruder")
    assert refused(sendgrid, other_key).status == 403
    good = sendgrid_request(SENDGRID_EVENTS)
    tampered = WebhookRequest("POST", good.headers, good.body.replace(b"jane@", b"john@"))
    assert refused(sendgrid, tampered).status == 403
    assert refused(sendgrid, WebhookRequest("POST", {}, good.body)).status == 401
    restamped = dict(good.headers)
    restamped["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(NOW.timestamp()) + 1)
    assert refused(sendgrid, WebhookRequest("POST", restamped, good.body)).status == 403
    old = sendgrid_request(SENDGRID_EVENTS, timestamp=NOW - timedelta(minutes=6))
    assert refused(sendgrid, old).status == 403
    lowercase = {k.lower(): v for k, v in good.headers.items()}
    assert len(sendgrid(WebhookRequest("POST", lowercase, good.body))) == 6


def test_sendgrid_truncated_oversized_and_wrong_types_are_refused() -> None:
    whole = json.dumps(SENDGRID_EVENTS).encode()
    assert refused(sendgrid, sendgrid_request(None, body=whole[:-10])).status == 400
    assert refused(sendgrid, sendgrid_request(SENDGRID_EVENTS), max_body=100).status == 413
    assert refused(sendgrid, sendgrid_request({"event": "bounce"})).status == 400
    assert refused(sendgrid, sendgrid_request([{**SENDGRID_EVENTS[0], "email": ["x"]}]))
    assert refused(sendgrid, sendgrid_request([{**SENDGRID_EVENTS[0], "timestamp": 1e300}]))
    assert refused(sendgrid, sendgrid_request(["bounce"])).status == 400


def test_sendgrid_key_that_is_not_p256_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        sendgrid_events(sendgrid_request([]), now=NOW, public_key="bm90IGEga2V5")


def test_memory_tokens_forget_what_can_no_longer_pass_the_time_check() -> None:
    tokens = MemorySeenTokens()
    tokens.remember("early", NOW)
    tokens.remember("soon-after", NOW + timedelta(hours=1))
    assert tokens.seen("early") and tokens.seen("soon-after")
    tokens.remember("next-day", NOW + timedelta(days=1, hours=2))
    assert not tokens.seen("early") and tokens.seen("next-day")
