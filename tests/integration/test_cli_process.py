"""The `drip` process itself: what it does with a closed pipe, standard input and output, a bad
setting or an unreachable database, and the exit statuses cron and scripts see."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from drip import __version__
from drip.cli import main
from drip.models import Subscriber, make_engine

DRIP = Path(sys.executable).parent / "drip"
UNREACHABLE = "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"


@pytest.fixture
def drip_env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """A fresh SQLite database with three subscribers, lessons going to an outbox folder; the
    same settings in this process (to set up and look, quickly) and for `drip` processes."""
    settings = {
        "DRIP_DATABASE_URL": f"sqlite:///{tmp_path / 'drip.db'}",
        "DRIP_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DRIP_CONFIG": str(tmp_path / "absent.toml"),
    }
    for key in [k for k in os.environ if k.startswith("DRIP_")]:
        monkeypatch.delenv(key)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    assert main(["init"]) == 0
    for i in range(3):
        assert main(["subscribe", f"p{i}@example.com", "--course", "bone-health"]) == 0
    return dict(os.environ)


def addresses(env: dict[str, str]) -> set[str]:
    engine = make_engine(env["DRIP_DATABASE_URL"])
    with engine.connect() as connection:
        found = set(connection.scalars(select(Subscriber.email)))
    engine.dispose()
    return found


def drip(env: dict[str, str], *args: str, input: str | None = None,
         stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([str(DRIP), *args], env=env, input=input, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=60)  # fmt: skip


def with_closed_stdout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`drip ARGS | head -0` without the race: the reading end is closed before drip starts."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return drip(env, *args, stdout=write_end)
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [["subscribers"], ["export", "--course", "bone-health"], ["stats", "--json"],
     ["preview", "bone-health", "1"], ["courses"], ["--help"], ["--version"]],
)  # fmt: skip
def test_a_closed_pipe_ends_quietly(drip_env, args) -> None:
    done = with_closed_stdout(drip_env, *args)
    assert done.returncode in (0, 141)
    assert done.stderr == "", "a traceback or an 'Exception ignored' message"


def test_drip_piped_into_head_ends_quietly(drip_env) -> None:
    """The case from the field: more output than a pipe holds, and a reader that stops."""
    local = "a-long-address-for-a-long-line-" * 2  # 1,000 lines of over 100 bytes: 100 kB
    rows = "email\n" + "".join(f"{local}{i}@example.com\n" for i in range(1000))
    assert drip(drip_env, "import", "-", "--course", "bone-health", input=rows).returncode == 0
    for command in ("subscribers", "export --course bone-health"):
        pipeline = f"'{DRIP}' {command} | head -1; echo status ${{PIPESTATUS[0]}} >&2"
        done = subprocess.run(["bash", "-c", pipeline], env=drip_env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.stdout.count("\n") == 1
        assert done.stderr in ("status 0\n", "status 141\n"), done.stderr


def test_version(drip_env) -> None:
    done = drip(drip_env, "--version")
    assert (done.returncode, done.stdout) == (0, f"drip {__version__}\n")


def test_import_from_standard_input_and_export_to_standard_output(drip_env) -> None:
    done = drip(drip_env, "import", "-", "--course", "bone-health",
                input="\ufeffemail,name\r\nq@example.com,Q\r\nbad,B\r\n")  # fmt: skip
    assert done.returncode == 1
    assert "imported 1, skipped 0 already known, 0 suppressed, bad 1" in done.stdout
    assert "<stdin>:3: " in done.stderr
    exported = drip(drip_env, "export", "--course", "bone-health", "--output", "-")
    assert exported.returncode == 0 and exported.stderr == ""
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["email"], r["name"]) for r in rows][-1] == ("q@example.com", "Q") and len(rows) == 4


def test_an_unreachable_database_is_one_line_with_the_password_masked(drip_env) -> None:
    done = drip(drip_env | {"DRIP_DATABASE_URL": UNREACHABLE}, "subscribers")
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1 and "secret" not in done.stderr
    assert done.stderr.startswith("drip: cannot use the database at ")
    assert "postgresql+psycopg://nobody:***@127.0.0.1:1/x" in done.stderr
    assert "Connection refused" in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("DRIP_BATCH_SIZE", "abc", "setting batch_size (DRIP_BATCH_SIZE)"),
        ("DRIP_SMTP_URL", "ftp://x", "the scheme must be smtp:// or smtps://"),
        ("DRIP_SMTP_URL", "smtp://user:secret@host:notaport", "smtp://user:***@host:notaport"),
        ("DRIP_SMTP_URL", "smtp://user:secret@host?tls=yes", "unknown option(s) tls"),
        ("DRIP_DATABASE_URL", "postgresql://u:secret@h:notaport/x", "postgresql://u:***@h"),
        ("DRIP_DATABASE_URL", "nonsense", "setting database_url (DRIP_DATABASE_URL)"),
    ],
)
def test_a_bad_setting_is_one_line_exit_2_nothing_written(drip_env, setting, value, message):
    done = drip(drip_env | {setting: value}, "subscribe", "new@example.com", "--course",
                "bone-health")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "secret" not in done.stderr and done.stdout == ""
    assert addresses(drip_env) == {"p0@example.com", "p1@example.com", "p2@example.com"}


def test_tick_exits_3_when_every_attempt_failed(drip_env, smtp_server) -> None:
    env = drip_env | {"DRIP_SMTP_URL": smtp_server.url}
    for i in range(3):
        assert main(["subscribe", f"a{i}@example.com", "--course", "bone-health",
                     "--confirmed", "--now", "2030-01-01T08:00:00Z"]) == 0  # fmt: skip
    smtp_server.fail_all = "421 4.3.2 Try again later"
    refused = drip(env, "tick", "--now", "2030-01-01T09:00:00Z")
    assert refused.returncode == 3 and "sent 0, deferred 3" in refused.stdout, refused.stderr
    smtp_server.fail_all = None
    smtp_server.reply_rcpt = {"a0@example.com": "550 5.1.1 No such user"}
    partly = drip(env, "tick", "--now", "2030-01-01T10:00:00Z")
    assert partly.returncode == 0 and "sent 2, deferred 0, bounced 1" in partly.stdout
    idle = drip(env, "tick", "--now", "2030-01-01T10:01:00Z")
    assert idle.returncode == 0 and "sent 0, deferred 0, bounced 0, failed 0" in idle.stdout
