"""Budgets in the database: the token bucket's arithmetic on SQLite and PostgreSQL, processes
sharing one bucket never taking more than it holds, and real `drip tick` workers on several
processes keeping one relay's rate between them."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from drip import budgets
from drip.models import DeliveryState, make_engine, writer
from drip.models_budgets import Budget
from drip.scheduler.gate import Gate, Route
from drip.scheduler.queries import Claim
from drip.send import MemoryTransport

from conftest import T0, make_runtime
from fleet import delivery_states, reap, seed, start, worker_env

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
BUCKET = budgets.Bucket("relay:test:25", rate=10.0, burst=5.0)


def take(
    engine: Engine, want: int, now: float, allowance: int = budgets.UNLIMITED, ahead: float = 0.0
) -> budgets.Grant:
    with Session(writer(engine)) as session, session.begin():
        return budgets.take(session, BUCKET, want, now, allowance=allowance, ahead=ahead)


def test_a_bucket_grants_its_burst_then_its_rate(engine: Engine) -> None:
    assert take(engine, 8, 1000.0).granted == 5, "a new bucket is full: one burst"
    assert take(engine, 8, 1000.0).granted == 0
    assert take(engine, 8, 1000.25).granted == 2, "0.25 s at 10/s refills 2.5 tokens"
    assert take(engine, 8, 1000.3).granted == 1, "the half token left, and 0.5 more"
    assert take(engine, 100, 2000.0).granted == 5, "never more than the burst, however long"
    grant = take(engine, 1, 1000.0)
    assert grant.granted == 0 and grant.tokens >= 0, "a clock behind the row refills nothing"


def test_the_day_allowance_counts_what_was_taken_that_day(engine: Engine) -> None:
    day = 20_000 * budgets.DAY
    assert take(engine, 5, day + 10, allowance=3).granted == 3
    assert take(engine, 5, day + 20, allowance=3).granted == 0, "tokens remain; the day is used"
    assert take(engine, 5, day + 30, allowance=4).granted == 1
    assert take(engine, 5, day + budgets.DAY + 1, allowance=3).granted == 3, "a new day"


def test_a_take_may_reserve_ahead_of_the_refill(engine: Engine) -> None:
    """Up to `ahead` tokens below empty; the tokens left say when the refill covers them."""
    grant = take(engine, 8, 1000.0, ahead=10)
    assert (grant.granted, grant.tokens) == (8, -3.0), "5 held, 3 reserved: covered at 1000.3"
    grant = take(engine, 20, 1000.0, ahead=10)
    assert (grant.granted, grant.tokens) == (7, -10.0), "never more than `ahead` below empty"
    assert take(engine, 1, 1000.0, ahead=10).granted == 0
    assert take(engine, 8, 1001.0).granted == 0, "a second refilled the 10 reserved, no more"
    assert take(engine, 8, 1001.2).granted == 2


def test_a_limit_takes_one_token_in_one_statement_new_bucket_or_not(engine: Engine) -> None:
    """`allow` makes a new bucket full less its token, as a take after `ensure` would."""

    def allow(key: str, limit: int, now: float) -> bool:
        with Session(writer(engine)) as session, session.begin():
            return budgets.allow(session, [key], limit, 3600.0, now)[0]

    assert [allow("signup:a", 3, 1000.0) for _ in range(4)] == [True, True, True, False]
    assert allow("signup:b", 3, 1000.0), "another key has a bucket of its own"
    assert not allow("signup:a", 3, 1000.0 + 1100), "a third of a token back after 1,100 s"
    assert allow("signup:a", 3, 1000.0 + 1300), "a whole one after 1,200 s"
    assert not allow("signup:none", 0, 1000.0), "a limit of 0 allows nothing"
    with Session(writer(engine)) as session, session.begin():
        grant = budgets.take(session, budgets.Bucket("signup:b", 3 / 3600, 3), 5, 1000.0)
    assert grant.granted == 2, "the new bucket held 3, less the one allowed"


def test_a_batch_of_events_takes_its_tokens_in_one_statement(engine: Engine) -> None:
    """A batch of signups: keys repeated within it take their tokens together, the first
    events of a key are the ones allowed, and existing and new buckets go alike."""

    def allow(keys: list[str], now: float) -> list[bool]:
        with Session(writer(engine)) as session, session.begin():
            return budgets.allow(session, keys, 2, 3600.0, now)

    assert allow([], 1000.0) == []
    assert allow(["k:a"], 1000.0) == [True]
    assert allow(["k:a", "k:b", "k:a", "k:c", "k:b", "k:b", "k:a"], 1000.0) == [
        True, True, False, True, True, False, False,
    ]  # fmt: skip
    assert allow(["k:c", "k:c", "k:d"] * 2, 1000.0) == [True, False, True, False, False, True]
    assert allow(["k:b", "k:a"], 1000.0 + 1800) == [True, True], "a token back per 1,800 s"


def test_a_resting_relay_grants_nothing_until_its_rest_ends(engine: Engine) -> None:
    take(engine, 1, 1000.0)
    with Session(writer(engine)) as session, session.begin():
        assert budgets.rest(session, BUCKET.key, 1100.0) == 1
    grant = take(engine, 1, 1050.0)
    assert grant.granted == 0 and grant.rested_until == 1100.0 and grant.failures == 1
    assert take(engine, 1, 1101.0).granted == 1
    with Session(writer(engine)) as session, session.begin():
        budgets.recovered(session, BUCKET.key)
    assert take(engine, 1, 1102.0).failures == 0


@dataclass
class Clock:
    """The gate's monotonic clock and its sleep: sleeping moves the clock on at once."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def claimed(database_url: str, tmp_path: Path, count: int) -> list[Claim]:
    seed(database_url, count, "bone-health", T0)
    rt = make_runtime(database_url, tmp_path, batch_size=count)
    try:
        return rt.dispatcher.claim(T0)
    finally:
        rt.close()


