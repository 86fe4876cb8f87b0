"""What the operator sees: stats, the plot, metrics, progress; against a database the test fills."""

from __future__ import annotations

import dataclasses
import json
import struct
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from drip import stats
from drip.cli import main
from drip.runtime import Runtime
from drip.web import create_app

from conftest import T0
from helpers import ALICE, BOB, CAROL, subscribe
from smtp_server import free_port


@pytest.fixture
def history(runtime: Runtime, smtp_server) -> Runtime:
    """Alice: lessons 1 and 2; Bob: bounced; Carol: lesson 1, then lesson 2 deferred by a 421."""
    for email in (ALICE, BOB, CAROL):
        subscribe(runtime, email)
    smtp_server.reply_rcpt[BOB] = "550 5.1.1 No such user"
    assert runtime.dispatcher.run_pass(T0).sent == 2
    smtp_server.reply_rcpt[CAROL] = "421 4.7.0 Try later"
    later = T0 + timedelta(days=1, hours=12)  # past 09:00 in New York and Berlin
    result = runtime.dispatcher.run_pass(later)
    assert (result.sent, result.deferred) == (1, 1)
    return runtime


def test_collect_counts_states_sends_stuck_lessons_and_the_next_wave(history: Runtime) -> None:
    now = T0 + timedelta(days=1, hours=12, seconds=30)  # before the retry (about 1 min)
    with history.sessions() as session:
        figures = stats.collect(session, now)
    assert figures.by_state["active"] == 2 and figures.by_state["bounced"] == 1
    assert figures.by_state["completed"] == 0
    assert figures.sent_per_day[T0.date().isoformat()] == {"bone-health": 2}
    assert figures.sent_per_day[(T0 + timedelta(days=1)).date().isoformat()] == {"bone-health": 1}
    assert len(figures.sent_per_day) == stats.DAYS
    (stuck,) = figures.stuck
    assert (stuck.email, stuck.day, stuck.state) == (CAROL, 2, "deferred")
    assert stuck.reply.startswith("421")
    assert figures.due_now == 0 and figures.due_next_hour == 1  # Carol's retry
    assert figures.due_next_day == 2  # and Alice's lesson 3
    with history.sessions() as session:
        assert stats.collect(session, now, "other-course").by_state["active"] == 0


def test_stats_command_json_table_and_plot(history: Runtime, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("DRIP_DATABASE_URL", history.settings.database_url)
    now = (T0 + timedelta(days=1, hours=12)).isoformat()
    assert main(["stats", "--json", "--now", now]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["by_state"]["bounced"] == 1 and data["stuck"][0]["state"] == "deferred"
    assert main(["stats", "--now", now]) == 0
    table = capsys.readouterr().out
    assert "Subscriptions by state" in table and "421" in table and "Next wave" in table
    png = tmp_path / "sends.png"
    assert main(["stats", "--plot", str(png), "--now", now]) == 0
    data_png = png.read_bytes()
    assert data_png[:8] == b"\x89PNG\r\n\x1a\n" and data_png[12:16] == b"IHDR"
    assert struct.unpack(">II", data_png[16:24]) == (1000, 500)
    assert main(["stats", "--course", "nope"]) == 2


def test_metrics_endpoint_parses_and_counts(history: Runtime) -> None:
    clock = lambda: T0 + timedelta(days=3)  # noqa: E731
    history.clock = clock
    history.settings = dataclasses.replace(history.settings, metrics_token="s3cret-metrics")
    history.metrics.observe_pass(0.2, T0 + timedelta(days=2))
    with TestClient(create_app(history)) as client:
        for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret-metrics"}):
            refused = client.get("/metrics", headers=wrong)
            assert refused.status_code == 401 and "drip_" not in refused.text
        answer = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert answer.status_code == 200
    samples = {
        (s.name, s.labels.get("course")): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    assert samples[("drip_lessons_sent_total", "bone-health")] == 3
    assert samples[("drip_lessons_bounced_total", "bone-health")] == 1
    assert samples[("drip_lessons_failed_total", "bone-health")] == 0
    assert samples[("drip_deferrals_total", "bone-health")] == 1
    assert samples[("drip_due_backlog", "bone-health")] == 2
    assert ("drip_dispatch_pass_seconds_count", None) in samples
    by_state = {
        (s.labels["course"], s.labels["state"]): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if s.name == "drip_subscriptions"
    }
    assert by_state == {("bone-health", "active"): 2, ("bone-health", "bounced"): 1}
    assert (
        samples[("drip_last_successful_pass_timestamp_seconds", None)]
        == (T0 + timedelta(days=2)).timestamp()
    )


def test_metrics_are_not_on_the_public_port_but_on_their_own(history: Runtime) -> None:
    with TestClient(create_app(history)) as client:
        assert client.get("/metrics").status_code == 404, "no token set: not served at all"
    port = free_port()
    stop = history.metrics.serve("127.0.0.1", port, history.sessions, history.clock)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        stop()
    assert answer.status_code == 200 and "drip_subscriptions{" in answer.text


def test_progress_is_told_of_every_batch(runtime: Runtime, smtp_server) -> None:
    for email in (ALICE, BOB, CAROL):
        subscribe(runtime, email)
    seen: list[int] = []
    runtime.dispatcher.batch_size = 2
    runtime.dispatcher.progress = lambda batch: seen.append(batch.sent)
    assert runtime.dispatcher.run_pass(T0).sent == 3
    assert seen == [2, 1]


def test_json_log_lines_carry_ids_and_no_body(runtime: Runtime, smtp_server, capsys, monkeypatch):
    subscribe(runtime, ALICE)
    monkeypatch.setenv("DRIP_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("DRIP_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("DRIP_LOG_FORMAT", "json")
    assert main(["tick", "--now", T0.isoformat()]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    (sent,) = [entry for entry in lines if entry.get("event") == "sent"]
    assert sent["subscription_id"] == 1 and sent["day"] == 1 and sent["course"] == "bone-health"
    assert sent["message_id"] == str(smtp_server.messages[0].message["Message-ID"])
    assert all("Hi Alice" not in json.dumps(entry) for entry in lines)
    assert main(["pause", ALICE]) == 0
    (paused,) = [json.loads(x) for x in capsys.readouterr().err.splitlines() if '"state"' in x]
    assert (paused["event"], paused["state"], paused["subscription_id"]) == ("state", "paused", 1)
    monkeypatch.setenv("DRIP_LOG_FORMAT", "xml")
    assert main(["courses"]) == 2
