"""The returned-mail settings are checked when loaded, and a Feedback becomes the right Report."""

from __future__ import annotations

import pytest

from drip.bounces import parse_returned, verp_address
from drip.config import Settings
from drip.endpoints import parse_imap_url, parse_listen
from drip.errors import ConfigError
from drip.models import FeedbackKind
from drip.reports import report_of_returned


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:25") == ("0.0.0.0", 25)
    assert parse_listen("[::1]:2525") == ("::1", 2525)
    for bad in ("2525", "host:", "host:0", "host:70000", ":25", "host:\u00b9", "host:\u0662\u0665"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_imap_urls() -> None:
    mailbox = parse_imap_url("imaps://bounce%40example.org:p%40ss@imap.example.org/Bounces")
    assert (mailbox.host, mailbox.port, mailbox.implicit_tls) == ("imap.example.org", 993, True)
    assert (mailbox.username, mailbox.password, mailbox.folder) == (
        "bounce@example.org", "p@ss", "Bounces"
    )  # fmt: skip
    plain = parse_imap_url("imap://u:p@imap.example.org")
    assert (plain.port, plain.implicit_tls, plain.folder) == (143, False, "INBOX")


@pytest.mark.parametrize(
    "values",
    [
        {"bounce_imap_url": "pop3://u:secret-word@host/INBOX"},
        {"bounce_imap_url": "imaps://host/INBOX"},
        {"bounce_listen": "localhost"},
        {"bounce_max_bytes": "0"},
    ],
)
def test_bad_settings_are_refused_when_loaded(values: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings().with_values(values)
    assert "secret-word" not in str(refused.value)


def test_a_returned_event_names_its_delivery_only_when_the_tag_checks_out() -> None:
    verp = verp_address(42, 3, "mail.example.org", "key")
    dsn = (
        b"From: MAILER-DAEMON@relay.example.org\r\nTo: " + verp.encode() + b"\r\n"
        b"Subject: Undelivered\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; "
        b'report-type=delivery-status; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
        b"failed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n"
        b"\r\nFinal-Recipient: rfc822; ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"\r\n--b--\r\n"
    )
    (good,) = [report_of_returned(f) for f in parse_returned(dsn, "key", envelope_to=verp)]
    assert (good.kind, good.delivery, good.status) == (FeedbackKind.HARD_BOUNCE, (42, 3), "5.1.1")
    assert good.key.startswith("returned:")
    (other_key,) = [report_of_returned(f) for f in parse_returned(dsn, "other", envelope_to=verp)]
    assert other_key.delivery is None
