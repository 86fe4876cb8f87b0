"""Outgoing webhooks against a real receiver on loopback: every event signed, written with the
change it reports, delivered once through a receiver's outage and a worker's death, and never
in the way of sending lessons."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from drip import subscriptions
from drip.hooks import outbox
from drip.runtime import Runtime

from conftest import T0, make_runtime
from fleet import seed, start_drip, stop
from helpers import ALICE, BOB, subscribe
from webhook_receiver import Receiver, add_endpoint


def unsubscribe(rt: Runtime, sub_id: int, now=T0) -> None:
    with rt.write_sessions() as session, session.begin():
        sub = session.get(subscriptions.Subscription, sub_id)
        assert sub is not None
        subscriptions.apply(sub, "unsubscribe", rt.course(sub.course_slug), now)


def test_events_reach_the_receiver_signed(runtime: Runtime, receiver: Receiver) -> None:
    add_endpoint(runtime, receiver)
    sub_id = subscribe(runtime, ALICE)  # confirmed at once: subscriber.confirmed
    assert runtime.dispatcher.run_pass(T0).sent == 1  # lesson.sent
    unsubscribe(runtime, sub_id)  # subscriber.unsubscribed
    result = runtime.webhooks.run_pass(T0)
    assert result.delivered == 3
    assert receiver.types() == ["subscriber.confirmed", "lesson.sent", "subscriber.unsubscribed"]
    assert receiver.refused == []
    sent = receiver.received[1].event
    assert sent["data"]["email"] == ALICE and sent["data"]["day"] == 1
    assert sent["data"]["message_id"].startswith("<drip.bone-health.")
    assert receiver.received[0].timestamp == int(T0.timestamp())
    assert runtime.webhooks.run_pass(T0 + timedelta(hours=1)).delivered == 0  # nothing twice


def test_an_endpoint_hears_only_the_events_it_names(runtime: Runtime, receiver: Receiver) -> None:
    add_endpoint(runtime, receiver, ("subscriber.unsubscribed",))
    sub_id = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    unsubscribe(runtime, sub_id)
    runtime.webhooks.run_pass(T0)
    assert receiver.types() == ["subscriber.unsubscribed"]


def test_a_receiver_down_for_an_hour_gets_every_event_once(
    runtime: Runtime, receiver: Receiver
) -> None:
    add_endpoint(runtime, receiver)
    receiver.stop()  # connections refused from now on
    ids = [subscribe(runtime, email) for email in (ALICE, BOB)]
    runtime.dispatcher.run_pass(T0)
    for sub_id in ids:
        unsubscribe(runtime, sub_id, T0 + timedelta(minutes=5))
    for minutes in range(0, 60, 5):
        result = runtime.webhooks.run_pass(T0 + timedelta(minutes=minutes))
        assert result.delivered == 0
    receiver.start()  # back after an hour
    later = T0 + timedelta(hours=1)
    for minutes in range(0, 180, 5):
        runtime.webhooks.run_pass(later + timedelta(minutes=minutes))
    assert sorted(receiver.types()) == sorted(
        ["subscriber.confirmed", "lesson.sent", "subscriber.unsubscribed"] * 2
    )
    assert len({m.webhook_id for m in receiver.received}) == 6
    assert receiver.refused == []
    with runtime.sessions() as session:
        assert outbox.pending_count(session) == 0
        attempts = outbox.recent_attempts(session, limit=500)
    assert any(a.status == 0 and "refused" in a.error.lower() for a in attempts)


def test_a_killed_workers_messages_are_taken_over_once(
    runtime: Runtime, receiver: Receiver
) -> None:
    add_endpoint(runtime, receiver)
    subscribe(runtime, ALICE)
    deliverer = runtime.webhooks
    with Session(runtime.engine) as session, session.begin():
        taken = outbox.claim_due(session, T0, 10, deliverer.lease)  # then the worker dies
    assert len(taken) == 1
    assert deliverer.run_pass(T0 + timedelta(seconds=30)).delivered == 0  # still leased
    assert deliverer.run_pass(T0 + deliverer.lease).delivered == 1
    assert deliverer.run_pass(T0 + 2 * deliverer.lease).delivered == 0
    assert receiver.types() == ["subscriber.confirmed"]


def test_a_failing_receiver_is_retried_with_backoff(runtime: Runtime, receiver: Receiver) -> None:
    add_endpoint(runtime, receiver)
    subscribe(runtime, ALICE)
    subscribe(runtime, BOB)
    receiver.status = 503
    first = runtime.webhooks.run_pass(T0)
    assert (first.retried, first.held) == (1, 1)  # the second is not tried after a failure
    receiver.status = 200
    assert runtime.webhooks.run_pass(T0 + timedelta(seconds=1)).delivered == 0  # backing off
    assert runtime.webhooks.run_pass(T0 + timedelta(hours=1)).delivered == 2


def test_a_stalled_receiver_does_not_hold_up_sending(
    runtime: Runtime, receiver: Receiver, database_url: str
) -> None:
    seed(database_url, 40, "bone-health", T0)
    add_endpoint(runtime, receiver)
    subscribe(runtime, ALICE)  # a message for the receiver to stall on
    receiver.stall = threading.Event()
    delivering = threading.Thread(target=runtime.webhooks.run_pass, args=(T0,))
    delivering.start()
    try:
        assert receiver.stalled.wait(30), "the receiver never got the first message"
        result = runtime.dispatcher.run_pass(T0)  # while the receiver holds its request
        assert result.sent == 41
        assert not receiver.stall.is_set() and delivering.is_alive()
    finally:
        receiver.stall.set()
        delivering.join(60)
    with runtime.sessions() as session:
        assert outbox.pending_count(session) == 41  # every lesson.sent written, none lost


def test_bounces_and_completions_are_told(
    runtime: Runtime, receiver: Receiver, smtp_server
) -> None:
    add_endpoint(runtime, receiver, ("subscriber.bounced", "course.completed"))
    sub_id = subscribe(runtime, ALICE)
    course = runtime.course("bone-health")
    with runtime.write_sessions() as session, session.begin():
        sub = session.get(subscriptions.Subscription, sub_id)
        assert sub is not None
        sub.current_day = course.total_days - 1  # only the last lesson is left
    runtime.dispatcher.run_pass(T0)
    bob = subscribe(runtime, BOB)
    smtp_server.reply_rcpt[BOB] = "550 5.1.1 no such mailbox"
    runtime.dispatcher.run_pass(T0)
    runtime.webhooks.run_pass(T0)
    assert receiver.types() == ["course.completed", "subscriber.bounced"]
    assert receiver.received[1].event["data"]["subscription_id"] == bob


def test_drip_run_delivers_beside_sending(
    database_url: str, smtp_server, receiver: Receiver, tmp_path
) -> None:
    """The real process: a lesson due now goes out, and its event reaches the receiver."""
    seed(database_url, 3, "bone-health", datetime.now(UTC) - timedelta(minutes=1))
    rt = make_runtime(database_url, tmp_path)
    add_endpoint(rt, receiver, ("lesson.sent",))
    rt.close()
    process, _ = start_drip("run", database_url, smtp_server, tmp_path, tick_seconds=0.5,
                            webhook_tick_seconds=0.2)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for the other process
    finally:
        log = stop(process)
    assert sorted(m.event["data"]["subscription_id"] for m in receiver.received) == [1, 2, 3], log
    assert receiver.refused == []


def test_a_lesson_given_up_on_is_told(
    database_url: str, tmp_path, smtp_server, receiver: Receiver
) -> None:
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, retry_give_up_seconds=1)
    try:
        add_endpoint(rt, receiver, ("lesson.failed",))
        sub_id = subscribe(rt, ALICE)
        smtp_server.fail_all = "451 4.3.0 try again later"
        assert rt.dispatcher.run_pass(T0).deferred == 1  # retried: nobody is told yet
        later = T0 + timedelta(hours=1)
        assert rt.dispatcher.run_pass(later).failed == 1  # past the give-up time
        rt.webhooks.run_pass(later)
    finally:
        rt.close()
    (message,) = receiver.received
    data = message.event["data"]
    assert message.event["type"] == "lesson.failed" and data["subscription_id"] == sub_id
    assert data["day"] == 1 and data["state"] == "failed" and "451" in data["smtp_reply"]
