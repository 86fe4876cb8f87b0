"""Whatever arguments or CSV a person gives `drip`, the answer is a message and an exit status:
never a traceback. Hypothesis writes the argument lists and the files."""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drip.cli import build_parser, main
from drip.transfer import COLUMNS

EXIT_STATUSES = {0, 1, 2, 3, 4}
WORDS = ["bone-health", "html", "eml", "text", "x.png", "x.xyz", "x", "-", "1", "7", "0", "-1",
         "99", "Europe/Paris", "2030-01-01T09:00:00Z", "9999-12-31T23:59:59", "a@example.com",
         "list.csv", "drip.db", "outbox", ".", ".."]  # fmt: skip
# Any text a shell can pass (no NUL, no lone surrogate), without '/' or '\': whatever a
# command writes stays in the test's folder.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00/\\"), max_size=24)
VALUE = st.one_of(st.sampled_from(WORDS), TEXT)
LIKELY = {  # per argument, values that get past the first checks, so commands run further
    "course": ["bone-health"], "slug": ["bone-health"], "email": ["a@example.com", "=b@x.org"],
    "to": ["a@example.com"], "now": ["2030-01-01T09:00:00Z", "2030-06-01", "1999-01-01"],
    "day": ["1", "7", "8"], "tz": ["Europe/Paris", "Asia/Tokyo"], "name": ["Ana", "=SUM(1)"],
    "file": ["list.csv", "-"], "output": ["out.csv", "-", "previews"], "path": [".", "x"],
    "plot": ["x.png", "x.xyz"],
    # webhook endpoints on loopback only (nothing listens on the discard port)
    "target": ["http://127.0.0.1:9/hooks", "1", "2"], "id": ["1", "2"],
    "events": ["lesson.sent", "subscriber.confirmed,course.completed", "lesson"],
}  # fmt: skip


def value_of(action: argparse.Action) -> st.SearchStrategy[list[str]]:
    """Mostly a likely value for this argument (three draws in four), else anything."""
    likely = LIKELY.get(action.dest) or [str(choice) for choice in action.choices or []]
    if not likely:
        return VALUE.map(lambda value: [value])
    good = st.sampled_from(likely)
    return st.one_of(good, good, good, VALUE).map(lambda value: [value])


def command_lines(parser: argparse.ArgumentParser) -> st.SearchStrategy[list[str]]:
    """Argument lists shaped like each command's (its positionals, any of its options, random
    values), so most reach the command itself; `run`, `serve` and `bounces serve` would not
    return."""
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return st.one_of(
        [command_line(name, command) for name, command in commands.choices.items()
         if name not in {"run", "serve"}]
    ).filter(lambda argv: argv[:2] != ["bounces", "serve"])  # fmt: skip


def command_line(name: str, command: argparse.ArgumentParser) -> st.SearchStrategy[list[str]]:
    parts: list[st.SearchStrategy[list[str]]] = [st.just([name])]
    for action in command._actions:
        if not action.option_strings:
            parts.append(value_of(action))
        elif action.dest != "help":
            parts.append(option_of(action))
    return st.tuples(*parts).map(lambda drawn: [word for part in drawn for word in part])


def option_of(action: argparse.Action) -> st.SearchStrategy[list[str]]:
    """The option with its value, or nothing (unless it is required)."""
    flag = action.option_strings[-1]
    with_value = (
        st.just([flag]) if action.nargs == 0 else value_of(action).map(lambda v: [flag, *v])
    )
    return with_value if action.required else st.one_of(st.just([]), with_value)


ARGUMENTS = st.one_of(
    command_lines(build_parser()),
    st.lists(st.one_of(st.sampled_from(["--version", "-v", "--help", "tick", "--now"]), VALUE)),
)
CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["a@example.com", "b@example.org", "active", "paused", "failed", "3",
                     "Europe/Paris", "=SUM(1)", "'=x", ""]),
)  # fmt: skip
HEADER = st.lists(st.sampled_from([*COLUMNS, "day", "", " Email ", "\ufeffemail"]), max_size=6)
CSV_TEXT = st.one_of(
    st.tuples(HEADER, st.lists(st.lists(CELL, max_size=7), max_size=6)).map(
        lambda drawn: as_csv([drawn[0], *drawn[1]])
    ),
    st.text(max_size=200),
)
SLOW = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def as_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    """A migrated SQLite database and an outbox in the current folder, and nothing else set."""
    for key in [k for k in os.environ if k.startswith("DRIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO("email\nz@example.com\n"))
    monkeypatch.setenv("DRIP_CONFIG", str(tmp_path / "absent.toml"))
    assert main(["init"]) == 0
    assert main(["subscribe", "a@example.com", "--course", "bone-health", "--confirmed"]) == 0
    return tmp_path


def answer(argv: list[str]) -> int:
    """The exit status drip ends with: main's return value, or argparse's SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        assert exc.code in (0, 2), exc
        return 0 if exc.code is None else int(exc.code)


@SLOW
@given(argv=ARGUMENTS)
def test_any_arguments_get_an_exit_status_never_a_traceback(folder, capsys, argv) -> None:
    status = answer(argv)
    event(f"{argv[0] if argv else ''}: exit status {status}")
    assert status in EXIT_STATUSES
    assert "Traceback" not in capsys.readouterr().err


@SLOW
@given(text=CSV_TEXT, confirmed=st.booleans(), from_stdin=st.booleans())
def test_any_csv_gets_an_exit_status_never_a_traceback(folder, capsys, monkeypatch, text,
                                                       confirmed, from_stdin):  # fmt: skip
    argv = ["import", "-" if from_stdin else "list.csv", "--course", "bone-health"]
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    (folder / "list.csv").write_text(text, encoding="utf-8", errors="surrogatepass")
    assert answer([*argv, *(["--confirmed"] if confirmed else [])]) in {0, 1, 2}
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert answer(["export", "--course", "bone-health"]) == 0


@SLOW
@given(data=st.binary(max_size=300))
def test_any_bytes_as_a_csv_file_get_an_exit_status(folder, capsys, data) -> None:
    (folder / "list.csv").write_bytes(data)
    assert answer(["import", "list.csv", "--course", "bone-health"]) in {0, 1, 2}
    assert "Traceback" not in capsys.readouterr().err
