"""A course's circuit breaker: too many hard bounces (refused at SMTP time) or complaints over
its last sends hold the course's sending; `drip course resume` lets it go on, in due order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from drip import breaker
from drip.cli import main
from drip.models import Delivery, DeliveryState, FeedbackEvent, FeedbackKind, make_engine, writer

from conftest import T0, make_runtime
from fleet import delivery_states, reader, seed


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
