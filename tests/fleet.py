"""Helpers for tests that run real `drip` processes against one database: bulk seeding, the
environment a worker is given, and starting (servers too), killing and reaping the processes."""

from __future__ import annotations

import os
import socket
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

from smtp_server import free_port

DRIP = str(Path(sys.executable).parent / "drip")
SERVER_LOGS: dict[int, Path] = {}  # pid of a server from start_drip -> its output


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


def start_drip(command: str, database_url: str, smtp_server, tmp_path: Path, **settings: object):
    """`drip <command>` listening on a free port, once /healthz answers; (process, base URL).
    `settings` become DRIP_* variables (signup_limit_per_client=5: DRIP_SIGNUP_LIMIT_PER_CLIENT)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DRIP_")},
        "DRIP_DATABASE_URL": database_url,
        "DRIP_SMTP_URL": smtp_server.url,
        "DRIP_BASE_URL": base,
        **{f"DRIP_{key.upper()}": str(value) for key, value in settings.items()},
    }
    log = tmp_path / f"drip-{command}-{port}.log"  # a file: a full pipe would stall the server
    with log.open("wb") as out:
        process = subprocess.Popen(
            [DRIP, command, "--port", str(port)], env=env, cwd=tmp_path,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    SERVER_LOGS[process.pid] = log
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"drip {command} did not start: {log.read_text()}")
            time.sleep(0.1)  # waiting for the server process to listen
    except BaseException:
        process.kill()
        process.wait(timeout=30)
        raise
    return process, base


def stop(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM a started `drip` server and wait for it; its output."""
    process.terminate()
    process.wait(timeout=30)
    return SERVER_LOGS.pop(process.pid).read_text(encoding="utf-8", errors="replace")


def wait_for_listener(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once something accepts connections on `port` (the process is still starting)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=30)
            raise AssertionError(f"nothing listens on port {port}: {log.read_text()}")
        time.sleep(0.1)  # waiting for the server process to listen


def start_receiver(database_url: str, tmp_path: Path, **settings: object):
    """`drip bounces serve` on a free port, once it listens; (process, port)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DRIP_")},
        "DRIP_DATABASE_URL": database_url,
        "DRIP_CONFIG": str(tmp_path / "absent.toml"),
        "DRIP_BOUNCES_DIR": str(tmp_path / "bounces-unread"),
        **{f"DRIP_{key.upper()}": str(value) for key, value in settings.items()},
    }
    log = tmp_path / f"drip-bounces-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [DRIP, "bounces", "serve", "--port", str(port)], env=env, cwd=tmp_path,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    SERVER_LOGS[process.pid] = log
    wait_for_listener(port, process, log)
    return process, port
