"""The cost of a dispatch pass when nothing is due, at 10,000 and at 1,000,000 subscribers.

A pass asks the (state, next_due_at) index for due rows, so it should not grow with the table:
the ratio of the two medians is the figure.

    .venv/bin/python bench/idle.py --db postgresql
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import NOW, Database, median

from drip.config import Settings
from drip.runtime import Runtime


def idle_pass_ms(kind: str, count: int, passes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(kind, Path(tmp))
        try:
            rt = Runtime(Settings().with_values({"database_url": db.url, "outbox_dir": tmp}))
            seconds = db.seed(count, next(iter(rt.courses)), due_at=NOW + timedelta(hours=6))
            print(f"{kind}: seeded {count:,} subscribers in {seconds:.1f} s")
            rt.dispatcher.run_pass(NOW)  # warm up: connections, compiled statements
            times = []
            for _ in range(passes):
                started = time.perf_counter()
                result = rt.dispatcher.run_pass(NOW)
                times.append((time.perf_counter() - started) * 1000)
                assert result.total == 0
            rt.close()
            return median(times)
        finally:
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=200)
    args = parser.parse_args()
    small = idle_pass_ms(args.db, args.small, args.passes)
    print(f"{args.db}: idle pass at {args.small:,} subscribers: {small:.2f} ms (median)")
    large = idle_pass_ms(args.db, args.large, args.passes)
    print(f"{args.db}: idle pass at {args.large:,} subscribers: {large:.2f} ms (median)")
    print(f"{args.db}: ratio {args.large:,}/{args.small:,}: {large / small:.2f}")


if __name__ == "__main__":
    main()
