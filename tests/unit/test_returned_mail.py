"""parse_returned on real shapes of returned mail: each sample gives exactly its events."""

from __future__ import annotations

from pathlib import Path

import pytest

from drip.bounces import Feedback, Kind, parse_returned, verp_address

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "returned"
SECRET = "sample-secret"  # the samples' VERP addresses were made with it
H, S, C, D = Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.COMPLAINT, Kind.DELIVERED


def mid(subscription: int, day: int, suffix: str) -> str:
    return f"<drip.bone-health.{subscription}.{day}.{suffix}@mail.example.org>"


# sample -> [(kind, recipient, status, message id, (subscription, day) from VERP, source)]
EXPECTED = {
    "rfc3464_timeout.eml": [(S, "louisl@larry.slip.umd.edu", "4.0.0", None, None, "dsn")],
    "rfc3464_three_recipients.eml": [
        (H, "arathib@vnet.ibm.com", "5.0.0", "<199407081321.JAA13160@CS.UTK.EDU>", None, "dsn"),
        (S, "johnh@hpnjld.njd.hp.com", "4.0.0", "<199407081321.JAA13160@CS.UTK.EDU>", None, "dsn"),
        (H, "wsnell@sdcc13.ucsd.edu", "5.0.0", "<199407081321.JAA13160@CS.UTK.EDU>", None, "dsn"),
    ],
    "rfc3464_delivered.eml": [
        (D, "lea@example.net", "2.0.0", mid(314, 7, "aa00bb11cc22"), (314, 7), "dsn")
    ],
    "postfix_user_unknown.eml": [
        (H, "ann.lee@example.net", "5.1.1", mid(42, 3, "a1b2c3d4e5f6"), (42, 3), "dsn")
    ],
    "postfix_forged_verp.eml": [
        (H, "ann.lee@example.net", "5.1.1", mid(42, 3, "a1b2c3d4e5f6"), None, "dsn")
    ],
    "postfix_delayed.eml": [
        (S, "bo@slow.example.com", "4.4.1", mid(7, 1, "0f0e0d0c0b0a"), (7, 1), "dsn")
    ],
    "postfix_mailbox_full.eml": [
        (S, "carla@full.example.com", "5.2.2", mid(1001, 12, "9a8b7c6d5e4f"), (1001, 12), "dsn")
    ],
    "exim_failed.eml": [
        (H, "dan@example.com", "5.1.1", mid(55, 2, "1234567890ab"), (55, 2), "exim"),
        (H, "eve@nowhere.example", "5.0.0", mid(55, 2, "1234567890ab"), (55, 2), "exim"),
    ],
    "exim_delayed.eml": [(S, "fay@greylist.example.net", "4.7.1", None, (9, 5), "exim")],
    "office365_recipient_not_found.eml": [
        (H, "gil@contoso.com", "5.1.10", mid(314, 7, "feedc0ffee00"), (314, 7), "dsn")
    ],
    "exchange2010_no_diagnostic_code.eml": [
        (H, "hal@fabrikam.com", "5.1.1", mid(42, 3, "0123456789ab"), (42, 3), "dsn")
    ],
    "exchange2007_text_only.eml": [
        (S, "ivy@northwind.example", "5.2.2", mid(7, 1, "00aa11bb22cc"), (7, 1), "exchange")
    ],
    "gmail_address_not_found.eml": [
        (H, "jo.nobody@gmail.com", "5.1.1", mid(55, 2, "abcdefabcdef"), (55, 2), "dsn")
    ],
    "gmail_text_failed_permanently.eml": [
        (H, "kim@closed.example.com", "5.1.1", mid(9, 5, "0a0b0c0d0e0f"), (9, 5), "gmail")
    ],
    # RFC 5965's example: its Message-ID has no angle brackets, so it is not taken as one.
    "arf_rfc5965.eml": [(C, "user@example.com", "", None, None, "arf")],
    "arf_yahoo_redacted.eml": [(C, "", "", mid(42, 3, "a1b2c3d4e5f6"), (42, 3), "arf")],
    "arf_microsoft_jmrp.eml": [
        (C, "mo.reader@hotmail.com", "", mid(1001, 12, "9a8b7c6d5e4f"), (1001, 12), "arf")
    ],
    "qmail_fallback.eml": [
        (H, "quinn@example.com", "5.0.0", mid(42, 3, "5a5a5a5a5a5a"), (42, 3), "flufl")
    ],
    "not_bounce_out_of_office.eml": [],
    "not_bounce_reader_reply.eml": [],
}
# What the remote server said, as the event keeps it (one line).
DIAGNOSTICS = {
    "postfix_user_unknown.eml": "550 5.1.1 <ann.lee@example.net>: Recipient address rejected: "
    "User unknown in virtual mailbox table",
    "exim_failed.eml": "550 5.1.1 <dan@example.com>: Recipient address rejected: "
    "User unknown in local recipient table",
    "exim_delayed.eml": "451 4.7.1 Greylisting in action, please come back later",
    "office365_recipient_not_found.eml": "550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
    "Recipient gil@contoso.com not found by SMTP address lookup",
    "exchange2010_no_diagnostic_code.eml": "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
    "exchange2007_text_only.eml": "552 5.2.2 mailbox full",
    "qmail_fallback.eml": "550 5.1.1 <quinn@example.com>... User unknown",
    "gmail_address_not_found.eml": "550-5.1.1 The email account that you tried to reach does "
    "not exist. Please try double-checking the recipient's email address for typos or "
    "unnecessary spaces. For more information, go to https://support.google.com/mail/"
    "?p=NoSuchUser 5b1f17b1804b1-43b2c3d4e5f6si123456f.2 - gsmtp",
}


