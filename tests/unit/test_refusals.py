"""What drip refuses and how it says so: settings checked when loaded, secrets masked in every
message and log line, the exit status of a pass, and CSV cells a spreadsheet would run."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drip.commands import parse_instant
from drip.commands.service import tick_status
from drip.config import Settings
from drip.endpoints import parse_smtp_url
from drip.errors import ConfigError, InvalidInput, mask_secrets
from drip.logs import JSONFormatter, MaskingFormatter
from drip.scheduler.record import PassResult
from drip.transfer import escape_cell, unescape_cell


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("smtp://user:secret@host:587", "smtp://user:***@host:587"),
        ("SMTP URL 'smtps://me%40x.com:p@ss@h:465?timeout=5'",
         "SMTP URL 'smtps://me%40x.com:***@h:465?timeout=5'"),
        ("postgresql+psycopg://drip:secret@db/drip and more",
         "postgresql+psycopg://drip:***@db/drip and more"),
        ("postgresql://db/x?password=secret&sslmode=require",
         "postgresql://db/x?password=***&sslmode=require"),
        ("host=db password=secret user=drip", "host=db password=*** user=drip"),
        ("smtp://apikey@host, mailto:a@b.c, smtp://host:25",
         "smtp://apikey@host, mailto:a@b.c, smtp://host:25"),
    ],
)  # fmt: skip
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DRIP_SMTP_URL": "ftp://x"}, "the scheme must be smtp:// or smtps://"),
        ({"DRIP_SMTP_URL": "smtp://user:secret@host:notaport"}, "'smtp://user:***@host:notaport'"),
        ({"DRIP_SMTP_URL": "smtp://user:secret@[::1"}, "Invalid IPv6 URL"),
        ({"DRIP_SMTP_URL": "smtp://u:secret@h?timeout=0"}, "timeout must be a positive number"),
        ({"DRIP_SMTP_URL": "smtp://u:secret@"}, "names no host"),
        ({"DRIP_DATABASE_URL": "postgresql://u:secret@h:port/x"}, "postgresql://u:***@h:port/x"),
        ({"DRIP_DATABASE_URL": "not a url"}, "setting database_url (DRIP_DATABASE_URL)"),
        ({"DRIP_BATCH_SIZE": "abc"}, "setting batch_size (DRIP_BATCH_SIZE)"),
    ],
)
def test_settings_refuse_bad_urls_when_loaded_without_showing_the_password(environ, message):
    with pytest.raises(ConfigError) as refused:
        Settings.load({"DRIP_CONFIG": "/nonexistent/drip.toml", **environ})
    assert message in str(refused.value) and "secret" not in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_good_smtp_url_is_parsed_once_for_everyone() -> None:
    relay = parse_smtp_url("smtp://me%40x.com:p%2Fss@relay.example.com:587?starttls=true")
    assert (relay.host, relay.port, relay.security, relay.username, relay.password) == (
        "relay.example.com", 587, "starttls", "me@x.com", "p/ss"
    )  # fmt: skip
    loaded = Settings.load({"DRIP_CONFIG": "/nonexistent", "DRIP_SMTP_URL": "smtps://h"})
    assert loaded.smtp_url == "smtps://h" and parse_smtp_url("smtps://h").port == 465


def test_log_lines_mask_passwords_in_text_and_json() -> None:
    try:
        raise ConnectionError("cannot reach smtp://u:secret@relay:587")
    except ConnectionError:
        record = logging.LogRecord("drip.send", logging.ERROR, __file__, 1,
                                   "retrying %s", ("postgresql://drip:secret@db/drip",),
                                   sys.exc_info())  # fmt: skip
    text = MaskingFormatter("%(message)s").format(record)
    assert "secret" not in text and "postgresql://drip:***@db/drip" in text
    assert "smtp://u:***@relay:587" in text, "the traceback's text is masked too"
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "retrying postgresql://drip:***@db/drip"
    assert "secret" not in entry["error"]


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (PassResult(), 0),
        (PassResult(sent=1, deferred=5, bounced=1, failed=1), 0),
        (PassResult(deferred=3), 3),
        (PassResult(bounced=1), 3),
        (PassResult(failed=2, deferred=1), 3),
        (PassResult(skipped=4), 0),
    ],
)
def test_tick_status(result: PassResult, status: int) -> None:
    assert tick_status(result) == status


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00", "1969-12-31"])
def test_now_is_refused_outside_the_calendar_the_schedule_can_reach(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_instant(text)
    assert parse_instant("2030-01-01T09:00:00+01:00").isoformat() == "2030-01-01T08:00:00+00:00"


@given(st.text())
def test_an_escaped_cell_is_never_a_formula_and_unescapes_to_itself(value: str) -> None:
    escaped = escape_cell(value)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(escaped) == value


def test_escaping_follows_owasp() -> None:
    assert escape_cell("=1+2") == "'=1+2" and escape_cell("-2+3") == "'-2+3"
    assert escape_cell("Ana") == "Ana" and unescape_cell("'Ana") == "'Ana"
    assert unescape_cell("'@SUM(1)") == "@SUM(1)" and unescape_cell("''=x") == "'=x"
