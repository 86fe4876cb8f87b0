"""Signups written a batch per transaction (signups.py, web/batches.py): each person's outcome
is what it would be one request after the other, one item's conflict fails that request alone,
and concurrent signups in several web processes end with one subscriber per address."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.responses import Response

from drip import signups, subscriptions, suppressions
from drip.models import Subscriber, Subscription, SubscriptionState, SuppressionReason, make_engine
from drip.runtime import Runtime
from drip.signups import Signup
from drip.web.batches import Batcher
from drip.web.signup import Pending, SignupForm

from conftest import T0, make_runtime
from fleet import start_drip, stop

PENDING, ACTIVE = SubscriptionState.PENDING, SubscriptionState.ACTIVE


@pytest.fixture
def rt(database_url: str, tmp_path: Path):
    runtime = make_runtime(database_url, tmp_path)
    yield runtime
    runtime.close()


def write(rt: Runtime, batch: list[Signup]) -> list[bool]:
    with rt.write_sessions() as session, session.begin():
        return signups.write(session, batch, T0)


def rows(rt: Runtime) -> list[tuple[str, str, str, SubscriptionState]]:
    with rt.sessions() as session:
        query = select(Subscriber.email, Subscriber.name, Subscription.course_slug,
                       Subscription.state).join(Subscription.subscriber)  # fmt: skip
        return sorted(tuple(row) for row in session.execute(query))  # type: ignore[misc]


def test_a_batch_is_what_one_request_after_the_other_would_be(rt: Runtime) -> None:
    course = rt.course("bone-health")
    with rt.write_sessions() as session, session.begin():
        subscriptions.subscribe(session, course, "active@example.org", now=T0, name="Ana",
                                confirmed=True)  # fmt: skip
        suppressions.suppress(session, "gone@example.org", SuppressionReason.COMPLAINT, "", T0,
                              rt.courses)  # fmt: skip
    batch = [
        Signup(course, "new@example.org", "First"),
        Signup(course, "new@example.org", "Second"),  # the same address again: no new row
        Signup(course, "active@example.org", "Mallory"),  # never renames anyone
        Signup(course, "gone@example.org"),  # suppressed: answered alike, nothing written
        Signup(course, "zoned@example.org", "", "Asia/Tokyo"),
    ]
    assert write(rt, batch) == [True, True, False, False, True]
    assert rows(rt) == [
        ("active@example.org", "Ana", "bone-health", ACTIVE),
        ("new@example.org", "First", "bone-health", PENDING),
        ("zoned@example.org", "", "bone-health", PENDING),
    ]
    with rt.sessions() as session:
        zoned = subscriptions.find_live(session, "zoned@example.org")[0]
        assert (zoned.timezone, zoned.next_due_at is not None) == ("Asia/Tokyo", True)


def test_items_of_a_failed_batch_are_written_alone() -> None:
    """A conflict fails its own request; the others of its batch are written."""
    calls: list[list[int]] = []

    def store(batch: Sequence[int]) -> list[int]:
        calls.append(list(batch))
        if 13 in batch:
            raise IntegrityError("insert", {}, Exception("unique"))
        return [n * 2 for n in batch]

    async def main() -> list[object]:
        batcher: Batcher[int, int] = Batcher(store, alone_on=(IntegrityError,))
        return await asyncio.gather(*(batcher.submit(n) for n in range(20)),
                                    return_exceptions=True)  # fmt: skip

    results = asyncio.run(main())
    assert [r for n, r in enumerate(results) if n != 13] == [n * 2 for n in range(20) if n != 13]
    assert isinstance(results[13], IntegrityError)
    assert calls[0] == list(range(20)), "what came at once is one batch"
    assert calls[1:] == [[n] for n in range(14)] + [[13]] + [[n] for n in range(14, 20)], (
        "then each item of it alone, and the one that failed so once more"
    )


def test_a_database_that_is_down_fails_the_whole_batch_at_once() -> None:
    calls: list[int] = []

    def store(batch: Sequence[int]) -> list[int]:
        calls.append(len(batch))
        raise OperationalError("connect", {}, Exception("connection refused"))

    async def main() -> list[object]:
        batcher: Batcher[int, int] = Batcher(store, alone_on=(IntegrityError,))
        return await asyncio.gather(*(batcher.submit(n) for n in range(10)),
                                    return_exceptions=True)  # fmt: skip

    results = asyncio.run(main())
    assert all(isinstance(r, OperationalError) for r in results)
    assert sum(calls) == 10, "an item of a failed batch was tried again one by one"


def test_concurrent_signups_in_two_processes_make_one_subscriber_each(
    database_url: str, smtp_server, tmp_path: Path
) -> None:
    """Each address is posted to both processes at once; unique keys decide, and every
    request is answered 200."""
    servers = [start_drip("serve", database_url, smtp_server, tmp_path,
                          signup_limit_per_client=1000, signup_limit_per_address=1000)
               for _ in range(2)]  # fmt: skip
    statuses: list[int] = []

    def post(base: str, start: int) -> None:
        with httpx.Client(timeout=60) as client:
            for i in range(start, start + 40):
                body = {"email": f"both{i % 20}@example.org", "course": "bone-health"}
                statuses.append(client.post(f"{base}/subscribe", json=body).status_code)

    threads = [threading.Thread(target=post, args=(base, n * 20))
               for n, (_, base) in enumerate(servers * 2)]  # fmt: skip
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        logs = "".join(stop(process) for process, _ in servers)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        people = conn.scalar(select(func.count()).select_from(Subscriber))
        subs = conn.scalar(select(func.count()).select_from(Subscription))
    engine.dispose()
    assert statuses == [200] * 160, logs[-3000:]
    assert (people, subs) == (20, 20)


def test_a_batch_written_again_keeps_what_its_limits_said(rt: Runtime) -> None:
    """A batch that meets a conflict is written again one by one: its signups' limits are
    not taken a second time (one person never pays two tokens for one request)."""
    form = SignupForm(rt, lambda *_: Response(), lambda _: "198.51.100.7")
    course = rt.course("bone-health")
    first = [Pending("198.51.100.7", Signup(course, f"again{n}@example.org")) for n in range(3)]
    assert form._write(first) == [None, None, None]
    for _ in range(rt.settings.signup_limit_per_address + 1):
        assert form._write(first[:1]) == [None], "written again: the same answer, no token"
    others = [Pending("198.51.100.7", Signup(course, "again0@example.org"))
              for _ in range(rt.settings.signup_limit_per_address)]  # fmt: skip
    limit = rt.settings.signup_limit_per_address
    assert form._write(others) == [None] * (limit - 1) + ["email"], "one token was taken"
