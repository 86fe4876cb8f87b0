"""Whatever arrives, a webhook function answers with events or a 4xx refusal, never another
exception: random bytes and headers, and (harder) bodies mangled and then properly signed, so
the parsing behind each signature check is exercised too."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drip.webhooks import (
    CertificateCache,
    MemorySeenTokens,
    SubscriptionConfirmation,
    WebhookRefused,
    WebhookRequest,
    mailgun_events,
    postmark_events,
    sendgrid_events,
    ses_events,
)

from relay_webhooks import (
    BOUNCE,
    MAILGUN_FAILED,
    MAILGUN_KEY,
    NOW,
    POSTMARK_BOUNCE,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
    SENDGRID_EVENTS,
    CertificateServer,
    basic_auth,
    mailgun_body,
    post,
    root_ca,
    sendgrid_public_key,
    sendgrid_request,
    ses_notification,
    sns_envelope,
)

CHECKS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER_NAMES = [
    "Authorization", "X-Twilio-Email-Event-Webhook-Signature",
    "X-Twilio-Email-Event-Webhook-Timestamp", "x-amz-sns-message-type", "Content-Type",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", "Permanent", "failed", "bounce", "2026-03-02T05:59:00Z", "a@b"])
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
CERTIFICATES = CertificateCache(CertificateServer())


def answered(call, *args, **kwargs) -> None:
    """The call returns events (or a subscription to confirm), or a 4xx refusal."""
    try:
        result = call(*args, **kwargs)
    except WebhookRefused as refusal:
        assert 400 <= refusal.status < 500
        return
    assert isinstance(result, list | SubscriptionConfirmation)


def every_provider(request: WebhookRequest) -> None:
    answered(ses_events, request, now=NOW, certificates=CERTIFICATES, trusted=[root_ca()])
    answered(postmark_events, request, user=POSTMARK_USER, password=POSTMARK_PASSWORD)
    seen = MemorySeenTokens()
    answered(mailgun_events, request, now=NOW, signing_key=MAILGUN_KEY, seen_tokens=seen)
    answered(sendgrid_events, request, now=NOW, public_key=sendgrid_public_key())


@st.composite
def mangled(draw: st.DrawFn, value: Any) -> Any:
    """`value` with some of its parts, at any depth, dropped or replaced by anything."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue
            result[key] = draw(ANY_JSON) if choice == 1 else draw(mangled(item))
        return result
    if isinstance(value, list):
        return [draw(mangled(item)) for item in value if draw(st.integers(0, 9))]
    return draw(ANY_JSON) if draw(st.integers(0, 4)) == 0 else value


@CHECKS
@given(
    method=st.sampled_from(["POST", "GET", "post", ""]),
    headers=st.dictionaries(
        st.sampled_from(HEADER_NAMES) | st.text(max_size=10), st.text(max_size=60), max_size=4
    ),
    body=st.binary(max_size=300) | ANY_JSON.map(lambda v: json.dumps(v).encode()),
)
def test_random_requests_are_answered_or_refused(method: str, headers: dict, body: bytes) -> None:
    every_provider(WebhookRequest(method, headers, body))


@CHECKS
@given(st.sampled_from(["Bounce", "Complaint", "Delivery"]), st.data())
def test_ses_mangled_then_signed_is_answered_or_refused(kind: str, data: st.DataObject) -> None:
    ses = data.draw(mangled(json.loads(ses_notification(kind, **BOUNCE))))
    envelope = sns_envelope(json.dumps(ses) if data.draw(st.booleans()) else "x")
    answered(ses_events, post(envelope), now=NOW, certificates=CERTIFICATES, trusted=[root_ca()])
    envelope = data.draw(mangled(envelope))  # and the envelope itself, past its signature
    answered(ses_events, post(envelope), now=NOW, certificates=CERTIFICATES, trusted=[root_ca()])


@CHECKS
@given(st.data())
def test_postmark_mangled_with_credentials_is_answered_or_refused(data: st.DataObject) -> None:
    request = post(data.draw(mangled(POSTMARK_BOUNCE)), basic_auth())
    answered(postmark_events, request, user=POSTMARK_USER, password=POSTMARK_PASSWORD)


@CHECKS
@given(st.data())
def test_mailgun_mangled_then_signed_is_answered_or_refused(data: st.DataObject) -> None:
    request = post(mailgun_body(data.draw(mangled(MAILGUN_FAILED))))
    seen = MemorySeenTokens()
    answered(mailgun_events, request, now=NOW, signing_key=MAILGUN_KEY, seen_tokens=seen)


@CHECKS
@given(st.data())
def test_sendgrid_mangled_then_signed_is_answered_or_refused(data: st.DataObject) -> None:
    request = sendgrid_request(data.draw(mangled(SENDGRID_EVENTS[:3])))
    answered(sendgrid_events, request, now=NOW, public_key=sendgrid_public_key())
