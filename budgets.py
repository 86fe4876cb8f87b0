"""Budgets shared by every worker on every machine, kept in the database: a token bucket per
SMTP relay and per recipient domain, a relay's count of messages today (its daily cap and
warm-up plan) and its rest after a failing batch; the web's signup limits are buckets too.

A take is one UPDATE ... RETURNING: the row is refilled for the time since its last take, as
many tokens as there are (at most `want`, and within the day's allowance) are taken, and the
grant comes back in the same round trip. The row lock orders concurrent takes, so workers on
any number of machines never take more than the bucket holds. A take may reserve `ahead`:
the bucket then goes below empty, and the tokens left (negative) say when the refill covers
the reservation, so a batch is sent at that time, not when its tokens were taken. Times are
seconds since the epoch (floats), so the arithmetic is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, TextClause, delete, select, text, update
from sqlalchemy.orm import Session

from .models import writer
from .models_budgets import Budget

DAY = 86400.0


@dataclass(frozen=True)
class Bucket:
    key: str  # "relay:host:port", "domain:gmail.com", "signup-client:ADDRESS", ...
    rate: float  # tokens added per second
    burst: float  # the most it holds


@dataclass(frozen=True)
class Grant:
    granted: int
    tokens: float  # left after the grant
    rested_until: float  # a relay resting until then grants nothing
    failures: int


UNLIMITED = 2**62


def _take_set(dialect: str, row: str = "", want: str = ":want") -> str:
    """The SET of a take, written once per dialect: refill for the time since the last take,
    grant what there is and :ahead more (at most `want`, within :allowance today, nothing while
    resting).
    SQLite's scalar min/max and integer cast stand for PostgreSQL's least/greatest and floor;
    `row` qualifies the row's own columns (an upsert's DO UPDATE needs "budgets.")."""
    least, greatest = ("least", "greatest") if dialect == "postgresql" else ("min", "max")
    avail = f"{least}(:burst, {row}tokens + :rate * {greatest}(0.0, :now - {row}refilled_at))"
    # A microsecond's refill more: seconds since the epoch as floats are exact to a quarter
    # of one, so a token refilled at `now` is not missed by a rounding.
    room = f"{avail} + :ahead + 1e-9 + :rate * 1e-6"
    whole = f"floor({room})" if dialect == "postgresql" else f"({room})"
    today = f"(CASE WHEN {row}day = :day THEN {row}day_count ELSE 0 END)"
    grant = (
        f"(CASE WHEN {row}rested_until > :now THEN 0 ELSE CAST({greatest}(0, {least}({want}, "
        f"{whole}, :allowance - {today})) AS INTEGER) END)"
    )
    return (
        f"granted = {grant}, tokens = {avail} - {grant}, refilled_at = "
        f"{greatest}({row}refilled_at, :now), day_count = {today} + {grant}, day = :day"
    )


@functools.cache
def _take_sql(dialect: str) -> TextClause:
    return text(f"UPDATE budgets SET {_take_set(dialect)} WHERE key = :key "
                "RETURNING granted, tokens, rested_until, failures")  # fmt: skip


@functools.cache
def _allow_sql(dialect: str) -> TextClause:
    """Tokens for many keys in one statement of one text (so the driver and the server parse
    it once), whether or not their buckets exist yet (a new one is made full, less what it
    grants): a signup limit's bucket is usually new (a new address). The keys and wants come
    as two arrays (PostgreSQL) or one JSON list of pairs (SQLite); each row's want travels as
    its `granted` value, which the DO UPDATE reads back as excluded.granted. (WHERE true tells
    SQLite's parser that ON CONFLICT belongs to the upsert.)"""
    if dialect == "postgresql":
        rows = (
            "SELECT k, w FROM unnest(CAST(:keys AS text[]), CAST(:wants AS integer[])) AS t(k, w)"
        )
    else:
        rows = (
            "SELECT json_extract(value, '$[0]') AS k, json_extract(value, '$[1]') AS w "
            "FROM json_each(:pairs)"
        )
    return text(
        "INSERT INTO budgets (key, tokens, refilled_at, granted, day, day_count, first_day, "
        f"rested_until, failures) SELECT r.k, :burst - r.w, :now, r.w, :day, r.w, :day, 0, 0 "
        f"FROM ({rows}) AS r WHERE true ON CONFLICT (key) DO UPDATE SET "
        f"{_take_set(dialect, 'budgets.', 'excluded.granted')} RETURNING key, granted"
    )  # the text is built once per dialect


@functools.lru_cache(maxsize=16)
def _autocommit(engine: Engine) -> Engine:
    """The engine in autocommit, made once (each `execution_options` call makes a new one)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def takes(engine: Engine, beside: Session | None = None) -> Iterator[Session]:
    """A session for takes, each its own transaction. On PostgreSQL in autocommit: a take is
    one round trip (no BEGIN, no COMMIT) and a busy bucket's row (every signup from one client
    address, every batch of one relay) is locked for that statement only, never for a longer
    transaction of the caller's. SQLite writes one transaction at a time anyway: there the
    takes join `beside` (the caller's write transaction), when given, rather than wait for
    the write lock twice; otherwise they take it at BEGIN."""
    if engine.dialect.name == "postgresql":
        with Session(_autocommit(engine)) as session:
            yield session
    elif beside is not None:
        yield beside
    else:
        with Session(writer(engine)) as session, session.begin():
            yield session


def take(
    session: Session,
    bucket: Bucket,
    want: int,
    now: float,
    *,
    allowance: int = UNLIMITED,
    ahead: float = 0.0,
) -> Grant:
    """Take up to `want` tokens at `now` (seconds since the epoch), at most `allowance` in the
    UTC day of `now` counted with what was taken earlier that day, and up to `ahead` tokens
    more than the bucket holds: reserved, they are refilled -Grant.tokens / rate seconds after
    `now`. The bucket is made full on its first use."""
    sql = _take_sql(session.get_bind().dialect.name)
    values = {"key": bucket.key, "rate": bucket.rate, "burst": bucket.burst, "now": now,
              "want": want, "allowance": allowance, "ahead": ahead,
              "day": int(now // DAY)}  # fmt: skip
    row = session.execute(sql, values).first()
    if row is None:
        ensure(session, bucket, now)
        row = session.execute(sql, values).one()
    return Grant(int(row.granted), float(row.tokens), float(row.rested_until), int(row.failures))


def ensure(session: Session, bucket: Bucket, now: float) -> int:
    """Create the bucket (full) unless it exists; the day it was first used (warm-up plans
    count from it)."""
    session.execute(
        text(
            "INSERT INTO budgets (key, tokens, refilled_at, granted, day, day_count, first_day, "
            "rested_until, failures) VALUES (:key, :burst, :now, 0, :day, 0, :day, 0, 0) "
            "ON CONFLICT (key) DO NOTHING"
        ),
        {"key": bucket.key, "burst": bucket.burst, "now": now, "day": int(now // DAY)},
    )
    return int(session.scalar(select(Budget.first_day).where(Budget.key == bucket.key)) or 0)


def give_back(session: Session, key: str, count: int, *, tokens: bool = True) -> None:
    """Return tokens taken for messages that were not sent after all (nothing was due) to the
    bucket and the day's count; to the day's count alone (`tokens` false) when they were
    taken again."""
    if count > 0:
        back = count if tokens else 0
        session.execute(
            update(Budget)
            .where(Budget.key == key)
            .values(tokens=Budget.tokens + back, day_count=Budget.day_count - count)
        )


def rest(session: Session, key: str, until: float) -> int:
    """Rest a relay until `until`; how many rests in a row it has now had."""
    row = session.execute(
        update(Budget)
        .where(Budget.key == key)
        .values(rested_until=until, failures=Budget.failures + 1)
        .returning(Budget.failures)
    ).first()
    return int(row.failures) if row else 0


def recovered(session: Session, key: str) -> None:
    """The relay took a batch again: the next rest starts from the shortest."""
    session.execute(update(Budget).where(Budget.key == key, Budget.failures > 0).values(failures=0))


def allow(
    session: Session, keys: Sequence[str], limit: int, window: float, now: float
) -> list[bool]:
    """One event for each of `keys` against a limit of `limit` per `window` seconds (a bucket
    of `limit` tokens refilled over the window), all in one statement: the web's signup and
    sign-in limits, shared by every web process. A key named n times takes n tokens at once,
    and its first events are the ones allowed."""
    wants = Counter(keys)
    if not wants:
        return []
    full = max(0, math.floor(limit + 1e-9))
    keys_wants = [(key, min(n, full)) for key, n in wants.items()]
    values = {"rate": limit / window, "burst": float(limit), "now": now,
              "allowance": UNLIMITED, "ahead": 0.0, "day": int(now // DAY),
              "keys": [k for k, _ in keys_wants], "wants": [w for _, w in keys_wants],
              "pairs": json.dumps(keys_wants)}  # fmt: skip
    sql = _allow_sql(session.get_bind().dialect.name)
    granted = {row.key: int(row.granted) for row in session.execute(sql, values)}
    seen: Counter[str] = Counter()
    allowed = []
    for key in keys:
        seen[key] += 1
        allowed.append(seen[key] <= granted.get(key, 0))
    return allowed


def forget_full(session: Session, prefix: str, window: float, now: float) -> None:
    """Delete buckets under `prefix` untouched for a whole window: they would be full again,
    exactly as a bucket not yet made."""
    session.execute(
        delete(Budget).where(Budget.key.startswith(prefix), Budget.refilled_at < now - window)
    )
