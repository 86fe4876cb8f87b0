"""The receiver as a process of its own (`drip bounces serve`) and inside `drip run`: returned
mail posted while the dispatcher sends is all stored, and acted on, with nothing lost."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from drip.models import FeedbackEvent, Subscription, SubscriptionState, make_engine

from conftest import T0, make_runtime
from fleet import reader, seed, start_drip, start_receiver, stop, wait_for_listener
from helpers import returned_sample, send_returned
from smtp_server import free_port

SUBSCRIBERS, BOUNCING = 120, 60


def states(url: str) -> dict[int, tuple[SubscriptionState, int]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Subscription.id, Subscription.state,
                                       Subscription.current_day))  # fmt: skip
            return {row.id: (row.state, row.current_day) for row in rows}
    finally:
        engine.dispose()


def stored_events(url: str) -> list[int | None]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(select(FeedbackEvent.subscription_id)),
                          key=lambda sub: sub or 0)  # fmt: skip
    finally:
        engine.dispose()


def test_bounces_posted_while_the_dispatcher_sends_are_all_stored(
    database_url: str, smtp_server, tmp_path: Path
) -> None:
    seed(database_url, SUBSCRIBERS, "bone-health", T0)
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, batch_size=10)
    process, port = start_receiver(database_url, tmp_path)
    try:
        assert rt.dispatcher.run_pass(T0).sent == SUBSCRIBERS
        first = {m.envelope_recipients[0]: m for m in smtp_server.messages}
        replies: list[int] = []

        def post_bounces() -> None:  # a second process's work, posted as the MX would
            for i in range(1, BOUNCING + 1):
                sent = first[reader(i)]
                bounce = returned_sample("postfix_user_unknown.eml", sent.envelope_from,
                                         str(sent.message["Message-ID"]))  # fmt: skip
                replies.append(send_returned(port, bounce, sent.envelope_from)[0])

        poster = threading.Thread(target=post_bounces)
        poster.start()
        rt.dispatcher.run_pass(T0 + timedelta(days=2))  # lesson 2, meanwhile
        poster.join(timeout=120)
    finally:
        rt.close()
        log = stop(process)
    assert replies == [250] * BOUNCING, log
    assert stored_events(database_url) == list(range(1, BOUNCING + 1))
    after = states(database_url)
    assert {after[i][0] for i in range(1, BOUNCING + 1)} == {SubscriptionState.BOUNCED}
    assert {after[i] for i in range(BOUNCING + 1, SUBSCRIBERS + 1)} == {
        (SubscriptionState.ACTIVE, 2)
    }
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url)
    try:
        smtp_server.reset()
        rt.dispatcher.run_pass(T0 + timedelta(days=5))
    finally:
        rt.close()
    bounced = {reader(i) for i in range(1, BOUNCING + 1)}
    assert len(smtp_server.messages) == SUBSCRIBERS - BOUNCING
    assert not bounced & {m.envelope_recipients[0] for m in smtp_server.messages}


def test_drip_run_takes_returned_mail_on_drip_bounce_listen(
    database_url: str, smtp_server, tmp_path: Path
) -> None:
    seed(database_url, 1, "bone-health", T0)
    port = free_port()
    process, _ = start_drip("run", database_url, smtp_server, tmp_path,
                            bounce_listen=f"127.0.0.1:{port}")  # fmt: skip
    try:
        wait_for_listener(port, process, tmp_path / "absent.log")
        (sent,) = smtp_server.wait_for(1)
        bounce = returned_sample("gmail_address_not_found.eml", sent.envelope_from,
                                 str(sent.message["Message-ID"]))  # fmt: skip
        assert send_returned(port, bounce, sent.envelope_from)[0] == 250
        deadline = time.monotonic() + 30
        while states(database_url)[1][0] is not SubscriptionState.BOUNCED:
            assert time.monotonic() < deadline, "the bounce was not acted on"
            time.sleep(0.05)  # the process's pass and the receiver run on their own
    finally:
        log = stop(process)
    assert f"taking returned mail on 127.0.0.1:{port}" in log
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(FeedbackEvent)) == 1
    finally:
        engine.dispose()
