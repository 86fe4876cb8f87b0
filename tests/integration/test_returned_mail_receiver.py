"""Returned mail in over real SMTP: lessons leave with a VERP envelope sender, and what comes
back to it (DSNs, ARF complaints) is matched to its delivery and acted on, once."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from drip import subscriptions, suppressions
from drip.bounces import parse_verp
from drip.config import BUNDLED_COURSES
from drip.models import FeedbackEvent, FeedbackKind, SubscriptionState, SuppressionReason
from drip.receiver import Intake, ReturnedMailServer
from drip.runtime import Runtime

from conftest import T0, make_runtime, write_course
from helpers import (
    ALICE,
    BOB,
    deliveries,
    returned_sample,
    send_returned,
    subscribe,
    subscription,
)
from smtp_server import free_port

LATER = T0 + timedelta(days=3)
H, S, C, D = (FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE, FeedbackKind.COMPLAINT,
              FeedbackKind.DELIVERED)  # fmt: skip
ACTIVE, BOUNCED, GONE = (SubscriptionState.ACTIVE, SubscriptionState.BOUNCED,
                         SubscriptionState.UNSUBSCRIBED)  # fmt: skip
HARD, COMPLAINT = SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT


@pytest.fixture
def receiver(runtime: Runtime) -> Iterator[ReturnedMailServer]:
    """The receiver on a loopback port, storing into the test database, at LATER."""
    server = ReturnedMailServer(Intake(runtime, clock=lambda: LATER), "127.0.0.1", free_port(),
                                max_bytes=200_000)  # fmt: skip
    server.start()
    yield server
    server.stop()


def first_lesson(runtime: Runtime, smtp_server, address: str = ALICE) -> tuple[int, str, str]:
    """Subscribe `address`, send lesson 1: (subscription, VERP MAIL FROM, Message-ID)."""
    sub = subscribe(runtime, address)
    runtime.dispatcher.run_pass(T0)
    sent = next(m for m in smtp_server.messages if m.envelope_recipients == [address])
    return sub, sent.envelope_from, str(sent.message["Message-ID"])


def events(runtime: Runtime) -> list[FeedbackEvent]:
    with runtime.sessions() as session:
        return list(session.scalars(select(FeedbackEvent).order_by(FeedbackEvent.id)))


def test_every_message_goes_out_with_the_verp_address_of_its_delivery(
    runtime: Runtime, smtp_server
) -> None:
    alice = subscribe(runtime, ALICE)
    bob = subscribe(runtime, BOB, confirmed=False)  # a confirmation email: delivery day 0
    with runtime.sessions() as session, session.begin():
        sub = session.get(subscriptions.Subscription, bob)
        assert sub is not None
        subscriptions.apply(sub, subscriptions.Event.REQUEST, runtime.course("bone-health"), T0)
    assert runtime.dispatcher.run_pass(T0).confirmations == 1
    by_recipient = {m.envelope_recipients[0]: m for m in smtp_server.messages}
    secret = runtime.settings.secret_key
    assert parse_verp(by_recipient[ALICE].envelope_from, secret) == (alice, 1)
    assert parse_verp(by_recipient[BOB].envelope_from, secret) == (bob, 0)
    course = runtime.course("bone-health")
    for message in by_recipient.values():
        assert message.envelope_from.endswith("@" + course.sender_email.rpartition("@")[2])
        assert course.sender_email in message.message["From"]
        assert "Return-Path" not in message.message
    assert parse_verp(by_recipient[ALICE].envelope_from, "another key") is None


def test_drip_bounce_domain_names_the_verp_domain(database_url, tmp_path, smtp_server) -> None:
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url,
                      bounce_domain="bounces.example.org")  # fmt: skip
    try:
        alice = subscribe(rt, ALICE)
        rt.dispatcher.run_pass(T0)
        (sent,) = smtp_server.messages
        assert sent.envelope_from.endswith("@bounces.example.org")
        assert parse_verp(sent.envelope_from, rt.settings.secret_key) == (alice, 1)
    finally:
        rt.close()


# sample -> (kinds stored, the subscription's state after, the address's suppression)
SAMPLES = {
    "postfix_user_unknown.eml": ([H], BOUNCED, HARD),
    "gmail_address_not_found.eml": ([H], BOUNCED, HARD),
    "office365_recipient_not_found.eml": ([H], BOUNCED, HARD),
    "exim_failed.eml": ([H, H], BOUNCED, HARD),
    "postfix_mailbox_full.eml": ([S], ACTIVE, None),
    "postfix_delayed.eml": ([S], ACTIVE, None),
    "rfc3464_delivered.eml": ([D], ACTIVE, None),
    "arf_rfc5965.eml": ([C], GONE, COMPLAINT),
    "arf_yahoo_redacted.eml": ([C], GONE, COMPLAINT),
    "arf_microsoft_jmrp.eml": ([C], GONE, COMPLAINT),
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_each_sample_maps_to_its_delivery_and_action(
    runtime: Runtime, smtp_server, receiver: ReturnedMailServer, sample: str
) -> None:
    alice, verp, message_id = first_lesson(runtime, smtp_server)
    kinds, state, suppressed = SAMPLES[sample]
    code, reply = send_returned(receiver.port, returned_sample(sample, verp, message_id), verp)
    assert code == 250, reply
    (delivery,) = deliveries(runtime, alice)
    stored = events(runtime)
    assert [event.kind for event in stored] == kinds
    assert {(e.subscription_id, e.delivery_id) for e in stored} == {(alice, delivery.id)}
    assert subscription(runtime, alice).state is state
    with runtime.sessions() as session:
        entry = suppressions.find(session, ALICE)
        assert (entry.reason if entry else None) is suppressed


def test_the_same_bounce_twice_changes_nothing(
    runtime: Runtime, smtp_server, receiver: ReturnedMailServer
) -> None:
    alice, verp, message_id = first_lesson(runtime, smtp_server)
    bounce = returned_sample("postfix_mailbox_full.eml", verp, message_id)  # soft: counted
    assert send_returned(receiver.port, bounce, verp)[0] == 250
    assert send_returned(receiver.port, bounce, verp)[0] == 250
    assert len(events(runtime)) == 1
    assert subscription(runtime, alice).soft_bounces == 1


def test_a_message_that_is_neither_is_kept_and_logged(
    runtime: Runtime, smtp_server, receiver: ReturnedMailServer, caplog
) -> None:
    alice, verp, message_id = first_lesson(runtime, smtp_server)
    reply = returned_sample("not_bounce_reader_reply.eml", verp, message_id)
    with caplog.at_level(logging.WARNING, logger="drip.receiver"):
        code, text = send_returned(receiver.port, reply, verp)
    assert (code, "kept" in text) == (250, True)
    (kept,) = runtime.settings.bounces_dir.glob("*.eml")
    assert kept.read_bytes().startswith(f"X-Original-To: {verp}\r\n".encode())
    assert b"\r\n".join(reply.splitlines()) in kept.read_bytes()
    assert str(kept) in caplog.text
    assert events(runtime) == []
    assert subscription(runtime, alice).state is ACTIVE


def test_a_database_that_cannot_be_written_answers_451_and_loses_nothing(
    runtime: Runtime, smtp_server, receiver: ReturnedMailServer, engine
) -> None:
    alice, verp, message_id = first_lesson(runtime, smtp_server)
    bounce = returned_sample("postfix_user_unknown.eml", verp, message_id)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback_events RENAME TO feedback_events_away"))
    code, reply = send_returned(receiver.port, bounce, verp)
    assert code == 451, reply
    assert subscription(runtime, alice).state is ACTIVE
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback_events_away RENAME TO feedback_events"))
    assert send_returned(receiver.port, bounce, verp)[0] == 250  # the sender's retry
    assert subscription(runtime, alice).state is BOUNCED


def test_a_message_over_the_size_limit_is_refused(
    runtime: Runtime, smtp_server, receiver: ReturnedMailServer
) -> None:
    _, verp, message_id = first_lesson(runtime, smtp_server)
    bounce = returned_sample("postfix_user_unknown.eml", verp, message_id)
    huge = bounce + b"\r\n" + b"x" * 76 * 3000
    assert send_returned(receiver.port, huge, verp)[0] == 552
    assert events(runtime) == []


def test_a_bounced_mailbox_gets_no_further_lesson(
    runtime: Runtime, smtp_server, receiver: ReturnedMailServer
) -> None:
    alice, verp, message_id = first_lesson(runtime, smtp_server)
    bob = subscribe(runtime, BOB)
    runtime.dispatcher.run_pass(T0)
    bounce = returned_sample("gmail_address_not_found.eml", verp, message_id)
    assert send_returned(receiver.port, bounce, verp)[0] == 250
    smtp_server.reset()
    runtime.dispatcher.run_pass(LATER)
    assert [m.envelope_recipients for m in smtp_server.messages] == [[BOB]]
    assert subscription(runtime, bob).current_day == 2
    assert subscription(runtime, alice).current_day == 1


def test_a_forged_verp_tag_moves_nothing(
    runtime: Runtime, smtp_server, receiver: ReturnedMailServer
) -> None:
    """Someone who knows the address format but not the key names a stranger's delivery."""
    alice, verp, _ = first_lesson(runtime, smtp_server)
    forged = f"bounces+{alice}-1-{'a' * 16}@{verp.rpartition('@')[2]}"
    bounce = returned_sample("postfix_user_unknown.eml", forged, "<unknown@example.org>")
    assert send_returned(receiver.port, bounce, forged)[0] == 250
    assert [event.subscription_id for event in events(runtime)] == [None]
    assert subscription(runtime, alice).state is ACTIVE


