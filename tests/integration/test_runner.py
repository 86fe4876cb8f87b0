"""The APScheduler runner: passes on a clock it is given, stopped cleanly on request."""

from __future__ import annotations

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
