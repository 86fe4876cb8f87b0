"""Dispatch throughput: N confirmed subscribers (24 time zones, all 7 lesson days), all due,
dispatch passes until none is due, into an SMTP sink in its own process.

Prints lessons/second, the sink's raw rate measured in the same run (pre-built messages over one
reused smtplib connection), their ratio (the figure that counts: absolute times vary between
machines), the sender's CPU time per lesson and its peak RSS.

    .venv/bin/python bench/dispatch.py --subscribers 20000 --db sqlite
"""

from __future__ import annotations

import argparse
import resource
import smtplib
import tempfile
import time
from pathlib import Path

from common import NOW, Database, Sink

from drip.config import Settings
from drip.emails import Recipient
from drip.models import new_token
from drip.runtime import Runtime


def raw_rate(rt: Runtime, port: int, count: int) -> float:
    """Messages/second of smtplib alone: messages built beforehand, one connection."""
    course = next(iter(rt.courses.values()))
    messages = [
        rt.renderer.render(
            course, 1 + i % course.total_days,
            Recipient(f"raw{i}@example.com", "Raw", new_token(), new_token()),
            message_id=f"<raw{i}@bench>", now=NOW,
        )
        for i in range(count)
    ]  # fmt: skip
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        started = time.perf_counter()
        for message in messages:
            smtp.sendmail(message.sender, [message.recipient], message.data)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--raw-messages", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=2, help="parallel SMTP connections")
    args = parser.parse_args()

    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.db, Path(tmp))
        try:
            settings = Settings().with_values(
                {
                    "database_url": db.url,
                    "smtp_url": sink.url,
                    "batch_size": args.batch_size,
                    "smtp_connections": args.connections,
                }
            )
            rt = Runtime(settings)
            slug = next(iter(rt.courses))
            seconds = db.seed(args.subscribers, slug, due_at=NOW)
            print(f"seeded {args.subscribers:,} subscribers on {args.db} in {seconds:.1f} s")
            raw_before = raw_rate(rt, sink.port, args.raw_messages)
            print(
                f"sending over {args.connections} SMTP connection(s), batches of {args.batch_size}"
            )

            cpu_before, started = time.process_time(), time.perf_counter()
            result = rt.dispatcher.run_pass(NOW)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
            rate = result.sent / elapsed
            raw_after = raw_rate(rt, sink.port, args.raw_messages)
            raw = (raw_before + raw_after) / 2  # the sink drifts; take it on either side
            print(
                f"sink raw rate: {raw:,.0f} messages/s ({args.raw_messages:,} pre-built, "
                f"{raw_before:,.0f} before and {raw_after:,.0f} after the dispatch)"
            )
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"dispatch: {result.sent:,} lessons in {elapsed:.1f} s = {rate:,.0f} lessons/s "
                f"(deferred {result.deferred}, bounced {result.bounced})"
            )
            print(f"ratio dispatch/raw: {rate / raw:.2f}")
            print(f"sender CPU per lesson: {cpu / max(result.sent, 1) * 1e6:,.0f} us")
            print(f"peak RSS: {peak_mb:,.0f} MB")
            rt.close()
        finally:
            taken = sink.stop()
            db.drop()
    print(f"sink took {taken:,} messages ({2 * args.raw_messages:,} raw + lessons)")


if __name__ == "__main__":
    main()
