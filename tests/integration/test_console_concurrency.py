"""Operators acting in the console while a dispatch pass sends, on SQLite and PostgreSQL: each
action either takes effect and stands (the pass does not write over it) or is refused with
409 because that subscription is being sent; no lesson goes out twice."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select
from starlette.testclient import TestClient

from drip.models import Delivery, Subscriber, SubscriptionState
from drip.runtime import Runtime
from drip.web import create_app

from conftest import T0
from fleet import delivery_states, reader, seed
from helpers import add_operator, sign_in, subscription

SUBSCRIBERS = 90
ACTIONS = {range(1, 31): "pause", range(31, 61): "unsubscribe", range(61, 91): "move"}


def test_actions_during_a_sending_pass(runtime: Runtime, database_url: str, smtp_server) -> None:
    seed(database_url, SUBSCRIBERS, "bone-health", T0)
    add_operator(runtime)
    runtime.clock = lambda: T0
    runtime.dispatcher.batch_size = 5
    smtp_server.stall_seconds = 0.02  # the relay takes its time: the pass is under way meanwhile
    answers: dict[int, int] = {}
    with TestClient(create_app(runtime), base_url="https://drip.example.org") as client:
        csrf = sign_in(client)
        sending = threading.Thread(target=runtime.dispatcher.run_pass, args=(T0,))
        sending.start()
        for ids, action in ACTIONS.items():
            for sub_id in ids:
                data = {"csrf": csrf, "action": action, "lesson": "3"}
                answer = client.post(f"/admin/subscriptions/{sub_id}", data=data,
                                     follow_redirects=False)  # fmt: skip
                answers[sub_id] = answer.status_code
        sending.join(timeout=120)
    assert not sending.is_alive()
    assert set(answers.values()) <= {303, 409}, Counter(answers.values())
    assert 303 in answers.values()
    received = Counter(m.envelope_recipients[0] for m in smtp_server.messages)
    assert set(received.values()) <= {1}, "no lesson went out twice"
    assert sum(delivery_states(database_url).values()) == len(received)
    for ids, action in ACTIONS.items():
        for sub_id in (i for i in ids if answers[i] == 303):
            sub = subscription(runtime, sub_id)
            if action == "pause":
                assert sub.state is SubscriptionState.PAUSED, sub_id
            elif action == "unsubscribe":
                assert sub.state is SubscriptionState.UNSUBSCRIBED, sub_id
            else:  # lesson 3 is next: due at once if no lesson had gone out (as on a resume)
                assert sub.state is SubscriptionState.ACTIVE and sub.current_day in (2, 3)
                assert received.get(reader(sub_id), 0) == (
                    sub.current_day == 3 or sub.last_sent_at is not None
                )


def test_erasures_during_a_sending_pass(runtime: Runtime, database_url: str, smtp_server) -> None:
    """Each erasure is either refused while the worker sends to that person (409) or leaves
    nothing that names them, not even what the pass wrote about them before it."""
    seed(database_url, 40, "bone-health", T0)
    add_operator(runtime)
    runtime.clock = lambda: T0
    runtime.dispatcher.batch_size = 5
    smtp_server.stall_seconds = 0.02
    answers: dict[int, int] = {}
    with TestClient(create_app(runtime), base_url="https://drip.example.org") as client:
        csrf = sign_in(client)
        sending = threading.Thread(target=runtime.dispatcher.run_pass, args=(T0,))
        sending.start()
        for sub_id in range(1, 41):
            answer = client.post(f"/admin/subscriptions/{sub_id}/erase",
                                 data={"csrf": csrf, "confirm": reader(sub_id)})  # fmt: skip
            answers[sub_id] = answer.status_code
        sending.join(timeout=120)
    assert not sending.is_alive()
    assert set(answers.values()) <= {200, 409}, Counter(answers.values())  # 200: after 303
    received = Counter(m.envelope_recipients[0] for m in smtp_server.messages)
    assert set(received.values()) <= {1}, "no lesson went out twice"
    erased = {reader(i) for i, status in answers.items() if status == 200}
    assert erased, "some erasures got in"
    with runtime.sessions() as session:
        left = " ".join(f"{d.smtp_reply} {d.subscription.subscriber.email}"
                        for d in session.scalars(select(Delivery)))  # fmt: skip
        emails = set(session.scalars(select(Subscriber.email)))
    assert not erased & emails and not any(address in left for address in erased)
    for sub_id in (i for i, status in answers.items() if status == 200):
        sub = subscription(runtime, sub_id)
        assert sub.state is SubscriptionState.UNSUBSCRIBED and sub.leased_until is None
