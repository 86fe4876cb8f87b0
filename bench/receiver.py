"""Returned mail taken in per second by `drip bounces serve`: DSNs over one SMTP connection, or
several at once (smtplib, as an MX forwarding its bounces would), each read, matched to its
delivery by its VERP address and stored (a hard bounce: the subscription ends, the address is
suppressed), against a bare aiosmtpd sink (bench/smtp_sink.py) taking the same messages over
the same connections in the same run.

    .venv/bin/python bench/receiver.py --db sqlite --messages 10000
    .venv/bin/python bench/receiver.py --db postgresql --connections 4
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import NOW, ROOT, Database, Sink, free_port
from sqlalchemy import func, insert, select

from drip.bounces import verp_address
from drip.models import Delivery, DeliveryState, FeedbackEvent, Subscription, make_engine

SAMPLE = ROOT / "tests" / "samples" / "returned" / "postfix_user_unknown.eml"
SECRET = "bench-secret-key"
DOMAIN = "mail.example.org"


def message_id(i: int) -> str:
    return f"<drip.bone-health.{i}.1.bench@{DOMAIN}>"


def dsns(count: int) -> list[tuple[str, bytes]]:
    """(VERP address, DSN) for deliveries 1..count, from the Postfix sample."""
    template = SAMPLE.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    found = []
    for i in range(1, count + 1):
        verp = verp_address(i, 1, DOMAIN, SECRET)
        data = template.replace(b"bounces+42-3-zsvm675hp36oyp2s@mail.example.org", verp.encode())
        found.append((verp, data.replace(b"<drip.bone-health.42.3.a1b2c3d4e5f6@mail.example.org>",
                                         message_id(i).encode())))  # fmt: skip
    return found


def seed_deliveries(url: str, count: int) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Delivery), [
            {"subscription_id": i, "day": 1, "state": DeliveryState.SENT,
             "message_id": message_id(i), "smtp_reply": "250 ok", "attempts": 1,
             "created_at": NOW, "updated_at": NOW, "sent_at": NOW} for i in range(1, count + 1)
        ])  # fmt: skip
    engine.dispose()


def send_all(port: int, messages: list[tuple[str, bytes]], connections: int = 1) -> float:
    """Seconds to hand every message over `connections` connections at once, each taking its
    share in turn; each message must be answered 250."""

    def send(share: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            for verp, data in share:
                refused = smtp.sendmail("", [verp], data)
                assert not refused, refused

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        for done in [pool.submit(send, messages[i::connections]) for i in range(connections)]:
            done.result()
    return time.perf_counter() - started


def start_receiver(url: str, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DRIP_")},
           "DRIP_DATABASE_URL": url, "DRIP_SECRET_KEY": SECRET,
           "DRIP_CONFIG": str(folder / "absent.toml"), "DRIP_BOUNCES_DIR": str(folder / "unread"),
           "DRIP_LOG_FORMAT": "json"}  # fmt: skip
    drip = str(Path(sys.executable).parent / "drip")
    process = subprocess.Popen([drip, "bounces", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)  # the receiver is starting
    process.kill()
    raise SystemExit("drip bounces serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=1, help="SMTP connections at once")
    args = parser.parse_args()
    messages = dsns(args.messages)
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(args.db, Path(tmp))
        try:
            database.seed(args.messages, "bone-health", NOW)
            seed_deliveries(database.url, args.messages)
            sink = Sink()
            raw = send_all(sink.port, messages, args.connections)
            sink.stop()
            process, port = start_receiver(database.url, Path(tmp))
            try:
                cpu = cpu_seconds(process.pid)
                taken = send_all(port, messages, args.connections)
                cpu = cpu_seconds(process.pid) - cpu
            finally:
                process.terminate()
                process.wait(timeout=60)
            check(database.url, args.messages)
        finally:
            database.drop()
    rate, raw_rate = args.messages / taken, args.messages / raw
    print(f"{args.db}: {args.messages} DSNs over {args.connections} SMTP connection(s): "
          f"receiver {rate:,.0f} "
          f"messages/s, bare aiosmtpd sink {raw_rate:,.0f} messages/s, "
          f"ratio {rate / raw_rate:.2f}; receiver CPU {cpu / args.messages * 1e3:.2f} ms "
          f"a message")  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (Linux): less moved by a busy machine than its rate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(url: str, count: int) -> None:
    """Every bounce stored once and acted on."""
    engine = make_engine(url)
    with engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(FeedbackEvent))
        bounced = conn.scalar(select(func.count()).select_from(Subscription).where(
            Subscription.state == "bounced"))  # fmt: skip
    engine.dispose()
    assert events == count and bounced == count, (events, bounced)


if __name__ == "__main__":
    main()
