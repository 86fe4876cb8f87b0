"""The drip loop end to end: real database (SQLite and PostgreSQL), real SMTP server on loopback,
`now` moved by the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drip import subscriptions
from drip.models import DeliveryState, Subscription, SubscriptionState
from drip.runtime import Runtime

from conftest import T0
from helpers import ALICE, BOB, CAROL, ZONES, deliveries, lesson_day, subscribe, subscription


def test_course_runs_one_lesson_per_local_day_in_order(runtime: Runtime, smtp_server) -> None:
    course = runtime.course("bone-health")
    for email in (ALICE, BOB):
        subscribe(runtime, email)
    received: dict[str, list[tuple[int, datetime, str]]] = {ALICE: [], BOB: []}
    now = T0
    while now < T0 + timedelta(days=10):
        before = len(smtp_server.messages)
        result = runtime.dispatcher.run_pass(now)
        assert runtime.dispatcher.run_pass(now).total == 0, "a second pass at the same now sent"
        assert result.sent == len(smtp_server.messages) - before
        for message in smtp_server.messages[before:]:
            recipient = message.envelope_recipients[0]
            day = lesson_day(runtime, str(message.message["Subject"]))
            html = message.message.get_body(("html",)).get_content()
            received[recipient].append((day, now, html))
        now += timedelta(minutes=30)

    for email, got in received.items():
        zone = ZoneInfo(ZONES[email])
        assert [day for day, _, _ in got] == list(range(1, 8)), email
        local_dates = [when.astimezone(zone).date() for _, when, _ in got]
        assert len(set(local_dates)) == 7, f"two lessons on one local day for {email}"
        for (day, when, _html), previous in zip(got[1:], local_dates, strict=False):
            local = when.astimezone(zone)
            assert local.date() == previous + timedelta(days=1), (email, day)
            assert (local.hour, local.minute) == (9, 0), (email, day, local)
        for day, _, html in got:
            following = course.next_lesson(day)
            if following is None:
                assert "Course complete" in html and "Tomorrow" not in html
            else:
                assert f"Tomorrow: {following.title}" in html
                assert following.teaser.split()[0] in html
    assert {subscription(runtime, i).state for i in (1, 2)} == {SubscriptionState.COMPLETED}


def test_temporary_failure_defers_without_advancing(runtime: Runtime, smtp_server) -> None:
    sub_id = subscribe(runtime, ALICE)
    smtp_server.fail_all = "421 4.3.2 Service shutting down, try later"
    result = runtime.dispatcher.run_pass(T0)
    assert (result.sent, result.deferred) == (0, 1)
    sub = subscription(runtime, sub_id)
    assert sub.current_day == 0 and sub.next_due_at is not None and sub.next_due_at > T0
    (delivery,) = deliveries(runtime, sub_id)
    assert delivery.state is DeliveryState.DEFERRED and delivery.smtp_reply.startswith("421")

    smtp_server.fail_all = None
    assert runtime.dispatcher.run_pass(T0 + timedelta(seconds=10)).total == 0, "retried too soon"
    assert runtime.dispatcher.run_pass(T0 + timedelta(hours=1)).sent == 1
    assert len(smtp_server.messages) == 1
    (delivery,) = deliveries(runtime, sub_id)
    assert delivery.state is DeliveryState.SENT and delivery.attempts == 2
    assert subscription(runtime, sub_id).current_day == 1


def test_refused_connection_defers_and_sends_when_back(runtime: Runtime, smtp_server) -> None:
    ids = [subscribe(runtime, email) for email in (ALICE, BOB)]
    smtp_server.stop()
    result = runtime.dispatcher.run_pass(T0)
    assert (result.sent, result.deferred) == (0, 2)
    assert all(subscription(runtime, i).current_day == 0 for i in ids)
    smtp_server.start()
    assert runtime.dispatcher.run_pass(T0 + timedelta(hours=1)).sent == 2
    assert sorted(m.envelope_recipients[0] for m in smtp_server.messages) == [ALICE, BOB]
    assert all(subscription(runtime, i).current_day == 1 for i in ids)


def test_permanent_failure_bounces_only_that_subscription(runtime: Runtime, smtp_server) -> None:
    ids = {email: subscribe(runtime, email) for email in (ALICE, BOB, CAROL)}
    smtp_server.reply_rcpt[BOB] = "550 5.1.1 No such user here"
    result = runtime.dispatcher.run_pass(T0)
    assert (result.sent, result.bounced) == (2, 1)
    assert sorted(m.envelope_recipients[0] for m in smtp_server.messages) == [ALICE, CAROL]
    bounced = subscription(runtime, ids[BOB])
    assert bounced.state is SubscriptionState.BOUNCED and bounced.next_due_at is None
    assert deliveries(runtime, ids[BOB])[0].state is DeliveryState.BOUNCED
    now = T0
    while now < T0 + timedelta(days=4, hours=12):  # lessons 2..5 at 09:00 New York time
        now += timedelta(hours=1)
        runtime.dispatcher.run_pass(now)
    assert BOB not in {m.envelope_recipients[0] for m in smtp_server.messages}
    assert subscription(runtime, ids[ALICE]).current_day == 5


def test_unsubscribe_after_claim_stops_the_send(runtime: Runtime, smtp_server) -> None:
    sub_id = subscribe(runtime, ALICE)
    dispatcher = runtime.dispatcher
    claims = dispatcher.claim(T0)
    assert [c.subscription_id for c in claims] == [sub_id]
    with runtime.sessions() as session, session.begin():
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        subscriptions.apply(sub, "unsubscribe", runtime.course("bone-health"), T0)
    result = dispatcher.deliver(claims, T0)
    assert (result.sent, result.skipped) == (0, 1)
    assert smtp_server.messages == []
    assert deliveries(runtime, sub_id) == []
    assert subscription(runtime, sub_id).state is SubscriptionState.UNSUBSCRIBED


def test_expired_lease_makes_the_lesson_claimable_again(runtime: Runtime, smtp_server) -> None:
    sub_id = subscribe(runtime, ALICE)
    dispatcher = runtime.dispatcher
    assert len(dispatcher.claim(T0)) == 1  # a worker claims, then dies before starting
    assert dispatcher.run_pass(T0 + timedelta(minutes=1)).total == 0, "a live lease was ignored"
    assert dispatcher.run_pass(T0 + dispatcher.lease + timedelta(seconds=1)).sent == 1
    (delivery,) = deliveries(runtime, sub_id)
    assert (delivery.state, delivery.attempts) == (DeliveryState.SENT, 1)
    assert len(smtp_server.messages) == 1


def test_pending_paused_and_resumed(runtime: Runtime, smtp_server) -> None:
    pending = subscribe(runtime, BOB, confirmed=False)
    sub_id = subscribe(runtime, ALICE)
    assert runtime.dispatcher.run_pass(T0).sent == 1
    with runtime.sessions() as session, session.begin():
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        subscriptions.apply(sub, "pause", runtime.course("bone-health"), T0)
    later = T0 + timedelta(days=3)
    assert runtime.dispatcher.run_pass(later).total == 0
    with runtime.sessions() as session, session.begin():
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        subscriptions.apply(sub, "resume", runtime.course("bone-health"), later)
        assert sub.next_due_at is not None
        local = sub.next_due_at.astimezone(ZoneInfo(ZONES[ALICE]))
        assert (local.hour, local.minute) == (9, 0) and sub.next_due_at > later
        next_due = sub.next_due_at
    assert runtime.dispatcher.run_pass(next_due).sent == 1
    assert subscription(runtime, sub_id).current_day == 2
    assert subscription(runtime, pending).current_day == 0
    assert {m.envelope_recipients[0] for m in smtp_server.messages} == {ALICE}


@pytest.mark.parametrize("batch_size", [1, 3])
def test_batches_stream_until_nothing_is_due(runtime: Runtime, smtp_server, batch_size) -> None:
    runtime.dispatcher.batch_size = batch_size
    for email in (ALICE, BOB, CAROL):
        subscribe(runtime, email)
    result = runtime.dispatcher.run_pass(T0)
    assert result.sent == 3 and len(smtp_server.messages) == 3
    assert runtime.dispatcher.run_pass(datetime(2026, 3, 2, 7, tzinfo=UTC)).total == 0
