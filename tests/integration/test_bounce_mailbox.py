"""`drip bounces fetch` against a real IMAP server (Dovecot on loopback, over TLS): what
reports a bounce or complaint is stored, then moved to the done folder; what reports nothing
goes to the unread folder; nothing is deleted unprocessed, nor moved before it is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from drip.cli import main
from drip.endpoints import parse_imap_url
from drip.models import SubscriptionState
from drip.receiver import Intake
from drip.receiver.imap import fetch
from drip.runtime import Runtime

from conftest import T0
from helpers import ALICE, BOB, returned_sample, subscribe, subscription

MOVE_OR_COPY = pytest.mark.parametrize("imap_server", [True, False], indirect=True,
                                       ids=["move", "copy-expunge"])  # fmt: skip


def verp_and_message_id(smtp_server, address: str) -> tuple[str, str]:
    sent = next(m for m in smtp_server.messages if m.envelope_recipients == [address])
    return sent.envelope_from, str(sent.message["Message-ID"])


def use(monkeypatch, runtime: Runtime, imap_server) -> None:
    monkeypatch.setenv("DRIP_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("DRIP_CONFIG", "absent.toml")
    monkeypatch.setenv("DRIP_BOUNCE_IMAP_URL", imap_server.url)
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)


@MOVE_OR_COPY
def test_fetch_stores_then_moves_and_keeps_the_unreadable(
    runtime: Runtime, smtp_server, imap_server, monkeypatch, capsys
) -> None:
    alice, bob = subscribe(runtime, ALICE), subscribe(runtime, BOB)
    runtime.dispatcher.run_pass(T0)
    imap_server.deliver(returned_sample("postfix_user_unknown.eml",
                                        *verp_and_message_id(smtp_server, ALICE)))  # fmt: skip
    imap_server.deliver(returned_sample("arf_yahoo_redacted.eml",
                                        *verp_and_message_id(smtp_server, BOB)))  # fmt: skip
    out_of_office = returned_sample("not_bounce_out_of_office.eml", "x@example.org", "<x@y>")
    imap_server.deliver(out_of_office)
    with imap_server.connect() as imap:  # the server offers MOVE, or drip copies and expunges
        assert (b"MOVE" in imap.capability()[1][0].split()) is imap_server.moves
    use(monkeypatch, runtime, imap_server)
    assert main(["bounces", "fetch"]) == 0
    assert "2 message(s) processed (2 new report(s)), 1 moved to drip-unread" in (
        capsys.readouterr().out
    )
    assert subscription(runtime, alice).state is SubscriptionState.BOUNCED
    assert subscription(runtime, bob).state is SubscriptionState.UNSUBSCRIBED
    assert imap_server.messages("INBOX") == []
    assert len(imap_server.messages("drip-processed")) == 2
    ((_, kept),) = imap_server.messages("drip-unread")
    assert kept.replace(b"\r\n", b"\n") == out_of_office.replace(b"\r\n", b"\n")
    assert main(["bounces", "fetch"]) == 0
    assert "0 message(s) processed" in capsys.readouterr().out


def test_a_message_whose_reports_cannot_be_stored_stays_unseen(
    runtime: Runtime, smtp_server, imap_server, engine
) -> None:
    alice = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    verp, message_id = verp_and_message_id(smtp_server, ALICE)
    bounce = returned_sample("gmail_address_not_found.eml", verp, message_id)
    imap_server.deliver(bounce)
    mailbox = parse_imap_url(imap_server.url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback_events RENAME TO feedback_events_away"))
    with pytest.raises(Exception, match="feedback_events"):
        fetch(Intake(runtime), mailbox, "drip-processed", "drip-unread")
    ((flags, _),) = imap_server.messages("INBOX")
    assert b"\\Seen" not in flags
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback_events_away RENAME TO feedback_events"))
    assert fetch(Intake(runtime), mailbox, "drip-processed", "drip-unread").done == 1
    assert subscription(runtime, alice).state is SubscriptionState.BOUNCED
    assert imap_server.messages("INBOX") == []


def test_a_wrong_password_is_a_one_line_error(imap_server, runtime, monkeypatch, capsys) -> None:
    use(monkeypatch, runtime, imap_server)
    monkeypatch.setenv("DRIP_BOUNCE_IMAP_URL", imap_server.url.replace(":imap-test-", ":wrong-"))
    assert main(["bounces", "fetch"]) == 1
    error = capsys.readouterr().err
    assert "the bounce mailbox at 127.0.0.1" in error and "wrong-" not in error
