"""The `drip` command: thin commands, one-line errors with exit status 2, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from drip.cli import main
from drip.config import BUNDLED_COURSES
from drip.models import Subscriber, Subscription, make_engine

from conftest import lesson_file, write_course


def count(database_url: str, model: type) -> int:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(model))
    engine.dispose()
    return int(n or 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["subscribe", "not-an-address", "--course", "bone-health"], "not a valid email address"),
        (["subscribe", "a@example.com", "--course", "nope"], "unknown course 'nope'"),
        (["subscribe", "a@example.com", "--course", "bone-health", "--tz", "Moon/Base"],
         "not a known time zone"),
        (["tick", "--now", "yesterday"], "not an ISO-8601"),
        (["unsubscribe", "nobody@example.com"], "has no live subscription"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_written(env, database_url, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("drip: ") and message in err
    assert count(database_url, Subscriber) == 0 and count(database_url, Subscription) == 0


def test_subscribe_confirmed_tick_and_list(env, database_url, smtp_server, capsys) -> None:
    assert main(["subscribe", "Ana@Example.com", "--course", "bone-health", "--name", "Ana",
                 "--tz", "Europe/Lisbon", "--confirmed"]) == 0  # fmt: skip
    assert main(["tick", "--now", "2030-05-06T10:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "active in bone-health" in out and "sent 1, deferred 0, bounced 0" in out
    (message,) = smtp_server.messages
    assert message.envelope_recipients == ["Ana@example.com"]
    assert main(["subscribers"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[1].split("\t")[1:] == [
        "Ana@example.com",
        "bone-health",
        "active",
        "1",
        "2030-05-07 09:00",
        "Europe/Lisbon",
    ]
    # the same address in another case is the same subscriber
    assert main(["subscribe", "ana@EXAMPLE.com", "--course", "bone-health", "--confirmed"]) == 0
    assert count(database_url, Subscriber) == 1 and count(database_url, Subscription) == 1


def test_subscribe_unconfirmed_sends_a_confirmation(env, database_url, smtp_server, capsys):
    assert main(["subscribe", "bo@example.com", "--course", "bone-health"]) == 0
    (message,) = smtp_server.messages
    body = message.message.get_body(("plain",)).get_content()
    assert "https://drip.example.org/confirm/" in body
    assert main(["tick", "--now", "2030-05-06T10:00:00Z"]) == 0
    assert "sent 0" in capsys.readouterr().out and len(smtp_server.messages) == 1


def test_pause_resume_unsubscribe(env, capsys) -> None:
    assert main(["subscribe", "c@example.com", "--course", "bone-health", "--confirmed"]) == 0
    assert main(["pause", "c@example.com"]) == 0
    assert main(["resume", "c@example.com", "--course", "bone-health"]) == 0
    assert main(["unsubscribe", "c@example.com"]) == 0
    out = capsys.readouterr().out
    assert "paused in bone-health" in out and "unsubscribed in bone-health" in out
    assert main(["pause", "c@example.com"]) == 2


def test_preview_formats(env, capsys) -> None:
    assert main(["preview", "bone-health", "2", "--format", "html"]) == 0
    assert "<html" in capsys.readouterr().out
    assert main(["preview", "bone-health", "7", "--format", "text"]) == 0
    assert "Course complete" in capsys.readouterr().out
    assert main(["preview", "bone-health", "1", "--format", "eml"]) == 0
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in capsys.readouterr().out
    assert main(["preview", "bone-health", "9"]) == 2


def test_send_test_goes_through_the_transport(env, smtp_server, capsys) -> None:
    assert main(["send-test", "bone-health", "3", "--to", "author@example.com"]) == 0
    (message,) = smtp_server.messages
    assert message.envelope_recipients == ["author@example.com"]


def test_check_reports_problems_with_exit_1(tmp_path: Path, capsys) -> None:
    folder = write_course(tmp_path / "c", days=2)
    (folder / "02.md").unlink()
    (folder / "03.md").write_text("---\nday: 3\nsubject: S\ntitle: T\n---\nx\n", encoding="utf-8")
    assert main(["check", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "day 2 is missing" in err and f"{folder / '03.md'}:1: teaser is required" in err
    assert main(["check", str(write_course(tmp_path / "ok"))]) == 0
    assert capsys.readouterr().out.startswith("ok: tiny: 'Tiny Course', 3 lessons")


def test_check_and_preview_report_template_errors_in_one_line(tmp_path: Path) -> None:
    """The real `drip` process: what would fail at send time fails `drip check`, one line per
    problem with file and line, and `drip preview` says it in one line; never a traceback."""
    drip = Path(sys.executable).parent / "drip"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    run = lambda *a, **more: subprocess.run([str(drip), *a], cwd=tmp_path,  # noqa: E731
        env=env | more, capture_output=True, text=True, timeout=60)  # fmt: skip
    folder = write_course(tmp_path / "broken", days=3)
    (folder / "02.md").write_text(lesson_file(2, body="Hi\n\n{{ day / 0 }}\n"), encoding="utf-8")
    (folder / "03.md").write_text(lesson_file(3, body="{{ first_name.nope }}\n"), encoding="utf-8")
    checked = run("check", str(folder))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr + checked.stdout
    assert checked.stderr.splitlines() == [
        f"{folder / '02.md'}:10: template error: ZeroDivisionError: division by zero",
        f"{folder / '03.md'}:8: template error: UndefinedError: "
        "'str object' has no attribute 'nope'",
        "2 problem(s) found",
    ]
    previewed = run("preview", "tiny", "2", DRIP_COURSES_DIR=str(folder))
    assert previewed.returncode == 1 and previewed.stdout == ""
    assert (
        previewed.stderr
        == f"drip: {folder / '02.md'}:10: template error: ZeroDivisionError: division by zero\n"
    )
    (folder / "02.md").write_text(
        lesson_file(2, body='{% include "/etc/passwd" %}\n'), encoding="utf-8"
    )
    checked = run("check", str(folder))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert f"{folder / '02.md'}:8: {{% include %}} is not allowed" in checked.stderr
    assert run("check", str(write_course(tmp_path / "sound"))).returncode == 0


def test_the_installed_command_runs(tmp_path: Path) -> None:
    """The console script itself, in a fresh process, on the embedded defaults."""
    drip = Path(sys.executable).parent / "drip"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    run = lambda *a: subprocess.run([str(drip), *a], cwd=tmp_path, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run("tick").returncode == 1 and "drip init" in run("tick").stderr
    assert run("init").returncode == 0 and (tmp_path / "drip.db").is_file()
    assert (
        run("subscribe", "x@example.com", "--course", "bone-health", "--confirmed").returncode == 0
    )
    ticked = run("tick")
    assert ticked.returncode == 0 and "sent 1" in ticked.stdout, ticked.stderr
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    assert b"Subject: " in eml.read_bytes()
    assert run("check").stdout.startswith("ok: bone-health")


def test_a_change_that_fails_part_way_changes_nothing(env, tmp_path: Path, capsys, monkeypatch):
    """One address in two courses, one of them no longer loaded: the unsubscribe is refused
    before either subscription changes."""
    both, only_bones = tmp_path / "both", tmp_path / "bones"
    for folder in (both, only_bones):
        shutil.copytree(BUNDLED_COURSES / "bone-health", folder / "bone-health")
    write_course(both / "tiny")
    monkeypatch.setenv("DRIP_COURSES_DIR", str(both))
    for slug in ("bone-health", "tiny"):
        assert main(["subscribe", "d@example.com", "--course", slug, "--confirmed"]) == 0
    monkeypatch.setenv("DRIP_COURSES_DIR", str(only_bones))
    capsys.readouterr()
    for command in ("unsubscribe", "pause"):
        assert main([command, "d@example.com"]) == 2
        assert "unknown course 'tiny'" in capsys.readouterr().err
    assert main(["subscribers"]) == 0
    states = [line.split("\t")[3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert states == ["active", "active"]


def test_import_help_names_the_real_columns() -> None:
    drip = Path(sys.executable).parent / "drip"
    shown = subprocess.run([str(drip), "import", "--help"], capture_output=True, text=True,
                           timeout=60).stdout  # fmt: skip
    assert "email, name, timezone, state, current_day" in " ".join(shown.split())
    assert "- for standard input" in " ".join(shown.split())
