"""Signatures of outgoing webhooks (Standard Webhooks): the specification's example, the
receiver's checks (signature, age, a reused id), and hostile headers refused cleanly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drip.hooks import WebhookVerificationError, new_secret, verify
from drip.hooks.signature import headers, signature

# The example of the specification's reference libraries.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
AT = datetime.fromtimestamp(STAMP, UTC)


def test_the_specifications_example() -> None:
    assert signature(SECRET, MSG_ID, STAMP, BODY) == EXPECTED
    signed = headers(SECRET, MSG_ID, STAMP, BODY)
    assert signed["webhook-signature"] == f"v1,{EXPECTED}"
    assert verify(SECRET, signed, BODY, AT) == MSG_ID


def test_a_reused_id_is_refused() -> None:
    seen: set[str] = set()
    signed = headers(SECRET, MSG_ID, STAMP, BODY)
    verify(SECRET, signed, BODY, AT, seen)
    with pytest.raises(WebhookVerificationError, match="received before"):
        verify(SECRET, signed, BODY, AT, seen)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'{"test": 2432232315}'}, "no signature"),
        ({"secret": new_secret()}, "no signature"),
        ({"now": AT + timedelta(minutes=6)}, "too old"),
        ({"now": AT - timedelta(minutes=6)}, "too old"),
    ],
)
def test_a_changed_message_is_refused(change: dict, reason: str) -> None:
    signed = headers(SECRET, MSG_ID, STAMP, BODY)
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(change.get("secret", SECRET), signed, change.get("body", BODY),
               change.get("now", AT))  # fmt: skip


def test_one_of_several_signatures_may_match() -> None:
    """Receivers accept a list, for the time two secrets are in use."""
    signed = headers(SECRET, MSG_ID, STAMP, BODY)
    signed["webhook-signature"] = f"v1,bm90IGl0 {signed['webhook-signature']} v2,x"
    assert verify(SECRET, signed, BODY, AT) == MSG_ID


@given(
    st.dictionaries(
        st.sampled_from(["webhook-id", "Webhook-Timestamp", "webhook-signature", "x"]),
        st.text(max_size=80),
    ),
    st.binary(max_size=64),
)
def test_hostile_headers_are_refused_cleanly(received: dict[str, str], body: bytes) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, received, body, AT)


def test_a_timestamp_of_other_digits_is_refused() -> None:
    """Superscript one and Arabic-Indic digits are digits to str.isdigit, not all to int()."""
    for stamp in ("\u00b9", "\u0661\u0662"):
        with pytest.raises(WebhookVerificationError):
            verify(SECRET, {"webhook-id": "msg_1", "webhook-timestamp": stamp,
                            "webhook-signature": "v1,AAAA"}, b"{}", AT)  # fmt: skip


def test_secrets_are_random_and_well_formed() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_") and len(first) == 6 + 32
