"""Several relays, warm-up plans and daily caps, with real aiosmtpd servers on loopback: a
relay that refuses connections or answers 4xx rests and the others take its share; a lesson
goes through one relay only; lessons over the day's allowance wait, in due order."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import String, update

from drip.models import DeliveryState, Subscriber, Subscription, make_engine
from drip.runtime import Runtime

from conftest import T0, make_runtime
from fleet import delivery_states, reader, seed
from smtp_server import SMTPServer


@pytest.fixture
def relays() -> Iterator[tuple[SMTPServer, SMTPServer]]:
    first, second = SMTPServer(), SMTPServer()
    first.start()
    second.start()
    yield first, second
    first.stop()
    second.stop()


def runtime(database_url: str, tmp_path: Path, smtp_url: str, **settings: object) -> Runtime:
    return make_runtime(database_url, tmp_path, smtp_url=smtp_url, batch_size=10, **settings)


def recipients(server: SMTPServer) -> list[str]:
    return [m.envelope_recipients[0] for m in server.messages]


@pytest.mark.parametrize("failure", ["421 4.7.0 Try again later", "451 4.3.0 Busy", "down"])
def test_a_failing_relay_rests_and_the_other_takes_its_share(
    database_url: str, tmp_path: Path, relays: tuple[SMTPServer, SMTPServer], failure: str
) -> None:
    failing, healthy = relays
    if failure == "down":
        failing.stop()  # connection refused
    else:
        failing.fail_all = failure
    seed(database_url, 30, "bone-health", T0)
    url = f"{failing.url}&weight=3, {healthy.url}&weight=1"
    rt = runtime(database_url, tmp_path, url, relay_rest_seconds=600)
    try:
        first = rt.dispatcher.run_pass(T0)
        # The batch that failed, and the one admitted while it was on the wire, wait.
        assert first.deferred in (10, 20) and first.sent == 30 - first.deferred
        second = rt.dispatcher.run_pass(T0 + timedelta(minutes=5))  # the retries, it resting
        assert second.sent == first.deferred
    finally:
        rt.close()
    assert failing.messages == []
    assert Counter(recipients(healthy)) == Counter({reader(i): 1 for i in range(1, 31)})
    assert delivery_states(database_url) == {DeliveryState.SENT: 30}


def test_healthy_relays_share_by_weight_a_batch_each(
    database_url: str, tmp_path: Path, relays: tuple[SMTPServer, SMTPServer]
) -> None:
    first, second = relays
    seed(database_url, 80, "bone-health", T0)
    rt = runtime(database_url, tmp_path, f"{first.url}&weight=3,{second.url}")
    try:
        assert rt.dispatcher.run_pass(T0).sent == 80
    finally:
        rt.close()
    assert (len(first.messages), len(second.messages)) == (60, 20)
    assert not set(recipients(first)) & set(recipients(second)), "no lesson through two relays"


def set_due_in_order(database_url: str, count: int, earliest: Path | None = None) -> None:
    """Subscription i due i minutes before T0's hour: id 1 is the earliest due."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for i in range(1, count + 1):
            conn.execute(update(Subscription).where(Subscription.id == i)
                         .values(next_due_at=T0 - timedelta(minutes=count + 1 - i)))  # fmt: skip
    engine.dispose()


def test_a_warm_up_plan_caps_each_day_and_the_rest_waits_in_due_order(
    database_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """A plan of 48, then 96 a day, released a 24th an hour: at 06:00 on day 1, 14 may go
    (7 hours' worth); at 00:30 on day 2, 4; by 23:00 on day 2, what is left."""
    seed(database_url, 60, "bone-health", T0)
    set_due_in_order(database_url, 60)
    url = f"{smtp_server.url}&warmup=48:96"
    rt = runtime(database_url, tmp_path, url, warmup_start=T0.date().isoformat())
    day2 = T0.replace(hour=0, minute=30) + timedelta(days=1)
    try:
        assert rt.dispatcher.run_pass(T0).sent == 14
        assert rt.dispatcher.run_pass(T0 + timedelta(minutes=30)).sent == 0, "day 1 is used"
        assert rt.dispatcher.run_pass(day2).sent == 4
        # The 42 left of day 1, then lesson 2 of the first 14, due at 08:30 on day 2.
        assert rt.dispatcher.run_pass(day2.replace(hour=23)).sent == 42 + 14
    finally:
        rt.close()
    got = recipients(smtp_server)
    assert got[:60] == [reader(i) for i in range(1, 61)], "earliest due first, none skipped"
    assert sorted(got[60:]) == sorted(reader(i) for i in range(1, 15)), "due at one time"


def test_a_daily_cap_is_shared_by_every_worker(
    database_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """Two runtimes (two workers) under one daily cap of 24 (one an hour): at 06:10 UTC, seven
    in all (the hours from midnight, this one counted), whoever sends them."""
    seed(database_url, 40, "bone-health", T0)
    url = f"{smtp_server.url}&daily=24"
    workers = [runtime(database_url, tmp_path, url) for _ in range(2)]
    at = T0.replace(minute=10)
    try:
        sent = [w.dispatcher.run_pass(at).sent for w in workers]
    finally:
        for worker in workers:
            worker.close()
    assert sum(sent) == 7 and len(smtp_server.messages) == 7, sent


def test_a_domain_budget_paces_its_recipients_and_the_pass_goes_on(
    database_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """30 lessons to example.com at 20/s (a bucket of 2) and 10 elsewhere: the pass waits for
    the domain's tokens instead of ending, and sends all 40, each once."""
    seed(database_url, 40, "bone-health", T0)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(update(Subscriber).where(Subscriber.id > 30)
                     .values(email=Subscriber.id.cast(String) + "@other.example"))  # fmt: skip
    engine.dispose()
    rt = runtime(database_url, tmp_path, smtp_server.url, domain_rates="example.com=20")
    started = time.monotonic()
    try:
        assert rt.dispatcher.run_pass(T0).sent == 40
    finally:
        rt.close()
    assert time.monotonic() - started >= (30 - 2) / 20 * 0.9, "faster than the domain's rate"
    assert len(set(recipients(smtp_server))) == 40
    domain = sorted(m.arrived for m in smtp_server.messages
                    if m.envelope_recipients[0].endswith("@example.com"))  # fmt: skip
    for first, at in enumerate(domain):  # a batch (10) goes when its last token is refilled
        assert sum(1 for t in domain[first:] if t < at + 1.0) <= 2 + 20 + 10
