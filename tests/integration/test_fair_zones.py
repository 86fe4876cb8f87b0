"""Capped sending is fair across time zones: with a daily cap released hour by hour, one zone's
big wave does not hold the next zone's wave back until it is all sent. Each hour's sends are
split across the zones, each zone's lessons go in due order, and every lesson goes once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from drip.models import Delivery, DeliveryState, Subscription, make_engine
from drip.scheduler.queries import ALL_KINDS, due

from conftest import T0, make_runtime
from fleet import reader, reap, seed, start, worker_env
from smtp_server import SMTPServer

WAVE = 60  # subscriptions in each zone
EAST, WEST = "Asia/Tokyo", "Europe/Berlin"
MIDNIGHT = T0.replace(hour=0)


def two_waves(database_url: str) -> None:
    """Tokyo's wave (ids 1-60) due from 00:00 UTC, Berlin's (61-120) from 01:00, each one a
    second apart in id order."""
    seed(database_url, 2 * WAVE, "bone-health", MIDNIGHT, zone=EAST)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for i in range(1, 2 * WAVE + 1):
            wave = MIDNIGHT if i <= WAVE else MIDNIGHT + timedelta(hours=1)
            conn.execute(update(Subscription).where(Subscription.id == i).values(
                timezone=EAST if i <= WAVE else WEST,
                next_due_at=wave + timedelta(seconds=i)))  # fmt: skip
    engine.dispose()


def sent_days(database_url: str) -> dict[int, list[int]]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Delivery.subscription_id, Delivery.day, Delivery.state)
                            .order_by(Delivery.subscription_id, Delivery.day)).all()  # fmt: skip
    engine.dispose()
    assert {r.state for r in rows} == {DeliveryState.SENT}
    days: dict[int, list[int]] = {}
    for row in rows:
        days.setdefault(row.subscription_id, []).append(row.day)
    return days


def test_a_capped_relay_shares_each_hour_across_zones_in_due_order(
    database_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """A cap of 240 a day, 10 an hour: at 00:10 Tokyo's first 10; from 01:10 on, while both
    zones wait, 5 of each an hour, never Tokyo's whole backlog first."""
    two_waves(database_url)
    url = f"{smtp_server.url}&daily=240"
    rt = make_runtime(database_url, tmp_path, smtp_url=url, batch_size=10)
    hours: list[Counter[str]] = []
    try:
        for hour in range(72):  # three days, a pass ten minutes past each hour
            before = len(smtp_server.messages)
            rt.dispatcher.run_pass(MIDNIGHT + timedelta(hours=hour, minutes=10))
            new = smtp_server.messages[before:]
            ids = [int(m.envelope_recipients[0][6:].partition("@")[0]) for m in new]
            hours.append(Counter(EAST if i <= WAVE else WEST for i in ids))
    finally:
        rt.close()
    assert hours[0] == Counter({EAST: 10})
    for hour in range(1, 11):  # both zones have lessons waiting
        assert hours[hour] == Counter({EAST: 5, WEST: 5}), (hour, hours[hour])
    firsts = [m.envelope_recipients[0] for m in smtp_server.messages[: 2 * WAVE]]
    east = [r for r in firsts if int(r[6:].partition("@")[0]) <= WAVE]
    assert east == [reader(i) for i in range(1, WAVE + 1)], "Tokyo in due order"
    west = [r for r in firsts if int(r[6:].partition("@")[0]) > WAVE]
    assert west == [reader(i) for i in range(WAVE + 1, 2 * WAVE + 1)], "Berlin in due order"
    days = sent_days(database_url)
    assert sorted(days) == list(range(1, 2 * WAVE + 1)), "every subscription got its lessons"
    for sub_id, got in days.items():
        assert got == list(range(1, len(got) + 1)), (sub_id, got)  # none skipped, none twice
    assert len(smtp_server.messages) == sum(len(d) for d in days.values())
    assert Counter(m.envelope_recipients[0] for m in smtp_server.messages) == Counter(
        {reader(i): len(d) for i, d in days.items()})  # fmt: skip


def test_workers_claiming_at_once_under_a_cap_send_each_lesson_once(
    database_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """Three `drip tick` processes at 01:10 under the cap of 240 a day (20 by then): 20 in all,
    from both zones, none twice; at 23:10 the rest of the first lessons, each once."""
    two_waves(database_url)
    env = worker_env(database_url, f"{smtp_server.url}&daily=240", tmp_path, batch_size=10)
    for at, total in ((MIDNIGHT + timedelta(hours=1, minutes=10), 20),
                      (MIDNIGHT + timedelta(hours=23, minutes=10), 2 * WAVE)):  # fmt: skip
        logs = [tmp_path / f"worker{i}-{at.hour}.log" for i in range(3)]
        workers = [start(["tick", "--now", at.isoformat()], env, log) for log in logs]
        assert reap(workers) == [0, 0, 0], [log.read_text()[-2000:] for log in logs]
        got = Counter(m.envelope_recipients[0] for m in smtp_server.messages)
        assert sum(got.values()) == total and set(got.values()) == {1}, got
        if total == 20:
            east = sum(1 for r in got if int(r[6:].partition("@")[0]) <= WAVE)
            assert 5 <= east <= 15, got  # both zones share the hour
    assert sent_days(database_url) == {i: [1] for i in range(1, 2 * WAVE + 1)}


def test_only_a_capped_relay_claims_by_zone_and_the_hot_path_keeps_its_order(
    database_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """A rate alone caps no day: the claim stays the plain earliest-due one (its index plan)."""
    for query, capped in (("", False), ("&rate=50", False), ("&daily=100", True),
                          ("&warmup=50:100", True)):  # fmt: skip
        rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url + query)
        try:
            assert rt.dispatcher.gate is not None and rt.dispatcher.gate.capped is capped
        finally:
            rt.close()
    plain = str(due(T0, 10, ["bone-health"], ALL_KINDS))
    assert "row_number" not in plain and plain.endswith("LIMIT :param_1 FOR UPDATE")
    assert "row_number() OVER (PARTITION BY subscriptions.timezone" in str(
        due(T0, 10, ["bone-health"], ALL_KINDS, fair=True))  # fmt: skip


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_ranking_each_zones_first_rows_claims_what_ranking_every_row_would(
    database_url: str,
) -> None:
    """On PostgreSQL the capped claim ranks only each zone's first rows (PER_ZONE x its
    limit): three zones of 50 due lessons at scattered times, claimed 1, 5, 20 and 200 at a
    time, give the rows, in the order, that ranking every due row gives."""
    zones = [EAST, WEST, "America/Chicago"]
    seed(database_url, 150, "bone-health", MIDNIGHT)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for i in range(1, 151):
            scattered = MIDNIGHT + timedelta(seconds=i * 37 % 151)
            conn.execute(update(Subscription).where(Subscription.id == i)
                         .values(timezone=zones[i % 3], next_due_at=scattered))  # fmt: skip
    at = MIDNIGHT + timedelta(hours=1)
    with engine.connect() as conn:
        for limit in (1, 5, 20, 200):
            every = due(at, limit, ["bone-health"], ALL_KINDS, fair=True)
            first = due(at, limit, ["bone-health"], ALL_KINDS, fair=True, per_zone=True)
            expected = [row.id for row in conn.execute(every)]
            assert [row.id for row in conn.execute(first)] == expected, limit
            assert len(expected) == min(limit, 150)
            if limit == 5:
                assert {expected[0] % 3, expected[1] % 3, expected[2] % 3} == {0, 1, 2}
        conn.rollback()
    engine.dispose()
