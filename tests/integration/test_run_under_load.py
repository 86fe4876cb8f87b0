"""`drip run`, web and scheduler in one process, against a slow relay while people sign up
during a pass: every lesson once, every confirmation delivered, nobody bounced, and the relay
never sees two conversations interleaved on one connection."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from drip.models import DeliveryState

from conftest import T0
from fleet import delivery_states, reader, seed, start_drip, stop

LESSONS_DUE = 12
SIGNUPS = 20


def test_signups_during_a_slow_pass(database_url: str, smtp_server, tmp_path: Path) -> None:
    seed(database_url, LESSONS_DUE, "bone-health", T0)  # all due: T0 is long past
    smtp_server.stall_seconds = 0.5  # the relay takes half a second a message
    process, base = start_drip("run", database_url, smtp_server, tmp_path, tick_seconds=1)
    try:
        smtp_server.wait_for(1)  # the pass is under way
        signup = lambda i: httpx.post(  # noqa: E731
            f"{base}/subscribe",
            json={"email": f"new{i}@example.org", "course": "bone-health"}, timeout=30,
        )  # fmt: skip
        with ThreadPoolExecutor(SIGNUPS) as pool:
            answers = list(pool.map(signup, range(SIGNUPS)))
        assert [a.status_code for a in answers] == [200] * SIGNUPS
        received = smtp_server.wait_for(LESSONS_DUE + SIGNUPS, timeout=120)
    finally:
        output = stop(process)
    recipients = Counter(m.envelope_recipients[0] for m in received)
    assert all(recipients[reader(i)] == 1 for i in range(1, LESSONS_DUE + 1)), recipients
    assert all(recipients[f"new{i}@example.org"] == 1 for i in range(SIGNUPS)), recipients
    assert len(received) == LESSONS_DUE + SIGNUPS
    assert smtp_server.protocol_errors == []
    assert delivery_states(database_url) == {DeliveryState.SENT: LESSONS_DUE + SIGNUPS}, output[
        -3000:
    ]
    assert process.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
