"""The APScheduler runner: passes on a clock it is given, stopped cleanly on request."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta

from drip.runtime import Runtime
from drip.scheduler.runner import run_forever

from conftest import T0
from helpers import ALICE, subscribe


def test_runner_runs_a_pass_at_once_and_stops_cleanly(runtime: Runtime, smtp_server) -> None:
    subscribe(runtime, ALICE)
    stop = threading.Event()
    runner = threading.Thread(
        target=run_forever,
        args=(runtime.dispatcher, 3600),
        kwargs={
            "stop": stop,
            "clock": lambda: T0 + timedelta(minutes=1),
            "observe": runtime.metrics.observe_pass,
        },
    )
    runner.start()
    deadline = time.monotonic() + 30
    while not smtp_server.messages and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for the worker thread, not for the schedule
    stop.set()
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert [m.envelope_recipients[0] for m in smtp_server.messages] == [ALICE]


def test_a_stop_ends_the_pass_after_the_batch_under_way(runtime: Runtime, smtp_server) -> None:
    """A deploy stops a worker in the middle of a backlog: the batches already claimed are
    sent and recorded, nothing more is claimed, and the rest is sent by the next pass."""
    people = [f"reader{n}@example.org" for n in range(8)]
    for address in people:
        subscribe(runtime, address)
    now = T0 + timedelta(minutes=1)
    dispatcher = dataclasses.replace(runtime.dispatcher, batch_size=2, stopping=threading.Event())
    dispatcher.progress = lambda _: dispatcher.stopping.set()  # asked to stop after a batch
    first = dispatcher.run_pass(now)
    assert 2 <= first.sent < len(people), "the pass ended early, after what it had claimed"
    assert len(smtp_server.messages) == first.sent
    rest = dataclasses.replace(runtime.dispatcher, batch_size=2).run_pass(now)
    assert first.sent + rest.sent == len(people), "what was left is due, not leased"
    assert sorted(m.envelope_recipients[0] for m in smtp_server.messages) == sorted(people)
