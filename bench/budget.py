"""One sending budget for several machines: 6 `drip tick` workers in 3 groups that stand for 3
machines (each group its own HOSTNAME and application_name in pg_stat_activity, each process
its own connection pool), one PostgreSQL, an SMTP sink that records when each message arrives,
and DRIP_SEND_RATE=300 for the one relay.

Prints the aggregate rate over the budget in every 10-second window (goal 0.95 to 1.02) and
the time the due lessons take to drain (goal at most 1.1 x lessons / rate). Then the same
with a per-domain budget (DRIP_DOMAIN_RATES) of half the rate for the domain half the
subscribers are at.

    .venv/bin/python bench/budget.py [--lessons 60000] [--rate 300] [--only relay|domain]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import NOW, Database, Sink
from sqlalchemy import text

from drip.models import make_engine

DRIP = str(Path(sys.executable).parent / "drip")
MACHINES, PER_MACHINE, WINDOW = 3, 2, 10.0
DOMAIN = "example.com"  # reader<i>@example.com; the even ones move to other.example


def workers(db: Database, sink: Sink, folder: Path, settings: dict[str, str]) -> list[int]:
    """Start the 6 workers (one pass each, until nothing is due) and wait for them."""
    processes = []
    for machine in range(MACHINES):
        name = f"machine-{'abc'[machine]}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": name,
            "DRIP_DATABASE_URL": f"{db.url}&application_name=drip-{name}",
            "DRIP_SMTP_URL": sink.url, "DRIP_CONFIG": str(folder / "absent.toml"),
            "DRIP_OUTBOX_DIR": str(folder / "outbox"), "DRIP_BATCH_SIZE": "200",
            **settings,
        }  # fmt: skip
        for n in range(PER_MACHINE):
            log = (folder / f"{name}-{n}.log").open("wb")
            processes.append(subprocess.Popen([DRIP, "tick"], env=env, stdout=log,
                                              stderr=subprocess.STDOUT))  # fmt: skip
    return [process.wait() for process in processes]


def split_domains(db: Database) -> None:
    """Half the subscribers (the even ids) move to another domain."""
    engine = make_engine(db.url)
    with engine.begin() as conn:
        moved = "'reader' || id || '@other.example'"
        conn.execute(text(f"UPDATE subscribers SET email = {moved}, email_key = {moved} "
                          "WHERE id % 2 = 0"))  # fmt: skip
    engine.dispose()


def report(arrivals: list[tuple[float, str]], started: float, rate: float,
           domain_rate: float | None, lessons: int) -> None:  # fmt: skip
    """Per 10-second window from the first arrival: the rate over the budget (and the budgeted
    domain's over its own); then the drain time against its goal."""
    first = arrivals[0][0]
    windows: dict[int, Counter[str]] = {}
    for at, domain in arrivals:
        windows.setdefault(int((at - first) // WINDOW), Counter())[domain] += 1
    last = max(windows)
    ratios = []
    for index in range(last + 1):
        counts = windows.get(index, Counter())
        total = sum(counts.values()) / WINDOW
        line = f"  {index * WINDOW:5.0f}-{(index + 1) * WINDOW:3.0f} s: {total:6.1f}/s, " \
               f"{total / rate:.3f} x budget"  # fmt: skip
        if domain_rate:
            line += f"; {DOMAIN} {counts[DOMAIN] / WINDOW:6.1f}/s, " \
                    f"{counts[DOMAIN] / WINDOW / domain_rate:.3f} x its budget"  # fmt: skip
        if index == last:
            line += " (the last, partial window)"
        else:
            ratios.append(total / rate)
        print(line)
    drain, startup = arrivals[-1][0] - first, first - started
    goal = 1.1 * lessons / rate
    if ratios:
        print(f"full windows: {min(ratios):.3f} to {max(ratios):.3f} x budget (goal 0.95-1.02)")
    print(
        f"drained {len(arrivals):,} lessons in {drain:.1f} s from the first arrival "
        f"({drain / (lessons / rate):.3f} x lessons/rate; goal <= {goal:.0f} s); "
        f"{drain + startup:.1f} s from the workers' start ({startup:.1f} s of it starting "
        f"{MACHINES * PER_MACHINE} Python processes)"
    )


def scenario(name: str, lessons: int, rate: float, per_domain: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        record = folder / "arrivals.txt"
        sink = Sink(record=record)
        db = Database("postgresql", folder)
        try:
            seconds = db.seed(lessons, "bone-health", due_at=NOW)
            settings = {"DRIP_SEND_RATE": str(rate)}
            domain_rate = None
            if per_domain:
                split_domains(db)
                domain_rate = rate / 2
                settings["DRIP_DOMAIN_RATES"] = f"{DOMAIN}={domain_rate}"
            print(
                f"{name}: seeded {lessons:,} due lessons in {seconds:.1f} s; "
                f"{MACHINES} machines x {PER_MACHINE} workers, budget {rate:g}/s"
                + (f", {DOMAIN} (half the subscribers) {domain_rate:g}/s" if per_domain else "")
            )
            started = time.time()
            codes = workers(db, sink, folder, settings)
            taken = sink.stop()
            arrivals = [(float(at), domain) for at, domain in
                        (line.split() for line in record.read_text().splitlines())]  # fmt: skip
            print(
                f"{name}: workers exited {codes}; the sink took {taken:,}; deliveries {db.states()}"
            )
            report(sorted(arrivals), started, rate, domain_rate, lessons)
        finally:
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--only", choices=("relay", "domain"))
    args = parser.parse_args()
    if args.only != "domain":
        scenario("relay budget", args.lessons, args.rate, per_domain=False)
    if args.only != "relay":
        scenario("with a domain budget", args.lessons, args.rate, per_domain=True)


if __name__ == "__main__":
    main()
