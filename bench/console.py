"""What the console's pages cost at scale: the course dashboard (funnel, trouble by lesson,
lessons due by hour), a search by address and one subscription's timeline, each read at
--subscribers active subscriptions; medians of --repeat reads, in milliseconds.

    .venv/bin/python bench/console.py --db sqlite --subscribers 100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import NOW, Database, median

from drip import console, stats
from drip.config import Settings
from drip.runtime import Runtime


def timed(read: Callable[[], Any], repeat: int) -> float:
    read()  # warm up: connections, compiled statements
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        read()
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.db, Path(tmp))
        try:
            rt = Runtime(Settings().with_values({"database_url": db.url, "outbox_dir": tmp}))
            course = next(iter(rt.courses.values()))
            seconds = db.seed(args.subscribers, course.slug, due_at=NOW + timedelta(hours=6))
            print(f"{args.db}: seeded {args.subscribers:,} subscribers in {seconds:.1f} s")
            with rt.sessions() as session:
                reads = {
                    "dashboard (funnel, by lesson, due by hour)":
                        lambda: console.funnel(session, course.slug, course.total_days, NOW),
                    "deferred and failed (latest 50)": lambda: stats.stuck(session, course.slug),
                    "search by address (a page of 200)":
                        lambda: console.subscriber_list(session, search="reader99",
                                                        limit=console.LIST_LIMIT),
                    "one subscription's timeline": lambda: console.timeline(session, 4242),
                }  # fmt: skip
                for name, read in reads.items():
                    print(f"{args.db}: {name}: {timed(read, args.repeat):.1f} ms")
            rt.close()
        finally:
            db.drop()


if __name__ == "__main__":
    main()
