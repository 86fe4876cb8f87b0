"""Scaling out: lessons/second for 1, 2 and 4 `drip tick` worker processes sharing one PostgreSQL
database, sending into an SMTP sink (its own process) that waits --delay-ms per message like a
remote relay. Each run seeds its own schema; the duplicate count (sink messages beyond one per
subscriber) must be 0.

    .venv/bin/python bench/scale.py --subscribers 2000 --delay-ms 20 --connections 4
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import NOW, Database, Sink
from sqlalchemy import create_engine, func, select

from drip.models import Delivery, DeliveryState

DRIP = str(Path(sys.executable).parent / "drip")


def run(workers: int, args: argparse.Namespace) -> tuple[float, int, int]:
    """(lessons/second, lessons recorded sent, duplicates) for `workers` processes."""
    folder = tempfile.TemporaryDirectory()
    db = Database("postgresql", Path(folder.name))
    url = db.url
    sink = Sink(args.delay_ms)
    try:
        db.seed(args.subscribers, "bone-health", due_at=NOW)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DRIP_DATABASE_URL": url,
            "DRIP_SMTP_URL": sink.url,
            "DRIP_BATCH_SIZE": str(args.batch_size),
            "DRIP_SMTP_CONNECTIONS": str(args.connections),
            "DRIP_CONFIG": "/nonexistent/drip.toml",
        }
        started = time.perf_counter()
        processes = [
            subprocess.Popen([DRIP, "tick", "--now", NOW.isoformat()], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(workers)
        ]  # fmt: skip
        codes = [p.wait() for p in processes]
        elapsed = time.perf_counter() - started
        if any(codes):
            raise SystemExit(f"a worker failed: exit codes {codes}")
        engine = create_engine(url)
        with engine.connect() as conn:
            sent = conn.scalar(
                select(func.count()).where(Delivery.state == DeliveryState.SENT)
            )  # fmt: skip
        engine.dispose()
    finally:
        taken = sink.stop()
        db.drop()
        folder.cleanup()
    return int(sent or 0) / elapsed, int(sent or 0), taken - args.subscribers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per worker")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers, sink delay {args.delay_ms:g} ms, batch "
          f"{args.batch_size}, {args.connections} SMTP connection(s) per worker, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    baseline = None
    for workers in args.workers:
        rate, sent, duplicates = run(workers, args)
        baseline = baseline or rate
        print(f"{workers} worker(s): {sent} lessons at {rate:,.0f} lessons/s "
              f"({rate / baseline:.2f}x one worker), duplicates {duplicates}")  # fmt: skip


if __name__ == "__main__":
    main()
