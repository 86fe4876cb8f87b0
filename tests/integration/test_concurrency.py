"""Passes started at the same moment, in separate processes, share the work without doubles:
BEGIN IMMEDIATE on SQLite, FOR UPDATE SKIP LOCKED on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import insert

from drip.models import Subscriber, Subscription, SubscriptionState, make_engine, new_token

from conftest import T0

SUBSCRIBERS = 300


def seed(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            insert(Subscriber),
            [{"id": i, "email": f"r{i}@example.com", "email_key": f"r{i}@example.com",
              "name": "", "created_at": T0} for i in range(1, SUBSCRIBERS + 1)],
        )  # fmt: skip
        conn.execute(
            insert(Subscription),
            [{"id": i, "subscriber_id": i, "course_slug": "bone-health",
              "state": SubscriptionState.ACTIVE, "current_day": 0, "timezone": "UTC",
              "next_due_at": T0, "retry_attempts": 0, "confirm_token": new_token(),
              "unsubscribe_token": new_token(), "manage_token": new_token(), "created_at": T0}
             for i in range(1, SUBSCRIBERS + 1)],
        )  # fmt: skip
    engine.dispose()


def test_simultaneous_ticks_send_each_lesson_once(database_url, smtp_server, tmp_path: Path):
    seed(database_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DRIP_")},
        "DRIP_DATABASE_URL": database_url,
        "DRIP_SMTP_URL": smtp_server.url,
        "DRIP_BATCH_SIZE": "20",
    }
    drip = Path(sys.executable).parent / "drip"
    ticks = [
        subprocess.Popen(
            [str(drip), "tick", "--now", T0.isoformat()],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [tick.communicate(timeout=120) for tick in ticks]
    assert [tick.returncode for tick in ticks] == [0, 0, 0], outputs
    received = Counter(m.envelope_recipients[0] for m in smtp_server.messages)
    assert len(received) == SUBSCRIBERS and set(received.values()) == {1}
    sent = [int(out.split("sent ")[1].split(",")[0]) for out, _ in outputs]
    assert sum(sent) == SUBSCRIBERS
