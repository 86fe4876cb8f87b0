"""Budgets in the database: the token bucket's arithmetic on SQLite and PostgreSQL, processes
sharing one bucket never taking more than it holds, and real `drip tick` workers on several
processes keeping one relay's rate between them."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from drip import budgets
from drip.models import DeliveryState, make_engine, writer

from conftest import T0
from fleet import delivery_states, reap, seed, start, worker_env

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
BUCKET = budgets.Bucket("relay:test:25", rate=10.0, burst=5.0)


def take(engine: Engine, want: int, now: float, **kwargs: int) -> budgets.Grant:
    with Session(writer(engine)) as session, session.begin():
        return budgets.take(session, BUCKET, want, now, **kwargs)


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
    """120 lessons due, three `drip tick` processes, DRIP_SEND_RATE=40 (a burst of 8): the
    relay never sees more than the rate allows in any second, and all 120 arrive once."""
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
        assert within <= 8 + 40 + 2, f"{within} messages within a second from {at}"
