"""Returned messages read per second by drip.bounces.parse_returned, without a database.

Cycles through the delivery status notifications among tests/samples/returned (the Postfix,
Exchange, Gmail and RFC 3464 shapes), then through every sample (Exim, qmail and other texts,
complaints, messages that are no bounce), and prints the rate of each.

    .venv/bin/python bench/returned.py
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from drip.bounces import parse_returned

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "samples" / "returned"
SECRET = "sample-secret"


def rate(messages: list[bytes], count: int) -> tuple[float, float, int]:
    """Messages per second of wall time and of this process's CPU time (the machine may be
    shared), over `count` parses, and how many events they gave."""
    events = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for data in itertools.islice(itertools.cycle(messages), count):
        events += len(parse_returned(data, SECRET))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, count / cpu, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    samples = {path.name: path.read_bytes() for path in sorted(SAMPLES.glob("*.eml"))}
    dsns = [data for data in samples.values() if b"report-type=delivery-status" in data]
    for label, messages in (("DSNs", dsns), ("all samples", list(samples.values()))):
        per_second, per_cpu_second, events = rate(messages, args.messages)
        print(
            f"{label}: {args.messages} messages ({len(messages)} kinds), {events} events, "
            f"{per_second:,.0f} messages/s ({per_cpu_second:,.0f} per CPU second)"
        )


if __name__ == "__main__":
    main()
