"""The machine-wide send rate and the parallel SMTP connections."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from drip.emails import Outgoing
from drip.ratelimit import RateLimiter
from drip.send import ParallelTransport, SendStatus, SMTPTransport, transport_from_url


class FakeTime:
    """A clock that only moves when the limiter sleeps: the waits are then exact."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_bucket_allows_a_burst_then_the_rate(tmp_path: Path) -> None:
    fake = FakeTime()
    limiter = RateLimiter(5, tmp_path / "bucket", clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        limiter.acquire()
    assert fake.slept == [], "the first `burst` tokens must not wait"
    for _ in range(10):
        limiter.acquire()
    assert abs(fake.now - 1000.0 - 10 / 5) < 1e-6, "10 more tokens at 5/s take 2 s"


def test_two_limiters_on_one_file_share_the_bucket(tmp_path: Path) -> None:
    fake = FakeTime()
    first, second = (
        RateLimiter(2, tmp_path / "bucket", clock=fake.clock, sleep=fake.sleep) for _ in range(2)
    )
    for _ in range(3):
        first.acquire()
        second.acquire()
    assert abs(fake.now - 1000.0 - (6 - 2) / 2) < 1e-6


def _take(path: str, count: int) -> None:
    limiter = RateLimiter(50, Path(path))
    for _ in range(count):
        limiter.acquire()


def test_processes_together_keep_to_the_rate(tmp_path: Path) -> None:
    """Four processes take 80 tokens at 50/s from a bucket of 50: the last 30 cannot come
    sooner than 0.6 s after the first, whatever the machine (a lower bound, never flaky)."""
    path = str(tmp_path / "bucket")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_take, args=(path, 20)) for _ in range(4)]
    started = time.monotonic()
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert time.monotonic() - started >= 0.6 - 0.02


def messages(count: int) -> list[Outgoing]:
    return [
        Outgoing(
            sender="lessons@example.com",
            recipient=f"reader{i}@example.com",
            message_id=f"<m{i}@example.com>",
            data=(f"Subject: {i}\r\nMessage-ID: <m{i}@example.com>\r\n\r\nbody {i}\r\n").encode(),
        )
        for i in range(count)
    ]


def test_parallel_connections_share_a_batch_and_keep_its_order(smtp_server, tmp_path) -> None:
    smtp_server.reply_rcpt["reader4@example.com"] = "452 4.2.2 Mailbox full"
    transport = transport_from_url(smtp_server.url, tmp_path, connections=3)
    assert isinstance(transport, ParallelTransport)
    with transport:
        results = transport.send_messages(messages(20))
    assert smtp_server.connections == 3
    assert [r.status for r in results] == [
        SendStatus.TEMPORARY if i == 4 else SendStatus.SENT for i in range(20)
    ]
    assert sorted(str(m.message["Subject"]) for m in smtp_server.messages) == sorted(
        str(i) for i in range(20) if i != 4
    )
    assert all(isinstance(t, SMTPTransport) and t.connection is None for t in transport.transports)


def test_a_dead_server_defers_every_message_of_every_connection(smtp_server, tmp_path) -> None:
    smtp_server.stop()
    with transport_from_url(smtp_server.url, tmp_path, connections=4) as transport:
        results = transport.send_messages(messages(9))
    assert [r.status for r in results] == [SendStatus.TEMPORARY] * 9
    assert all("refused" in r.reply for r in results)