def read(name: str, **options: str) -> list[Feedback]:
    return parse_returned((SAMPLES / name).read_bytes(), SECRET, **options)


def summary(event: Feedback) -> tuple[object, ...]:
    verp = None if event.subscription_id is None else (event.subscription_id, event.day)
    return (event.kind, event.recipient, event.status, event.message_id, verp, event.source)


def test_every_sample_has_its_expectation() -> None:
    names = {path.name for path in SAMPLES.glob("*.eml")}
    assert names == set(EXPECTED)
    assert sum(1 for events in EXPECTED.values() if events) >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_sample_gives_exactly_its_events(name: str) -> None:
    events = read(name)
    assert [summary(event) for event in events] == EXPECTED[name]
    for event in events:
        assert "\n" not in event.diagnostic and len(event.diagnostic) <= 300
        assert (event.verp_token is None) == (event.subscription_id is None)


@pytest.mark.parametrize("name", sorted(DIAGNOSTICS))
def test_the_remote_servers_words_are_kept(name: str) -> None:
    assert read(name)[0].diagnostic == DIAGNOSTICS[name]


def test_the_envelope_recipient_names_the_delivery_when_the_headers_do_not() -> None:
    address = verp_address(77, 4, "mail.example.org", SECRET)
    [event] = read("rfc3464_timeout.eml", envelope_to=f"<{address}>")
    assert (event.subscription_id, event.day) == (77, 4)
    assert event.verp_token == address.split("+")[1].split("@")[0]


def test_a_verp_token_signed_with_another_secret_is_not_believed() -> None:
    [event] = parse_returned((SAMPLES / "postfix_user_unknown.eml").read_bytes(), "other")
    assert event.verp_token is None and event.subscription_id is None
    assert event.message_id == mid(42, 3, "a1b2c3d4e5f6")


def test_the_same_event_has_the_same_key_and_different_events_do_not() -> None:
    """The forged sample is the Postfix bounce with its VERP changed: the same event."""
    names = sorted(set(EXPECTED) - {"postfix_forged_verp.eml"})
    keys = [event.key for name in names for event in read(name)]
    assert len(set(keys)) == len(keys)
    assert read("exim_failed.eml") == read("exim_failed.eml")
    assert read("postfix_forged_verp.eml")[0].key == read("postfix_user_unknown.eml")[0].key
