"""The claim query while sending is capped (round robin across time zones, scheduler/fair.py)
against the plain earliest-due claim, with many lessons due at once over 24 zones: the median
time of each (locked in a transaction, then rolled back) and their ratios, for the fair claim
that ranks every due row and (PostgreSQL) the one that ranks each zone's first rows only.

    .venv/bin/python bench/fair.py [--db postgresql|sqlite] [--due 100000] [--limit 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import NOW, ZONES, Database, median
from sqlalchemy import Engine

from drip.models import make_engine
from drip.scheduler.queries import ALL_KINDS, due

COURSE = "bone-health"


def claim_ms(
    engine: Engine, limit: int, fair: bool, runs: int, per_zone: bool = False
) -> tuple[float, int]:
    """The median of `runs` claims (after one to warm up), and the rows the last one locked."""
    statement = due(NOW + timedelta(minutes=1), limit, [COURSE], ALL_KINDS, fair, per_zone)
    times, rows = [], 0
    for _ in range(runs + 1):
        with engine.connect() as conn:
            started = time.perf_counter()
            rows = len(conn.execute(statement).all())
            times.append((time.perf_counter() - started) * 1000)
            conn.rollback()
    return median(times[1:]), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.db, Path(tmp))
        try:
            seconds = db.seed(args.due, COURSE, due_at=NOW)
            print(f"{args.db}: seeded {args.due:,} due lessons over {len(ZONES)} zones in "
                  f"{seconds:.1f} s; claims of {args.limit}")  # fmt: skip
            engine = make_engine(db.url)
            plain, plain_rows = claim_ms(engine, args.limit, False, args.runs)
            every, every_rows = claim_ms(engine, args.limit, True, args.runs)
            zones = claim_ms(engine, args.limit, True, args.runs, per_zone=True) \
                if args.db == "postgresql" else (0.0, 0)  # fmt: skip
            engine.dispose()
        finally:
            db.drop()
    print(f"  plain claim (earliest due first):       {plain:7.1f} ms, {plain_rows} rows")
    print(f"  fair claim, every due row ranked:       {every:7.1f} ms, {every_rows} rows "
          f"({every / plain:.2f} x plain)")  # fmt: skip
    if args.db == "postgresql":
        ms, rows = zones
        print(f"  fair claim, each zone's first rows only: {ms:6.1f} ms, {rows} rows "
              f"({ms / plain:.2f} x plain, {ms / every:.2f} x every row ranked)")  # fmt: skip


if __name__ == "__main__":
    main()
