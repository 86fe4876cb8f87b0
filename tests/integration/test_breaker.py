"""A course's circuit breaker: too many hard bounces (refused at SMTP time) or complaints over
its last sends hold the course's sending; `drip course resume` lets it go on, in due order."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from drip import breaker
from drip.cli import main
from drip.models import (
    Delivery,
    DeliveryState,
    FeedbackEvent,
    FeedbackKind,
    make_engine,
    writer,
)
from drip.models_budgets import CourseHold

from conftest import T0, make_runtime
from fleet import DRIP, delivery_states, reader, reap, seed, start, worker_env


@pytest.fixture
def env(database_url: str, tmp_path: Path, smtp_server, monkeypatch) -> None:
    values = {"DATABASE_URL": database_url, "SMTP_URL": smtp_server.url,
              "CONFIG": str(tmp_path / "absent.toml"), "BREAKER_SENDS": "10"}  # fmt: skip
    for key, value in values.items():
        monkeypatch.setenv(f"DRIP_{key}", value)
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)


def held(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    with Session(engine) as session:
        found = breaker.held(session)
    engine.dispose()
    return found


def test_hard_bounces_hold_the_course_until_resumed(
    env: None, database_url: str, tmp_path: Path, smtp_server, capsys, caplog
) -> None:
    seed(database_url, 30, "bone-health", T0)
    smtp_server.reply_rcpt[reader(3)] = "550 5.1.1 No such user"
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, batch_size=10,
                      breaker_sends=10)  # fmt: skip
    try:
        first = rt.dispatcher.run_pass(T0)
        # It trips once the first batch is recorded; the batch then on the wire still goes.
        assert first.bounced == 1 and first.sent in (9, 19)
        assert held(database_url) == {"bone-health"}
        assert "paused by its circuit breaker: hard-bounce rate 10.00%" in caplog.text
        assert b'drip_course_held{course="bone-health"} 1.0' in rt.metrics.text(
            rt.sessions, lambda: T0)[0]  # fmt: skip
        assert rt.dispatcher.run_pass(T0 + timedelta(hours=1)).total == 0, "held: none go"

        assert main(["course", "holds"]) == 0
        assert "bone-health\theld since" in capsys.readouterr().out
        assert main(["course", "resume", "bone-health", "--now", "2026-03-02T07:00:00Z"]) == 0
        assert capsys.readouterr().out == "bone-health: resumed\n"
        assert held(database_url) == set()
        again = rt.dispatcher.run_pass(T0 + timedelta(hours=1))
        assert again.sent == 29 - first.sent, "the old bounce does not trip it again"
    finally:
        rt.close()
    assert delivery_states(database_url) == {DeliveryState.SENT: 29, DeliveryState.BOUNCED: 1}


def test_complaints_over_the_limit_trip_it(engine, database_url: str, tmp_path: Path,
                                           smtp_server) -> None:  # fmt: skip
    seed(database_url, 20, "bone-health", T0)
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, breaker_sends=20)
    try:
        assert rt.dispatcher.run_pass(T0).sent == 20
    finally:
        rt.close()
    limits = breaker.Limits(sends=20, complaint_rate=0.003)
    with Session(writer(engine)) as session, session.begin():
        assert breaker.weigh(session, "bone-health", limits) is None
        delivery = session.scalars(select(Delivery).limit(1)).one()
        session.add(FeedbackEvent(key="c1", kind=FeedbackKind.COMPLAINT, source="arf",
                                  recipient=reader(1), delivery_id=delivery.id,
                                  received_at=T0))  # fmt: skip
        session.flush()
        assert breaker.trip(session, "bone-health", limits, T0)
        assert not breaker.trip(session, "bone-health", limits, T0), "held once"
    assert held(database_url) == {"bone-health"}


@pytest.mark.parametrize(
    ("args", "message"),
    [(["course", "resume"], "give the SLUG"),
     (["course", "resume", "nope", "--now", "2026-03-02T07:00:00Z"], "unknown course 'nope'"),
     (["course", "resume", "bone-health", "--now", "tomorrow"], "not an ISO-8601")],
)  # fmt: skip
def test_resume_refuses_bad_input_in_one_line(env: None, capsys, args, message) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_resuming_a_course_not_held_changes_nothing(env: None, database_url: str, capsys):
    assert main(["course", "resume", "bone-health"]) == 0
    assert capsys.readouterr().out == "bone-health: not held; nothing to do\n"


def test_a_resume_while_workers_run_sends_each_held_lesson_once(
    env: None, database_url: str, smtp_server, tmp_path: Path, capsys
) -> None:
    """Two `drip run --no-web` workers loop over a held course (nothing goes); a resume from
    another process lets them send every lesson due, each once, in the passes that follow."""
    seed(database_url, 150, "bone-health", datetime(2026, 1, 1, tzinfo=UTC))
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        session.add(CourseHold(course_slug="bone-health", held=True, reason="test", held_at=T0))
    engine.dispose()
    settings = worker_env(database_url, smtp_server.url, tmp_path, batch_size=20,
                          tick_seconds=0.2, breaker_sends=10)  # fmt: skip
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start(["run", "--no-web"], settings, log) for log in logs]
    try:
        time.sleep(1.5)  # the workers pass over the held course a few times meanwhile
        assert smtp_server.messages == []
        assert main(["course", "resume", "bone-health"]) == 0
        smtp_server.wait_for(150, timeout=60)
    finally:
        for worker in workers:
            worker.terminate()
        reap(workers)
    assert len({m.envelope_recipients[0] for m in smtp_server.messages}) == 150
    assert len(smtp_server.messages) == 150, "each lesson once"
    assert "resumed" in capsys.readouterr().out


def test_resume_with_the_database_unreachable_is_exit_4_in_one_line(env: None, monkeypatch):
    monkeypatch.setenv("DRIP_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/x")
    done = subprocess.run([str(Path(DRIP)), "course", "resume", "bone-health"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert done.stderr.count("\n") == 1 and "secret" not in done.stderr
