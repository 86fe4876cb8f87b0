"""The signup limits in the database: two `drip serve` processes on one database (two web
machines) share them, per client address and per recipient, while a worker sends."""

from __future__ import annotations

from pathlib import Path

import httpx

from conftest import T0
from fleet import reap, seed, start, start_drip, stop, worker_env


def test_two_web_processes_share_the_signup_limits(database_url, smtp_server, tmp_path: Path):
    seed(database_url, 200, "bone-health", T0)
    env = worker_env(database_url, smtp_server.url, tmp_path, batch_size=20)
    worker = start(["tick", "--now", T0.isoformat()], env, tmp_path / "worker.log")
    limits = {"signup_limit_per_client": 3, "signup_limit_per_address": 2}
    servers = [start_drip("serve", database_url, smtp_server, tmp_path, **limits)
               for _ in range(2)]  # fmt: skip

    def signup(n: int, email: str) -> int:
        body = {"email": email, "course": "bone-health"}
        return httpx.post(f"{servers[n % 2][1]}/subscribe", json=body, timeout=60).status_code

    try:
        per_client = [signup(n, f"p{n}@example.com") for n in range(5)]
    finally:
        for process, _ in servers:
            stop(process)
    assert per_client == [200, 200, 200, 429, 429], "one client, two servers, one limit"
    assert reap([worker]) == [0]


def test_one_recipient_is_limited_across_web_processes(database_url, smtp_server, tmp_path):
    limits = {"signup_limit_per_client": 100, "signup_limit_per_address": 2}
    servers = [start_drip("serve", database_url, smtp_server, tmp_path, **limits)
               for _ in range(2)]  # fmt: skip
    body = {"email": "same@example.com", "course": "bone-health"}
    try:
        answers = [httpx.post(f"{servers[n % 2][1]}/subscribe", json=body, timeout=60).status_code
                   for n in range(4)]  # fmt: skip
    finally:
        for process, _ in servers:
            stop(process)
    assert answers == [200, 200, 429, 429]
