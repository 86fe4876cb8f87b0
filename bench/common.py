"""What the benchmarks share: an SMTP sink in its own process, a fresh database, bulk seeding.

Seeding goes around the ORM: SQLite gets executemany of plain rows, PostgreSQL gets COPY.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select, text

from drip import migrations
from drip.models import Subscriber, Subscription, SubscriptionState, make_engine

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# 24 zones, one per hour of offset or near it, so "09:00 local" is spread over the day.
ZONES = [
    "Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
    "America/Denver", "America/Chicago", "America/New_York", "America/Halifax",
    "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Azores", "Europe/London",
    "Europe/Paris", "Europe/Athens", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney",
    "Pacific/Noumea", "Pacific/Auckland",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """bench/smtp_sink.py in its own process, so its CPU is not counted as the sender's."""

    def __init__(self, delay_ms: float = 0.0, record: Path | None = None) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "smtp_sink.py"), "--port", str(self.port),
             "--delay-ms", str(delay_ms), *(["--record", str(record)] if record else [])],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"the SMTP sink did not start: {line!r}")
        self.url = f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> int:
        """Stop the sink; the number of messages it took."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=60)
        return int(out.split()[-1]) if out.strip() else -1


@dataclass
class Database:
    """A fresh, migrated database: a SQLite file or a PostgreSQL schema of its own."""

    kind: str
    folder: Path

    def __post_init__(self) -> None:
        if self.kind == "sqlite":
            self.url = f"sqlite:///{self.folder / 'bench.db'}"
            self.schema = ""
        else:
            self.schema = f"drip_bench_{uuid.uuid4().hex[:8]}"
            with create_engine(POSTGRES_URL).begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            self.url = f"{POSTGRES_URL}?options=-csearch_path%3D{self.schema}"
        engine = make_engine(self.url)
        migrations.upgrade(engine)
        engine.dispose()

    def drop(self) -> None:
        if self.schema:
            admin = create_engine(POSTGRES_URL)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()

    def due(self, due_at: datetime) -> int:
        """How many of the seeded lessons due at `due_at` are still waiting to be sent."""
        engine = make_engine(self.url)
        with engine.connect() as conn:
            waiting = conn.scalar(
                select(func.count()).where(Subscription.next_due_at <= due_at,
                                           Subscription.state == SubscriptionState.ACTIVE)
            )  # fmt: skip
        engine.dispose()
        return int(waiting or 0)

    def states(self) -> dict[str, int]:
        """The deliveries (lessons and confirmations) by state (a deferral shows here)."""
        engine = make_engine(self.url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state"))
            found = {str(state): int(n) for state, n in rows}
        engine.dispose()
        return found

    def seed(self, count: int, course_slug: str, due_at: datetime, days: int = 7) -> float:
        """`count` active subscribers over ZONES and lessons 1..days, due at `due_at`; seconds."""
        started = time.perf_counter()
        engine = make_engine(self.url)
        chunk = 50_000
        for first in range(1, count + 1, chunk):
            ids = range(first, min(count, first + chunk - 1) + 1)
            people = [_subscriber(i) for i in ids]
            memberships = [_subscription(i, course_slug, due_at, days) for i in ids]
            if self.kind == "sqlite":
                with engine.begin() as conn:
                    conn.execute(insert(Subscriber), people)
                    conn.execute(insert(Subscription), memberships)
            else:
                _copy(engine, "subscribers", people)
                _copy(engine, "subscriptions", memberships)
        if self.kind != "sqlite":
            with engine.begin() as conn:
                for table in ("subscribers", "subscriptions"):  # ids were given: move sequences
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT max(id) FROM {table}))"))  # fmt: skip
                conn.execute(text("ANALYZE subscribers; ANALYZE subscriptions"))
        engine.dispose()
        return time.perf_counter() - started


def _subscriber(i: int) -> dict[str, Any]:
    email = f"reader{i}@example.com"
    return {"id": i, "email": email, "email_key": email, "name": f"Reader {i}", "created_at": NOW}


def _subscription(i: int, course_slug: str, due_at: datetime, days: int) -> dict[str, Any]:
    day = i % days
    return {
        "id": i, "subscriber_id": i, "course_slug": course_slug,
        "state": SubscriptionState.ACTIVE, "current_day": day, "timezone": ZONES[i % len(ZONES)],
        "send_time": None, "next_due_at": due_at, "retry_attempts": 0,
        "last_sent_at": (due_at - timedelta(days=1)) if day else None, "leased_until": None,
        "confirm_token": secrets.token_urlsafe(24), "unsubscribe_token": secrets.token_urlsafe(24),
        "manage_token": secrets.token_urlsafe(24), "created_at": NOW, "confirmed_at": NOW,
        "ended_at": None,
    }  # fmt: skip


def _naive(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, SubscriptionState):
        return value.value
    return value


def _copy(engine: Engine, table: str, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY: the fast way in for a million rows."""
    columns = list(rows[0])
    raw = engine.raw_connection()
    try:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([_naive(row[c]) for c in columns])
        raw.commit()
    finally:
        raw.close()


def median(values: Iterator[float] | list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
