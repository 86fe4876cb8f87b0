"""Helpers for tests that run real `drip` processes against one database: bulk seeding, the
environment a worker is given, and starting, killing and reaping the processes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from drip.models import (
    Delivery,
    DeliveryState,
    Subscriber,
    Subscription,
    SubscriptionState,
    make_engine,
    new_token,
)

DRIP = str(Path(sys.executable).parent / "drip")


def seed(url: str, count: int, course_slug: str, due: datetime, zone: str = "UTC") -> None:
    """`count` active subscriptions of reader<i>@example.com, all due at `due`."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(Subscriber),
                [{"id": i, "email": reader(i), "email_key": reader(i), "name": f"Reader {i}",
                  "created_at": due} for i in range(1, count + 1)],
            )  # fmt: skip
            conn.execute(
                insert(Subscription),
                [{"id": i, "subscriber_id": i, "course_slug": course_slug,
                  "state": SubscriptionState.ACTIVE, "current_day": 0, "timezone": zone,
                  "next_due_at": due, "retry_attempts": 0, "confirm_token": new_token(),
                  "unsubscribe_token": new_token(), "manage_token": new_token(),
                  "created_at": due, "confirmed_at": due} for i in range(1, count + 1)],
            )  # fmt: skip
    finally:
        engine.dispose()


def reader(i: int) -> str:
    return f"reader{i}@example.com"


def worker_env(database_url: str, smtp_url: str, tmp_path: Path, **settings: object) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "DRIP_DATABASE_URL": database_url,
        "DRIP_SMTP_URL": smtp_url,
        "DRIP_BASE_URL": "https://drip.example.org",
        "DRIP_CONFIG": str(tmp_path / "absent.toml"),
        "DRIP_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    env.update({f"DRIP_{key.upper()}": str(value) for key, value in settings.items()})
    return env


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen[bytes]:
    """A `drip` process, its output (both streams) in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([DRIP, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def reap(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 120) -> list[int]:
    """Wait for every process; kill any that outlives `timeout` (the test then fails on it)."""
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes


def delivery_states(url: str) -> Counter[DeliveryState]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            return Counter({DeliveryState(state): n for state, n in rows})
    finally:
        engine.dispose()
