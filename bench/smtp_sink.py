"""An SMTP server that accepts and discards every message, for benchmarks: run it in its own
process so its CPU is not the sender's. `--delay-ms` makes each DATA answer wait, like a remote
relay; `--record FILE` writes each message's arrival (seconds since the epoch) and recipient
domain to FILE when stopped. Prints 'ready <port>' once listening, and the number of messages
taken when stopped."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.count = 0
        self.arrivals: list[tuple[float, str]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        self.arrivals.append((time.time(), envelope.rcpt_tos[0].rpartition("@")[2]))
        return "250 2.0.0 Ok: discarded"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--record", help="write arrival times and domains here when stopped")
    args = parser.parse_args()
    sink = Sink(args.delay_ms / 1000)
    controller = Controller(sink, hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"ready {args.port}", flush=True)
    stop.wait()
    controller.stop()
    if args.record:
        with open(args.record, "w", encoding="utf-8") as out:
            out.writelines(f"{at:.6f} {domain}\n" for at, domain in sink.arrivals)
    print(f"taken {sink.count}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
