"""Things breaking on the SMTP side, with `now` moved by the test: every lesson still arrives, in
order, once the server behaves again; retrying too long gives up, and `drip retry` resumes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from drip.cli import main
from drip.models import DeliveryState, SubscriptionState
from drip.runtime import Runtime

from conftest import T0, make_runtime
from helpers import ALICE, BOB, CAROL, deliveries, lesson_day, subscribe, subscription


@pytest.fixture
def fast_timeout_runtime(database_url: str, tmp_path: Path, smtp_server):
    """A client timeout short enough for a stalled server to trip it quickly."""
    rt = make_runtime(
        database_url, tmp_path, smtp_url=f"smtp://127.0.0.1:{smtp_server.port}?timeout=0.5"
    )
    yield rt
    rt.close()


def test_smtp_faults_delay_lessons_but_lose_or_reorder_none(fast_timeout_runtime, smtp_server):
    rt: Runtime = fast_timeout_runtime
    ids = {email: subscribe(rt, email) for email in (ALICE, BOB, CAROL)}
    deferred = 0
    stalled_ids: set[str] = set()
    now = T0
    smtp_server.drop_on_data = 1  # the first DATA of the first pass: hang up mid-message
    for tick in range(12 * 48):  # twelve days, a pass every 30 minutes
        # 421 to everything for 18 hours of day 2; 452 for Bob's mailbox over day 4
        smtp_server.fail_all = "421 4.3.2 Try again later" if 48 <= tick < 84 else None
        smtp_server.reply_rcpt = {BOB: "452 4.2.2 Mailbox full"} if 120 <= tick < 200 else {}
        stall = tick >= 240 and not stalled_ids  # from day 6, the next pass that sends stalls
        smtp_server.stall_seconds = 1.0 if stall else 0.0  # past the client's 0.5 s timeout
        result = rt.dispatcher.run_pass(now)
        deferred += result.deferred
        if stall and result.total:
            assert result.deferred == result.total, "a stalled send was recorded as sent"
            stalled_ids = {
                d.message_id
                for sub_id in ids.values()
                for d in deliveries(rt, sub_id)
                if d.updated_at == now and "timed out" in d.smtp_reply
            }
        now += timedelta(minutes=30)

    assert deferred >= 1 + 2 + 2, "the faults did not bite"
    by_recipient: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for message in smtp_server.messages:
        by_recipient[message.envelope_recipients[0]].append(
            (lesson_day(rt, str(message.message["Subject"])), str(message.message["Message-ID"]))
        )
    for email, got in by_recipient.items():
        days = [day for day, _ in got]
        distinct = [day for i, day in enumerate(days) if i == 0 or days[i - 1] != day]
        assert distinct == list(range(1, 8)), (email, days)
        repeated = {mid for i, (_, mid) in enumerate(got) if i and got[i - 1][1] == mid}
        # The one duplicate allowed: accepted by the server, reply never seen (the stall).
        assert repeated <= stalled_ids, (email, repeated)
    assert set(by_recipient) == {ALICE, BOB, CAROL}
    assert all(subscription(rt, i).state is SubscriptionState.COMPLETED for i in ids.values())
    assert stalled_ids, "the stall caught no message"


@pytest.fixture
def give_up_env(database_url: str, tmp_path: Path, smtp_server, monkeypatch) -> Runtime:
    settings = {
        "DRIP_DATABASE_URL": database_url,
        "DRIP_SMTP_URL": smtp_server.url,
        "DRIP_CONFIG": str(tmp_path / "absent.toml"),
        "DRIP_RETRY_BASE_SECONDS": "60",
        "DRIP_RETRY_CEILING_SECONDS": "120",
        "DRIP_RETRY_GIVE_UP_SECONDS": "300",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)
    return make_runtime(
        database_url, tmp_path, smtp_url=smtp_server.url, retry_base_seconds=60,
        retry_ceiling_seconds=120, retry_give_up_seconds=300,
    )  # fmt: skip


def test_retrying_too_long_fails_and_drip_retry_resumes(give_up_env, smtp_server, capsys):
    rt: Runtime = give_up_env
    try:
        sub_id, other = subscribe(rt, ALICE), subscribe(rt, BOB)
        smtp_server.reply_rcpt[ALICE] = "451 4.3.0 Local problem"
        # Failures 1..3 have waited 0, 60 and 180 s of backoff: deferred. Failure 4: 300 s, done.
        outcomes = [rt.dispatcher.run_pass(T0 + timedelta(hours=h)) for h in range(4)]
        assert [(r.deferred, r.failed) for r in outcomes] == [(1, 0), (1, 0), (1, 0), (0, 1)]
        (delivery,) = deliveries(rt, sub_id)
        assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 4)
        sub = subscription(rt, sub_id)
        assert (sub.state, sub.next_due_at, sub.current_day) == (SubscriptionState.FAILED, None, 0)
        assert rt.dispatcher.run_pass(T0 + timedelta(days=5)).total == 1  # Bob's day 2 only

        capsys.readouterr()
        assert main(["subscribers"]) == 0
        rows = {
            line.split("\t")[1]: line.split("\t") for line in capsys.readouterr().out.splitlines()
        }
        assert rows[ALICE][3] == "failed" and rows[BOB][3] == "active"
        assert main(["retry", BOB]) == 2, "Bob has nothing to retry"
        assert main(["retry", ALICE, "--course", "bone-health"]) == 0
        assert "due again" in capsys.readouterr().out

        smtp_server.reply_rcpt.clear()
        later = datetime.now(tz=T0.tzinfo) + timedelta(minutes=1)  # `drip retry` reads the clock
        assert rt.dispatcher.run_pass(later).sent == 2  # Alice's day 1, Bob's day 3
        (delivery,) = deliveries(rt, sub_id)
        assert (delivery.state, delivery.attempts) == (DeliveryState.SENT, 5)
        assert subscription(rt, sub_id).current_day == 1
        assert subscription(rt, other).current_day == 3
        assert main(["retry", ALICE]) == 2, "a retry of a healthy subscription did something"
    finally:
        rt.close()
