"""The web pages in a real uvicorn process (`drip serve`): a slow relay holds up no other
request, a huge body is refused before it is read, X-Forwarded-For counts only from a trusted
proxy, and on SQLite web writes wait for a worker in another process instead of failing."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from select import select as readable
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from drip.models import Subscription, make_engine

from conftest import T0
from fleet import reap, seed, start, start_drip, stop, worker_env

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def wait_until(condition: Callable[[], object], seconds: float = 30) -> None:
    """Poll a condition on another process or thread (not a clock the test could move)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_slow_relay_holds_up_no_other_request(database_url, smtp_server, tmp_path: Path):
    """Signups answer at once (their confirmations are queued), while the relay takes its time
    over each confirmation the service then sends."""
    process, base = start_drip("serve", database_url, smtp_server, tmp_path)
    smtp_server.stall_seconds = 2.0  # every confirmation waits this long for the relay's reply
    answered: list[tuple[str, int, int]] = []  # (what, status, messages the relay had taken)

    def signup(i: int) -> None:
        body = {"email": f"slow{i}@example.com", "course": "bone-health"}
        status = httpx.post(f"{base}/subscribe", json=body, timeout=60).status_code
        answered.append(("signup", status, len(smtp_server.messages)))

    threads = [threading.Thread(target=signup, args=(i,)) for i in range(5)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        health = httpx.get(f"{base}/healthz", timeout=60)
        answered.append(("healthz", health.status_code, len(smtp_server.messages)))
        received = smtp_server.wait_for(5, timeout=60)
    finally:
        stop(process)
    assert [a[:2] for a in answered] == [("signup", 200)] * 5 + [("healthz", 200)]
    assert max(taken for _, _, taken in answered) < 5, "an answer waited for the relay"
    assert sorted(m.envelope_recipients[0] for m in received) == [
        f"slow{i}@example.com" for i in range(5)
    ]


def answer_to(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    return received


@SQLITE_ONLY
def test_a_quarter_gigabyte_body_is_refused_before_it_is_read(
    database_url, smtp_server, tmp_path: Path
) -> None:
    process, base = start_drip("serve", database_url, smtp_server, tmp_path)
    address = (urlsplit(base).hostname or "", urlsplit(base).port or 0)
    head = b"POST /subscribe HTTP/1.1\r\nHost: drip\r\nContent-Type: application/json\r\n"
    try:
        with socket.create_connection(address) as sock:
            sock.sendall(head + b"Content-Length: 268435456\r\n\r\n{")
            declared = answer_to(sock)
        sent = 0
        with socket.create_connection(address) as sock:
            sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
            # 256 MB in 64 kB chunks, until the server answers
            while sent < 256 << 20 and not readable([sock], [], [], 0)[0]:
                sock.sendall(chunk)
                sent += 65536
            streamed = answer_to(sock)
    finally:
        stop(process)
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    assert streamed.startswith(b"HTTP/1.1 413"), streamed[:200]
    assert sent < 32 << 20, f"{sent} bytes went in before the refusal"


@SQLITE_ONLY
@pytest.mark.parametrize("trusted", [False, True])
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    database_url, smtp_server, tmp_path: Path, trusted: bool
) -> None:
    settings: dict[str, object] = {"signup_limit_per_client": 2}
    if trusted:
        settings["trusted_proxies"] = "10.0.0.1, 127.0.0.1"
    process, base = start_drip("serve", database_url, smtp_server, tmp_path, **settings)

    def signup(i: int, forwarded: str) -> int:
        body = {"email": f"p{i}@example.com", "course": "bone-health"}
        headers = {"x-forwarded-for": forwarded}
        return httpx.post(f"{base}/subscribe", json=body, headers=headers).status_code

    try:
        fresh = [signup(i, f"203.0.113.{i}") for i in range(4)]  # a new address every time
        same = [signup(10 + i, "198.51.100.7, 10.0.0.1") for i in range(3)]
    finally:
        stop(process)
    if trusted:
        assert fresh == [200] * 4, "each forwarded client has its own limit"
        assert same == [200, 200, 429], "one client behind two proxies is limited"
    else:
        assert fresh == [200, 200, 429, 429], "a forged header does not reset the limit"
        assert same == [429] * 3


def web_writes(base: str, tokens: list[tuple[str, str]], until: Callable[[], bool]) -> Counter:
    """Signups, pauses and unsubscribes (of subscriptions the tick is sending to), one after
    another until `until()`; how many answers of each status."""
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=base, timeout=120) as http:
        for i in range(0, len(tokens) - 1, 2):
            if until():
                break
            body = {"email": f"web{i}-{threading.get_ident()}@example.com", "course": "bone-health"}
            statuses[http.post("/subscribe", json=body).status_code] += 1
            pause = http.post(f"/preferences/{tokens[i][1]}", data={"action": "pause"})
            statuses[pause.status_code] += 1
            statuses[http.post(f"/unsubscribe/{tokens[i + 1][0]}").status_code] += 1
    return statuses


@SQLITE_ONLY
def test_web_writes_wait_for_a_tick_in_another_process(
    database_url, smtp_server, tmp_path: Path
) -> None:
    seed(database_url, 3000, "bone-health", T0)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        query = select(Subscription.unsubscribe_token, Subscription.manage_token)
        tokens = [(u, m) for u, m in conn.execute(query.order_by(Subscription.id.desc()))]
    engine.dispose()
    limits = {"signup_limit_per_client": 100_000, "signup_limit_per_address": 100_000}
    process, base = start_drip("serve", database_url, smtp_server, tmp_path, **limits)
    env = worker_env(database_url, smtp_server.url, tmp_path, batch_size=10)
    tick = start(["tick", "--now", T0.isoformat()], env, tmp_path / "tick.log")
    results: list[Counter] = []
    try:
        threads = [
            threading.Thread(target=lambda part=part: results.append(
                web_writes(base, tokens[part::3], lambda: tick.poll() is not None)))
            for part in range(3)
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        ticked = reap([tick])
    finally:
        output = stop(process)
    assert ticked == [0], (tmp_path / "tick.log").read_text()[-2000:] + output[-5000:]
    statuses = sum(results, Counter())
    assert sum(statuses.values()) >= 30, statuses
    assert set(statuses) == {200}, (statuses, output[-3000:])


@SQLITE_ONLY
def test_a_production_app_settles_its_heap_before_serving(database_url, tmp_path: Path):
    """`uvicorn --factory drip.web:app_from_env` gets an app whose process has frozen what it
    made at start, so full garbage collections no longer walk it under load."""
    env = worker_env(database_url, "smtp://127.0.0.1:2525", tmp_path)
    script = ("import gc; from drip.web import app_from_env; before = gc.get_freeze_count(); "
              "app_from_env(); print(before, gc.get_freeze_count())")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    before, after = (int(n) for n in result.stdout.split())
    assert before == 0 and after > 50_000, result.stdout