def test_batches_reserve_their_tokens_and_go_when_they_are_refilled(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """A relay of 100/s (a bucket of 10, reservations up to 2 s ahead): batches of 20 each
    take their tokens at once, and each is to go when the refill covers its last token, 0.2 s
    after the one before; once 2 s are reserved, the next waits for room (0.1 s for the 10 it
    lacks) instead of reserving further. A batch goes in slices, each when its tokens are."""
    claims = claimed(database_url, tmp_path, 20)
    clock = Clock()
    gate = Gate(engine, [Route("test:25", MemoryTransport(), rate=100.0)], sleep=clock.sleep,
                monotonic=clock.monotonic)  # fmt: skip
    gate.start(T0)
    times = []
    for _ in range(11):
        admission = gate.admit(claims)
        assert admission.claims == claims
        times.append(round(admission.at - T0.timestamp(), 6))
    assert times == [0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9, 2.1]
    assert clock.slept == [0.1], "no look at the bucket but the one that waited for room"
    gate.wait_until(admission.at)
    assert clock.now == pytest.approx(2.1)
    slices = gate.slices(gate.routes[0], 20, 2.1)
    assert [end for end, _ in slices] == list(range(2, 21, 2)), "0.02 s of the rate each"
    assert [when for _, when in slices] == pytest.approx([1.92 + 0.02 * n for n in range(10)])


def test_a_domain_reserves_its_tokens_and_releases_the_claims_beyond(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """example.com at 50/s (a bucket of 5, reservations up to 2 s ahead): 20 claims each
    time, all to that domain; five batches are granted, each 0.4 s after the one before, the
    sixth only the 5 tokens left of the 2 s, with no wait."""
    claims = claimed(database_url, tmp_path, 20)
    clock = Clock()
    gate = Gate(engine, [Route("test:25", MemoryTransport())], {"example.com": 50.0},
                sleep=clock.sleep, monotonic=clock.monotonic)  # fmt: skip
    gate.start(T0)
    admitted = [gate.domains(claims) for _ in range(6)]
    assert [len(a.claims) for a in admitted] == [20, 20, 20, 20, 20, 5]
    assert admitted[5].claims == claims[:5], "the earliest claims in their order"
    times = [round(a.at - T0.timestamp(), 6) for a in admitted]
    assert times == [0.3, 0.7, 1.1, 1.5, 1.9, 2.0]
    assert clock.slept == []


def test_a_batch_that_missed_its_time_takes_its_tokens_again(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """20 claims to example.com (50/s, a bucket of 5) through a relay of 100/s (a bucket of
    10), reserved at 0 to go at 0.3 s, its first slice of 2 at 0.12 s. Sent at 0.2, the batch
    goes as reserved; at 0.9 (its worker stalled) its tokens stood for time that has passed:
    it takes them again and goes 0.3 s later, counted once in the relay's day."""
    claims = claimed(database_url, tmp_path, 20)
    clock = Clock()
    route = Route("test:25", MemoryTransport(), rate=100.0)
    gate = Gate(engine, [route], {"example.com": 50.0}, sleep=clock.sleep,
                monotonic=clock.monotonic)  # fmt: skip
    gate.start(T0)
    domains = gate.domains(claims)
    admission = gate.admit(domains.claims, after=domains.at)
    assert admission.at - T0.timestamp() == pytest.approx(0.3)
    clock.now = 0.2
    assert gate.on_time(route, claims, admission.at) == admission.at
    clock.now = 0.9
    assert gate.on_time(route, claims, admission.at) - T0.timestamp() == pytest.approx(1.2)
    assert clock.slept == []
    with Session(engine) as session:
        row = session.get(Budget, route.key)
        assert row is not None and row.day_count == 20


def _take_for(url: str, seconds: float, found: multiprocessing.Queue) -> None:
    """Take tokens in a loop for `seconds` of real time; put how many were granted."""
    engine = make_engine(url)
    bucket = budgets.Bucket("relay:shared:25", rate=50.0, burst=10.0)
    granted, end = 0, time.time() + seconds
    while time.time() < end:
        with Session(writer(engine)) as session, session.begin():
            granted += budgets.take(session, bucket, 3, time.time()).granted
    engine.dispose()
    found.put(granted)


def test_processes_sharing_a_bucket_never_take_more_than_it_holds(database_url: str) -> None:
    """Four processes hammer one bucket of 50/s (burst 10) for 1.5 s: together they get at
    most the burst and the rate over the time they ran, and (the database keeping up) most
    of it."""
    context = multiprocessing.get_context("spawn")
    found = context.Queue()
    processes = [context.Process(target=_take_for, args=(database_url, 1.5, found))
                 for _ in range(4)]  # fmt: skip
    started = time.time()
    for process in processes:
        process.start()
    totals = [found.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    elapsed = time.time() - started
    assert sum(totals) <= 10 + 50 * elapsed, (totals, elapsed)
    assert sum(totals) >= 10 + 50 * 1.5 * 0.5, totals


@POSTGRES_ONLY
def test_three_workers_keep_one_relay_rate_between_them(
    database_url: str, smtp_server, tmp_path: Path
) -> None:
    """120 lessons due, three `drip tick` processes, DRIP_SEND_RATE=40 (a bucket of 4, batches
    of 8, each sent when its last token is refilled): the relay never sees more than the rate
    allows in any second, and all 120 arrive once."""
    seed(database_url, 120, "bone-health", T0)
    env = worker_env(database_url, smtp_server.url, tmp_path, batch_size=50, send_rate=40)
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [start(["tick", "--now", T0.isoformat()], env, log) for log in logs]
    assert reap(workers) == [0, 0, 0], [log.read_text()[-2000:] for log in logs]
    assert delivery_states(database_url) == {DeliveryState.SENT: 120}
    times = sorted(m.arrived for m in smtp_server.messages)
    assert len(times) == 120
    assert times[-1] - times[0] >= (120 - 8) / 40 * 0.95, "faster than the rate"
    for first, at in enumerate(times):
        within = sum(1 for t in times[first:] if t < at + 1.0)
        assert within <= 4 + 40 + 8, f"{within} messages within a second from {at}"
