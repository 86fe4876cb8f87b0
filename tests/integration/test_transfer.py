"""Subscriber lists in and out: bad rows named by line, good rows in, one transaction."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from drip.cli import main
from drip.models import Subscriber, Subscription, SubscriptionState, make_engine

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
    assert "imported 3, skipped 0 already known, 0 suppressed, bad 4" in captured.out
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
    assert main(["import", str(source), "--course", "bone-health"]) == 2
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


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("email,name,day", "unknown column(s) 'day'"),
        ("Email,Nmae,Zone,current_day", "unknown column(s) 'nmae', 'zone'"),
        ("email,name,email", "column(s) named twice: email"),
    ],
)
def test_a_file_with_an_unknown_column_is_refused_whole(env, tmp_path, capsys, header, message):
    source = tmp_path / "list.csv"
    source.write_text(f"{header}\na@example.com,A,3\n", encoding="utf-8")
    assert main(["import", str(source), "--course", "bone-health"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{source}:1: {message}" in err
    assert subscriptions_in(env) == {}


def test_unreadable_files_are_refused_in_one_line(env: str, tmp_path: Path, capsys) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("email,name\na@example.com,Jos\xe9\n".encode("latin-1"))
    huge = tmp_path / "huge.csv"
    huge.write_text("email,name\na@example.com," + "x" * 200_000 + "\n", encoding="utf-8")
    for source, message in [(latin1, "not UTF-8 text"), (huge, "not CSV"),
                            (tmp_path / "absent.csv", "cannot open")]:  # fmt: skip
        assert main(["import", str(source), "--course", "bone-health"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert subscriptions_in(env) == {}


def test_a_row_with_a_stray_value_or_a_nul_is_a_bad_row(env, tmp_path: Path, capsys) -> None:
    source = tmp_path / "list.csv"
    source.write_text("email,name,\na@example.com,Smith, John\nb@example.com,B,\n\n,,\n"
                      "c@example.com,\x00\n")  # fmt: skip
    assert main(["import", str(source), "--course", "bone-health"]) == 1
    captured = capsys.readouterr()
    assert f"{source}:2: a value in column 3, which the header does not name" in captured.err
    assert f"{source}:6: a NUL character" in captured.err
    assert "imported 1, skipped 0 already known, 0 suppressed, bad 2" in captured.out
    assert set(subscriptions_in(env)) == {"b@example.com"}


FORMULAS = ['=HYPERLINK("http://evil")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\tTab",
            "'=already quoted", "''@twice", "'plain", "O'Brien"]  # fmt: skip
ESCAPED = ['\'=HYPERLINK("http://evil")', "'+cmd|' /C calc'!A0", "'@SUM(1)", "'-2+3", "'\tTab",
           "''=already quoted", "'''@twice", "'plain", "O'Brien"]  # fmt: skip


def test_export_escapes_formulas_and_import_takes_exactly_that_off(env, tmp_path, monkeypatch):
    for i, name in enumerate(FORMULAS):
        assert main(["subscribe", f"f{i}@example.com", "--course", "bone-health", f"--name={name}",
                     "--confirmed"]) == 0  # fmt: skip
    assert main(["subscribe", "=x@example.com", "--course", "bone-health", "--confirmed"]) == 0
    exported = tmp_path / "out.csv"
    assert main(["export", "--course", "bone-health", "--output", str(exported)]) == 0
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
    assert [row["name"] for row in rows[: len(FORMULAS)]] == ESCAPED
    assert rows[-1]["email"] == "'=x@example.com"

    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("DRIP_DATABASE_URL", other)
    assert main(["init"]) == 0
    assert main(["import", str(exported), "--course", "bone-health"]) == 0
    assert names_in(other) == names_in(env)
    assert sorted(names_in(other).values()) == sorted([*FORMULAS, ""])


def names_in(database_url: str) -> dict[str, str]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        found = {email: name for email, name in connection.execute(
            select(Subscriber.email, Subscriber.name))}  # fmt: skip
    engine.dispose()
    return found
