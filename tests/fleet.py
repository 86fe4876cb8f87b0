"""Helpers for tests that run real `drip` processes against one database: bulk seeding, the
environment a worker is given, and starting, killing and reaping the processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, text

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
            if conn.dialect.name == "postgresql":  # the ids were given: move the sequences on
                for table in ("subscribers", "subscriptions"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT max(id) FROM {table}))"))  # fmt: skip
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


def serve(command: str, env: dict, cwd: Path, port: int) -> subprocess.Popen[str]:
    """`drip <command> --port PORT` started, once its /healthz answers."""
    process = subprocess.Popen(
        [DRIP, command, "--port", str(port)], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"drip {command} did not start: {process.communicate()[0]}")
        time.sleep(0.1)  # waiting for the server process to listen
