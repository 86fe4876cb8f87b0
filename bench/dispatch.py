"""Dispatch throughput: N confirmed subscribers, all due, one dispatch pass into an SMTP sink
running in its own process. Prints lessons/second, the sink's raw rate (pre-built messages over
one reused smtplib connection) measured in the same run, their ratio, peak RSS and the sender's
CPU time per lesson.

    .venv/bin/python bench/dispatch.py --subscribers 20000 --db sqlite
"""

from __future__ import annotations

import argparse
import resource
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

import migrations  # noqa: E402
from config import Settings  # noqa: E402
from emails import Recipient  # noqa: E402
from models import Subscriber, Subscription, SubscriptionState, make_engine, new_token  # noqa: E402
from runtime import Runtime  # noqa: E402

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(delay_ms: float = 0.0) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "smtp_sink.py"), "--port", str(port),
         "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sink.stdout is not None
    line = sink.stdout.readline()
    if not line.startswith("ready"):
        raise SystemExit(f"the SMTP sink did not start: {line!r}")
    return sink, port


def stop_sink(sink: subprocess.Popen[str]) -> int:
    sink.terminate()
    out, _ = sink.communicate(timeout=30)
    return int(out.split()[-1]) if out.strip() else -1


def database(kind: str, folder: Path) -> tuple[str, str | None]:
    """A fresh database URL, and the PostgreSQL schema to drop afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}", None
    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    schema = f"drip_bench_{uuid.uuid4().hex[:8]}"
    with create_engine(base).begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{base}?options=-csearch_path%3D{schema}", schema


def seed(url: str, count: int, course_slug: str) -> float:
    """`count` active subscribers, all due at NOW, inserted in bulk; returns seconds taken."""
    started = time.perf_counter()
    engine = make_engine(url)
    migrations.upgrade(engine)
    chunk = 10_000
    with engine.begin() as conn:
        for first in range(0, count, chunk):
            ids = range(first + 1, min(count, first + chunk) + 1)
            conn.execute(
                insert(Subscriber),
                [{"id": i, "email": f"reader{i}@example.com", "email_key": f"reader{i}@example.com",
                  "name": f"Reader {i}", "created_at": NOW} for i in ids],
            )  # fmt: skip
            conn.execute(
                insert(Subscription),
                [{"id": i, "subscriber_id": i, "course_slug": course_slug,
                  "state": SubscriptionState.ACTIVE, "current_day": 0,
                  "timezone": ZONES[i % len(ZONES)], "next_due_at": NOW, "retry_attempts": 0,
                  "confirm_token": new_token(), "unsubscribe_token": new_token(),
                  "manage_token": new_token(), "created_at": NOW, "confirmed_at": NOW}
                 for i in ids],
            )  # fmt: skip
    engine.dispose()
    return time.perf_counter() - started


def raw_rate(rt: Runtime, port: int, count: int) -> float:
    """Messages/second of smtplib alone: messages built beforehand, one connection."""
    course = next(iter(rt.courses.values()))
    messages = [
        rt.renderer.render(
            course, 1 + i % course.total_days,
            Recipient(f"raw{i}@example.com", "Raw", new_token(), new_token()),
            message_id=f"<raw{i}@bench>", now=NOW,
        ).data
        for i in range(count)
    ]  # fmt: skip
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        started = time.perf_counter()
        for i, message in enumerate(messages):
            smtp.sendmail(course.sender_email, [f"raw{i}@example.com"], message)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--raw-messages", type=int, default=3_000)
    args = parser.parse_args()

    sink, port = start_sink()
    with tempfile.TemporaryDirectory() as tmp:
        url, schema = database(args.db, Path(tmp))
        try:
            settings = Settings().with_values({
                "database_url": url, "smtp_url": f"smtp://127.0.0.1:{port}",
                "batch_size": args.batch_size,
            })  # fmt: skip
            rt = Runtime(settings)
            seconds = seed(url, args.subscribers, next(iter(rt.courses)))
            print(f"seeded {args.subscribers} subscribers on {args.db} in {seconds:.1f} s")
            raw = raw_rate(rt, port, args.raw_messages)
            print(f"sink raw rate: {raw:,.0f} messages/s ({args.raw_messages} pre-built, smtplib)")

            cpu_before, started = time.process_time(), time.perf_counter()
            result = rt.dispatcher.run_pass(NOW)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
            rate = result.sent / elapsed
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"dispatch: {result.sent} lessons in {elapsed:.1f} s = {rate:,.0f} lessons/s "
                  f"(deferred {result.deferred}, bounced {result.bounced})")  # fmt: skip
            print(f"ratio dispatch/raw: {rate / raw:.2f}")
            print(f"sender CPU per lesson: {cpu / max(result.sent, 1) * 1e6:,.0f} us")
            print(f"peak RSS: {peak_mb:,.0f} MB")
            rt.engine.dispose()
        finally:
            taken = stop_sink(sink)
            print(f"sink took {taken} messages")
            if schema:
                base = url.split("?")[0]
                with create_engine(base).begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
