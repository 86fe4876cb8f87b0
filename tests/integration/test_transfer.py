"""Subscriber lists in and out: bad rows named by line, good rows in, one transaction."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from drip.cli import main
from drip.models import Subscription, SubscriptionState, make_engine

GOOD_AND_BAD = (
    "\ufeffemail,name,timezone,state,current_day\r\n"
    "ana@example.com,Ana,Europe/Lisbon,active,2\r\n"
    "not-an-address,Bad,,,\r\n"
    "bo@example.com,Bo,Mars/Olympus,,\r\n"
    "cy@example.com,Cy,,sleeping,\r\n"
    "di@example.com,Di,,active,99\r\n"
    "ed@example.com,Ed,,unsubscribed,3\r\n"
    "fay@example.com,,Asia/Tokyo,,\r\n"
)


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch) -> str:
    monkeypatch.setenv("DRIP_DATABASE_URL", database_url)
    monkeypatch.setenv("DRIP_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)
    return database_url


def subscriptions_in(database_url: str) -> dict[str, tuple[str, int, str]]:
    engine = make_engine(database_url)
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        found = {
            s.subscriber.email: (s.state.value, s.current_day, s.timezone)
            for s in session.query(Subscription)
        }
    engine.dispose()
    return found


def test_import_reports_bad_lines_and_keeps_the_good(env: str, tmp_path: Path, capsys) -> None:
    source = tmp_path / "list.csv"
    source.write_bytes(GOOD_AND_BAD.encode("utf-8"))
    assert main(["import", str(source), "--course", "bone-health"]) == 1
    captured = capsys.readouterr()
    assert "imported 3, skipped 0 already known, bad 4" in captured.out
    for line in (3, 4, 5, 6):
        assert f"{source}:{line}: " in captured.err
    assert "Mars/Olympus" in captured.err and "sleeping" in captured.err and "99" in captured.err
    assert subscriptions_in(env) == {
        "ana@example.com": ("active", 2, "Europe/Lisbon"),
        "ed@example.com": ("unsubscribed", 3, "UTC"),
        "fay@example.com": ("pending", 0, "Asia/Tokyo"),
    }
    assert main(["import", str(source), "--course", "bone-health"]) == 1
    assert "imported 0, skipped 3 already known" in capsys.readouterr().out


def test_export_then_import_elsewhere_round_trips(env, tmp_path: Path, capsys, monkeypatch):
    source = tmp_path / "list.csv"
    source.write_text(GOOD_AND_BAD, encoding="utf-8")
    main(["import", str(source), "--course", "bone-health", "--confirmed"])
    capsys.readouterr()
    exported = tmp_path / "out.csv"
    assert main(["export", "--course", "bone-health", "--output", str(exported)]) == 0
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
    assert [r["email"] for r in rows] == ["ana@example.com", "ed@example.com", "fay@example.com"]
    assert rows[2]["state"] == "active", "--confirmed makes rows without a state active"

    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("DRIP_DATABASE_URL", other)
    assert main(["init"]) == 0
    assert main(["import", str(exported), "--course", "bone-health"]) == 0
    assert subscriptions_in(other) == subscriptions_in(env)


def test_a_file_without_an_email_column_writes_nothing(env: str, tmp_path: Path, capsys) -> None:
    source = tmp_path / "list.csv"
    source.write_text("mail,name\na@example.com,A\n", encoding="utf-8")
    assert main(["import", str(source), "--course", "bone-health"]) == 1
    assert ":1: the header must name an 'email' column" in capsys.readouterr().err
    assert subscriptions_in(env) == {}
    assert main(["import", str(source), "--course", "nope"]) == 2


def test_imported_active_rows_get_their_next_lesson_at_once(env: str, tmp_path: Path) -> None:
    source = tmp_path / "list.csv"
    source.write_text("email,state,current_day\nana@example.com,active,2\n", encoding="utf-8")
    assert main(["import", str(source), "--course", "bone-health"]) == 0
    assert main(["tick"]) == 0
    eml = list((tmp_path / "outbox").glob("*.eml"))
    assert len(eml) == 1 and b"Subject: Day 3" in eml[0].read_bytes()
    assert subscriptions_in(env)["ana@example.com"][:2] == (SubscriptionState.ACTIVE.value, 3)
