"""Several real `drip` processes against one PostgreSQL database and a real SMTP server: each
lesson once, through SIGKILLed workers and killed database connections. `now` is passed in
(`drip tick --now`); the only waiting is for the processes to get somewhere."""

from __future__ import annotations

import random
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text

from drip.models import DeliveryState, Subscription

from conftest import POSTGRES_URL, T0, make_runtime, write_course
from fleet import delivery_states, reader, reap, seed, start, worker_env

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def wait_until(
    condition: Callable[[], bool], worker: subprocess.Popen[bytes], what: str | Callable[[], str]
) -> None:
    """Poll (no clock is moved by this) until `condition`, failing if the worker died first;
    `what` may be worked out only then (it can say what was last seen)."""
    deadline = time.monotonic() + 60
    while not condition():
        said = what() if callable(what) else what
        assert worker.poll() is None, f"the worker exited ({worker.returncode}) before {said}"
        assert time.monotonic() < deadline, f"timed out waiting for {said}"
        time.sleep(0.01)


@POSTGRES_ONLY
def test_four_workers_send_each_lesson_exactly_once(database_url, smtp_server, tmp_path) -> None:
    seed(database_url, 2000, "bone-health", T0)
    env = worker_env(database_url, smtp_server.url, tmp_path, batch_size=50)
    logs = [tmp_path / f"worker{i}.log" for i in range(4)]
    workers = [start(["tick", "--now", T0.isoformat()], env, log) for log in logs]
    assert reap(workers) == [0, 0, 0, 0], [log.read_text()[-2000:] for log in logs]

    received = Counter(m.envelope_recipients[0] for m in smtp_server.messages)
    assert set(received) == {reader(i) for i in range(1, 2001)}
    assert max(received.values()) == 1, received.most_common(3)
    assert {str(m.message["Subject"]).split(":")[0] for m in smtp_server.messages} == {"Day 1"}
    assert delivery_states(database_url) == {DeliveryState.SENT: 2000}
    sent_by = [int(log.read_text().rsplit("sent ", 1)[1].split(",")[0]) for log in logs]
    assert sum(sent_by) == 2000 and sum(1 for n in sent_by if n) >= 2, sent_by


@POSTGRES_ONLY
def test_sigkilled_workers_skip_nothing_and_repeat_only_in_flight(
    database_url, smtp_server, tmp_path
) -> None:
    """20 rounds, one lesson each: three workers, one SIGKILLed once a random number of messages
    has arrived. Then a pass after the lease: the round's lesson reached everyone, and the extra
    copies are at most the deliveries the dead worker left 'sending' (its messages in flight)."""
    subscribers, batch, rounds = 150, 10, 20
    courses = tmp_path / "courses"
    write_course(courses / "tiny", days=rounds + 1)
    seed(database_url, subscribers, "tiny", T0)  # UTC readers, lessons at 08:30 UTC
    env = worker_env(database_url, smtp_server.url, tmp_path, courses_dir=courses, batch_size=batch)
    rt = make_runtime(
        database_url, tmp_path, smtp_url=smtp_server.url, courses_dir=courses, batch_size=batch
    )
    rng = random.Random(20261124)
    in_flight_total = duplicates_total = 0
    try:
        for lesson in range(1, rounds + 1):
            now = T0 if lesson == 1 else (T0 + timedelta(days=lesson - 1)).replace(hour=12)
            before = len(smtp_server.messages)
            workers = [
                start(["tick", "--now", now.isoformat()], env, tmp_path / f"r{lesson}w{i}.log")
                for i in range(3)
            ]
            victim, kill_after = rng.randrange(3), rng.randrange(subscribers)
            while (
                len(smtp_server.messages) - before < kill_after and workers[victim].poll() is None
            ):
                time.sleep(0.001)
            workers[victim].kill()
            codes = reap(workers)
            assert codes[victim] == -9 or codes[victim] == 0, "the victim did not just stop"
            assert codes[:victim] + codes[victim + 1 :] == [0, 0], f"round {lesson}"

            in_flight = delivery_states(database_url)[DeliveryState.SENDING]
            # claimed, not recorded: the batch on the wire and the next one being rendered
            assert in_flight <= 2 * batch, "more than two batches were in flight in one worker"
            rt.dispatcher.run_pass(now + rt.dispatcher.lease)
            assert delivery_states(database_url)[DeliveryState.SENDING] == 0

            arrived = smtp_server.messages[before:]
            assert {str(m.message["Subject"]) for m in arrived} == {f"Subject {lesson}"}
            received = Counter(m.envelope_recipients[0] for m in arrived)
            assert set(received) == {reader(i) for i in range(1, subscribers + 1)}, lesson
            duplicates = sum(received.values()) - subscribers
            assert duplicates <= in_flight, (lesson, duplicates, in_flight)
            in_flight_total += in_flight
            duplicates_total += duplicates
    finally:
        rt.close()

    days: dict[str, list[int]] = defaultdict(list)
    for message in smtp_server.messages:
        day = int(str(message.message["Subject"]).split()[1])
        recipient = message.envelope_recipients[0]
        if not days[recipient] or days[recipient][-1] != day:
            days[recipient].append(day)
    assert all(got == list(range(1, rounds + 1)) for got in days.values())
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert set(conn.scalars(select(Subscription.current_day))) == {rounds}
    engine.dispose()
    assert in_flight_total > 0, "no kill ever caught a worker with messages in flight"
    print(f"in flight at the kills: {in_flight_total}, duplicates: {duplicates_total}")


@POSTGRES_ONLY
def test_drip_run_survives_killed_database_connections(database_url, smtp_server, tmp_path):
    subscribers = 200
    seed(database_url, subscribers, "bone-health", T0)
    name = f"drip-test-{uuid.uuid4().hex[:8]}"
    env = worker_env(
        f"{database_url}&application_name={name}", smtp_server.url, tmp_path,
        batch_size=10, tick_seconds=0.2,
    )  # fmt: skip
    smtp_server.stall_seconds = 0.01  # a little slow, so the kills land mid-run
    log = tmp_path / "run.log"
    worker = start(["run", "--no-web"], env, log)
    admin = create_engine(POSTGRES_URL)
    killed = 0
    try:
        for threshold in (40, 120):
            wait_until(lambda t=threshold: len(smtp_server.messages) >= t, worker, f"{threshold}")
            with admin.connect() as conn:
                killed += conn.execute(
                    text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = 'test' AND pid <> pg_backend_pid() "
                         "AND application_name = :name"),
                    {"name": name},
                ).scalar_one()  # fmt: skip
        wait_until(lambda: len(smtp_server.messages) >= subscribers, worker, "every lesson")
        seen: list[object] = []  # the last states read, for the message if it times out
        wait_until(
            lambda: seen.append(delivery_states(database_url))
            or seen[-1] == {DeliveryState.SENT: subscribers},
            worker, lambda: f"every delivery recorded (last seen: {seen[-1:]}, "
            f"{len(smtp_server.messages)} messages)",
        )  # fmt: skip
    finally:
        worker.terminate()
        (code,) = reap([worker])
        admin.dispose()
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert killed >= 2, "no connection of the worker was found to kill"
    assert "database connection lost" in output
    received = Counter(m.envelope_recipients[0] for m in smtp_server.messages)
    assert len(received) == subscribers and max(received.values()) == 1
