"""POST /subscribe under load while a dispatch pass is sending, next to a bare endpoint.

For SQLite with one uvicorn worker and PostgreSQL with one and four, in one run: a `drip run
--no-web` worker sends a large backlog to an SMTP sink; wrk (50 connections) asks the bare
endpoint of the same server, then posts signups (unique addresses), both while the pass is
sending (like with like: the table says whether it still was at the end); a probe meanwhile
times GET /healthz. Prints requests/s, p50/p99, errors, and the ratio to the bare endpoint.
Then `drip run` alone against a relay that takes 0.5 s a message, people signing up during
the pass, and the /healthz probe's p99.
Needs wrk (Debian: apt-get install wrk; `make bench` installs it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import NOW, ROOT, Database, Sink, free_port

DRIP = str(Path(sys.executable).parent / "drip")
SETUPS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 4))
SIGNUP_SCRIPT = """
local n = 0
function setup(thread) thread:set("id", tostring(math.random(1, 1e9))) end
function request()
  n = n + 1
  local body = '{"email": "w' .. id .. '-' .. n .. '@example.org", "course": "bone-health"}'
  return wrk.format("POST", "/subscribe", {["Content-Type"] = "application/json"}, body)
end
"""


def wrk(url: str, seconds: int, script: Path | None = None) -> dict[str, float]:
    """wrk's figures: requests/s, p50 and p99 in ms, and errors (socket errors and non-2xx)."""
    args = ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(args + (["-s", str(script)] if script else []), capture_output=True,
                         text=True, check=True).stdout  # fmt: skip

    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if found is None:
            raise SystemExit(f"wrk said nothing of the {label}th percentile:\n{out}")
        return float(found[1]) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[found[2]]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rate": rate, "p50": latency("50"), "p99": latency("99"),
            "errors": errors + (int(non2xx.group(1)) if non2xx else 0)}  # fmt: skip


class Probe(threading.Thread):
    """GET /healthz ten times a second; its latencies in ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.failures = url, threading.Event(), 0
        self.times: list[float] = []

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.wait(0.1):
                started = time.perf_counter()
                try:
                    client.get(self.url)
                except httpx.TransportError:
                    self.failures += 1
                self.times.append((time.perf_counter() - started) * 1000)

    def p99(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else -1


def run(kind: str, workers: int, backlog: int, seconds: int, folder: Path) -> str:
    db = Database(kind, folder)
    db.seed(backlog, "bone-health", NOW)
    sink, port = Sink(delay_ms=1), free_port()
    env = {**os.environ, "DRIP_DATABASE_URL": db.url, "DRIP_SMTP_URL": sink.url,
           "DRIP_BASE_URL": f"http://127.0.0.1:{port}", "DRIP_OUTBOX_DIR": str(folder / "out"),
           "DRIP_SIGNUP_LIMIT_PER_CLIENT": "100000000", "DRIP_TICK_SECONDS": "1",
           "DRIP_CONFIG": str(folder / "absent.toml")}  # fmt: skip
    quiet = subprocess.DEVNULL
    worker = subprocess.Popen([DRIP, "run", "--no-web"], stdout=quiet, stderr=quiet, env=env)
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "web_app:make_app", "--app-dir",
         str(ROOT / "bench"), "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log"], stdout=quiet, stderr=quiet, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/healthz")
        script = folder / "signup.lua"
        script.write_text(SIGNUP_SCRIPT)
        bare = wrk(base + "/bare", seconds)
        probe = Probe(base + "/healthz")
        probe.start()
        drip = wrk(base + "/subscribe", seconds, script)
        probe.stop.set()
        left = db.due(NOW)
        sending = f"yes, {left:,} due" if left else "no"
    finally:
        for process in (web, worker):
            process.terminate()
            process.wait(timeout=60)
        sent = sink.stop()
        db.drop()
    label = f"{kind}, {workers} worker{'s' if workers > 1 else ''}"
    return (f"| {label} | {drip['rate']:,.0f} | {drip['p50']:.0f} | {drip['p99']:.0f} | "
            f"{drip['errors']:.0f} | {bare['rate']:,.0f} | {bare['p99']:.0f} | "
            f"{drip['rate'] / bare['rate']:.2f} | {probe.p99():.0f} | {sent:,} | "
            f"{sending} |")  # fmt: skip


def slow_relay(kind: str, folder: Path, signups: int = 20, lessons: int = 40) -> str:
    """`drip run` (web and scheduler in one process) against a relay that takes 0.5 s a
    message, while `signups` people sign up during the pass: /healthz meanwhile."""
    db = Database(kind, folder)
    db.seed(lessons, "bone-health", NOW)
    sink, port = Sink(delay_ms=500), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DRIP_DATABASE_URL": db.url, "DRIP_SMTP_URL": sink.url,
           "DRIP_BASE_URL": base, "DRIP_TICK_SECONDS": "1",
           "DRIP_CONFIG": str(folder / "absent.toml")}  # fmt: skip
    quiet = subprocess.DEVNULL
    service = subprocess.Popen([DRIP, "run", "--port", str(port)], stdout=quiet, stderr=quiet,
                               env=env)  # fmt: skip
    try:
        _wait(base + "/healthz")
        probe = Probe(base + "/healthz")
        probe.start()
        with httpx.Client(timeout=30) as client:
            for i in range(signups):
                time.sleep(0.5)  # one signup every half second, while the pass sends
                body = {"email": f"slow{i}@example.org", "course": "bone-health"}
                client.post(base + "/subscribe", json=body).raise_for_status()
        probe.stop.set()
        deadline = time.monotonic() + 120  # the service is stopped once it has sent them all
        while db.states().get("sent", 0) < lessons + signups and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        service.terminate()
        service.wait(timeout=120)
        sent = sink.stop()
        db.drop()
    return (f"| {kind} | {signups} | {len(probe.times)} | {probe.p99():.0f} | "
            f"{max(probe.times):.0f} | {probe.failures} | {sent} |")  # fmt: skip


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # waiting for the server processes to listen
    raise SystemExit(f"the server did not answer at {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=60_000, help="lessons due meanwhile")
    parser.add_argument("--only", choices=[f"{k}-{w}" for k, w in SETUPS],
                        help="one set-up only, and not the slow relay")  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/web.py needs wrk: apt-get install wrk")
    print(
        "| database, uvicorn | POST /subscribe req/s | p50 ms | p99 ms | errors | bare req/s "
        "| bare p99 ms | ratio | /healthz p99 ms | lessons sent meanwhile | still sending |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for kind, workers in SETUPS:
            if args.only not in (None, f"{kind}-{workers}"):
                continue
            sub = Path(folder) / f"{kind}-{workers}"
            sub.mkdir()
            print(run(kind, workers, args.backlog, args.seconds, sub), flush=True)
        if args.only:
            return
        print("\n| drip run, relay 0.5 s a message | signups | /healthz probes | p99 ms | max ms "
              "| failed | messages the relay took |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for kind in ("sqlite", "postgresql"):
            sub = Path(folder) / f"slow-{kind}"
            sub.mkdir()
            print(slow_relay(kind, sub), flush=True)


if __name__ == "__main__":
    main()
