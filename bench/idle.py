"""The cost of a dispatch pass when nothing is due, at 10,000 and at 1,000,000 subscribers; and
with --deliveries, on PostgreSQL at that many deliveries (10 million by default) beside
1,000,000 subscriptions, seeded with generate_series in SQL, with the claim query's plan, the
tables' and indexes' sizes and the WAL one dispatched lesson writes.

A pass asks the (state, next_due_at) index for due rows, so it should not grow with the table:
the ratio of the two medians is the figure.

    .venv/bin/python bench/idle.py --db postgresql
    .venv/bin/python bench/idle.py --db postgresql --deliveries 10000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import NOW, Database, median
from sqlalchemy import Engine, text

from drip.config import Settings
from drip.runtime import Runtime
from drip.scheduler.queries import ALL_KINDS, due


def idle_pass_ms(kind: str, count: int, passes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(kind, Path(tmp))
        try:
            rt = Runtime(Settings().with_values({"database_url": db.url, "outbox_dir": tmp}))
            seconds = db.seed(count, next(iter(rt.courses)), due_at=NOW + timedelta(hours=6))
            print(f"{kind}: seeded {count:,} subscribers in {seconds:.1f} s")
            median_ms = timed_passes(rt, passes)
            rt.close()
            return median_ms
        finally:
            db.drop()


def timed_passes(rt: Runtime, passes: int) -> float:
    """The median of `passes` idle passes, after one to warm up."""
    rt.dispatcher.run_pass(NOW)  # warm up: connections, compiled statements
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        result = rt.dispatcher.run_pass(NOW)
        times.append((time.perf_counter() - started) * 1000)
        assert result.total == 0
    return median(times)


SEED_SQL = [
    "SET session_replication_role = replica",  # no foreign-key trigger per row while seeding
    "INSERT INTO subscribers (id, email, email_key, name, created_at) "
    "SELECT i, 'reader' || i || '@example.com', 'reader' || i || '@example.com', '', :t "
    "FROM generate_series(1, :subs) AS i",
    "INSERT INTO subscriptions (id, subscriber_id, course_slug, state, current_day, timezone, "
    "next_due_at, retry_attempts, soft_bounces, confirm_token, unsubscribe_token, manage_token, "
    "created_at) SELECT i, i, :slug, 'active', 1 + i % 6, 'Europe/Paris', :due, 0, 0, "
    "'c' || i, 'u' || i, 'm' || i, :t FROM generate_series(1, :subs) AS i",
    "INSERT INTO deliveries (subscription_id, day, state, message_id, smtp_reply, attempts, "
    "created_at, updated_at, sent_at) SELECT 1 + i % :subs, 1 + i / :subs, 'sent', "
    "'<drip.' || i || '@example.com>', '250 2.0.0 Ok: queued as ' || i, 1, :t, :t, :t "
    "FROM generate_series(0, :deliveries - 1) AS i",
    "SET session_replication_role = DEFAULT",
    "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :subs)",
    "SELECT setval(pg_get_serial_sequence('subscriptions', 'id'), :subs)",
]


def seed_in_sql(engine: Engine, subscriptions: int, deliveries: int, slug: str) -> float:
    started = time.perf_counter()
    due = (NOW + timedelta(hours=6)).replace(tzinfo=None)
    values = {"subs": subscriptions, "deliveries": deliveries, "slug": slug,
              "t": NOW.replace(tzinfo=None), "due": due}  # fmt: skip
    with engine.begin() as conn:
        for statement in SEED_SQL:
            conn.execute(text(statement), values)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE subscribers, subscriptions, deliveries"))
    return time.perf_counter() - started


def sizes(engine: Engine) -> None:
    """Each table's heap and index sizes, and bytes per row."""
    with engine.connect() as conn:
        for table in ("subscriptions", "deliveries"):
            rows = conn.scalar(text(f"SELECT count(*) FROM {table}"))
            heap, indexes = conn.execute(text(
                f"SELECT pg_table_size('{table}'), pg_indexes_size('{table}')")).one()  # fmt: skip
            print(f"postgresql: {table}: {rows:,} rows, table {heap / 2**20:,.0f} MB "
                  f"({heap / rows:.0f} B/row), indexes {indexes / 2**20:,.0f} MB "
                  f"({indexes / rows:.0f} B/row)")  # fmt: skip


def wal_per_lesson(rt: Runtime, engine: Engine, count: int) -> None:
    """Make `count` subscriptions due and send them to the outbox; the WAL written per lesson
    (the server's whole WAL: other work on the same server counts too)."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE subscriptions SET next_due_at = :now WHERE id <= :n"),
                     {"now": NOW.replace(tzinfo=None), "n": count})  # fmt: skip
        before = conn.scalar(text("SELECT pg_current_wal_lsn()"))
    started = time.perf_counter()
    result = rt.dispatcher.run_pass(NOW)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        wal = conn.scalar(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :b)"), {"b": before})
    print(
        f"postgresql: {result.sent:,} lessons dispatched (to the outbox) in {seconds:.1f} s: "
        f"{float(wal) / max(1, result.sent):,.0f} bytes of WAL per lesson"
    )


def at_scale(subscriptions: int, deliveries: int, passes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database("postgresql", Path(tmp))
        try:
            rt = Runtime(Settings().with_values({"database_url": db.url, "outbox_dir": tmp}))
            seconds = seed_in_sql(rt.engine, subscriptions, deliveries, next(iter(rt.courses)))
            print(f"postgresql: seeded {subscriptions:,} subscriptions and {deliveries:,} "
                  f"deliveries in SQL in {seconds:.1f} s")  # fmt: skip
            sizes(rt.engine)
            print(f"postgresql: idle pass at {deliveries:,} deliveries: "
                  f"{timed_passes(rt, passes):.2f} ms (median of {passes})")  # fmt: skip
            query = due(NOW, 200, list(rt.courses), ALL_KINDS)
            compiled = query.compile(rt.engine, compile_kwargs={"literal_binds": True})
            with rt.engine.connect() as conn:
                plan = conn.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}")).scalars()
                print("postgresql: the claim query's plan:\n  " + "\n  ".join(plan))
            wal_per_lesson(rt, rt.engine, 10_000)
            rt.close()
        finally:
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--deliveries", type=int, help="PostgreSQL at this many deliveries")
    args = parser.parse_args()
    if args.deliveries:
        at_scale(args.large, args.deliveries, args.passes)
        return
    small = idle_pass_ms(args.db, args.small, args.passes)
    print(f"{args.db}: idle pass at {args.small:,} subscribers: {small:.2f} ms (median)")
    large = idle_pass_ms(args.db, args.large, args.passes)
    print(f"{args.db}: idle pass at {args.large:,} subscribers: {large:.2f} ms (median)")
    print(f"{args.db}: ratio {args.large:,}/{args.small:,}: {large / small:.2f}")


if __name__ == "__main__":
    main()