def test_the_receiver_reports_only_what_it_stored(runtime: Runtime, smtp_server) -> None:
    """Without a listener, the intake itself: one transaction per message."""
    _, verp, message_id = first_lesson(runtime, smtp_server)
    intake = Intake(runtime, clock=lambda: LATER)
    bounce = returned_sample("exim_failed.eml", verp, message_id)
    first = intake.take(bounce, [verp, "postmaster@example.org"])
    again = intake.take(bounce, [verp])
    assert (first.stored, again.stored, first.kept) == (2, 0, None)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackEvent)) == 2


def test_a_complainer_gets_nothing_more_from_any_course(
    database_url: str, tmp_path, smtp_server
) -> None:
    courses = tmp_path / "courses"
    shutil.copytree(BUNDLED_COURSES / "bone-health", courses / "bone-health")
    write_course(courses / "tiny", days=3)
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, courses_dir=courses)
    server = ReturnedMailServer(Intake(rt, clock=lambda: LATER), "127.0.0.1", free_port(),
                                max_bytes=200_000)  # fmt: skip
    server.start()
    try:
        with rt.sessions() as session, session.begin():
            for slug in ("bone-health", "tiny"):
                subscriptions.subscribe(session, rt.course(slug), ALICE, now=T0, name="Alice",
                                        timezone="UTC", confirmed=True)  # fmt: skip
        assert rt.dispatcher.run_pass(T0).sent == 2
        sent = smtp_server.messages[0]  # a lesson of either course
        complaint = returned_sample("arf_rfc5965.eml", sent.envelope_from,
                                    str(sent.message["Message-ID"]))  # fmt: skip
        assert send_returned(server.port, complaint, sent.envelope_from)[0] == 250
        smtp_server.reset()
        assert rt.dispatcher.run_pass(LATER + timedelta(days=2)).total == 0
        assert smtp_server.messages == []
        with rt.sessions() as session:
            found = session.scalars(select(subscriptions.Subscription.state)).all()
            assert sorted(found) == [GONE, GONE]
            assert suppressions.find(session, ALICE).reason is COMPLAINT  # type: ignore[union-attr]
    finally:
        server.stop()
        rt.close()
