"""The schedule a learner and an operator can see: `drip schedule EMAIL` and the preferences
page, with the zone, cadence and pauses applied."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from drip.cli import main

from conftest import T0
from helpers import ALICE, subscribe, subscription


def test_drip_schedule_shows_the_next_lessons_in_both_zones(env, capsys) -> None:
    assert main(["subscribe", ALICE, "--course", "bone-health", "--tz", "Europe/Lisbon",
                 "--confirmed", "--now", "2026-03-27T08:00:00"]) == 0  # fmt: skip
    assert main(["tick", "--now", "2026-03-27T08:00:00"]) == 0
    capsys.readouterr()
    assert main(["schedule", ALICE, "--tz", "America/New_York"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{ALICE} in bone-health: active, 1 received")
    assert [line.split("  = ") for line in lines[1:4]] == [  # Lisbon moves its clocks on the
        # 29th; New York has already moved
        [
            "  lesson 2: Sat 2026-03-28 09:00 (Europe/Lisbon)",
            "Sat 2026-03-28 05:00 (America/New_York)",
        ],
        [
            "  lesson 3: Sun 2026-03-29 09:00 (Europe/Lisbon)",
            "Sun 2026-03-29 04:00 (America/New_York)",
        ],
        [
            "  lesson 4: Mon 2026-03-30 09:00 (Europe/Lisbon)",
            "Mon 2026-03-30 04:00 (America/New_York)",
        ],
    ]
    assert main(["pause", ALICE, "--now", "2026-03-27T09:00:00"]) == 0
    capsys.readouterr()
    assert main(["schedule", ALICE, "--course", "bone-health"]) == 0
    assert "nothing is due while it is paused" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["schedule", "nobody@example.com"], "has no live subscription"),
     (["schedule", "not an address"], "not a valid email address"),
     (["schedule", ALICE, "--course", "nope"], "unknown course"),
     (["schedule", ALICE, "--tz", "Moon/Base"], "not a known time zone")],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(env, capsys, args, message) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_the_schedule_reads_while_a_lesson_is_being_sent(runtime, smtp_server, capsys) -> None:
    """A pass holds the subscription (a slow relay); the preferences page still shows it."""
    sub_id = subscribe(runtime, ALICE)
    smtp_server.stall_seconds = 1.0
    sending = threading.Thread(target=runtime.dispatcher.run_pass, args=(T0,))
    sending.start()
    from starlette.testclient import TestClient

    from drip.web import create_app

    with TestClient(create_app(runtime), base_url="https://drip.example.org") as client:
        page = client.get(f"/preferences/{subscription(runtime, sub_id).manage_token}")
        sending.join()
        assert page.status_code == 200
        after = client.get(f"/preferences/{subscription(runtime, sub_id).manage_token}")
    assert "Your next lessons" in after.text
    assert "Lesson 2: Tuesday, 3 March 2026, 09:00" in after.text  # New York
    assert subscription(runtime, sub_id).next_due_at == datetime(2026, 3, 3, 14, tzinfo=UTC)
