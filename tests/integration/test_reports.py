"""Bounces and complaints reported after the relay accepted a lesson: stored once, acted on,
and the suppressed address gets nothing more, from any course."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import func, select
from starlette.testclient import TestClient

from drip import reports, stats, subscriptions, suppressions, transfer
from drip.cli import main
from drip.models import FeedbackEvent, FeedbackKind, SubscriptionState, SuppressionReason
from drip.reports import Outcome, Report
from drip.runtime import Runtime
from drip.web import create_app

from conftest import T0
from helpers import ALICE, BOB, deliveries, subscribe, subscription

LATER = T0 + timedelta(days=3)


def report(rt: Runtime, kind: FeedbackKind, key: str, **fields) -> Outcome:
    with rt.sessions() as session, session.begin():
        return reports.record(session, Report(kind=kind, source="dsn", key=key, **fields), LATER,
                              rt.courses)  # fmt: skip


def test_a_hard_bounce_ends_the_subscription_and_suppresses_the_address(
    runtime: Runtime, smtp_server
) -> None:
    alice, bob = subscribe(runtime, ALICE), subscribe(runtime, BOB)
    assert runtime.dispatcher.run_pass(T0).sent == 2
    (first,) = deliveries(runtime, alice)
    outcome = report(runtime, FeedbackKind.HARD_BOUNCE, "b1", recipient=ALICE, status="5.1.1",
                     diagnostic="550 5.1.1 no such user", delivery=(alice, 1))  # fmt: skip
    assert outcome is Outcome.ENDED
    assert subscription(runtime, alice).state is SubscriptionState.BOUNCED
    assert report(runtime, FeedbackKind.HARD_BOUNCE, "b1", recipient=ALICE) is Outcome.DUPLICATE
    with runtime.sessions() as session:
        entry = suppressions.find(session, ALICE.upper())
        assert entry is not None and entry.reason is SuppressionReason.HARD_BOUNCE
        event = session.scalars(select(FeedbackEvent)).one()
        assert (event.delivery_id, event.status) == (first.id, "5.1.1")
    sent_before = len(smtp_server.messages)
    runtime.dispatcher.run_pass(LATER)
    assert {m.envelope_recipients[0] for m in smtp_server.messages[sent_before:]} == {BOB}
    assert subscription(runtime, bob).state is SubscriptionState.ACTIVE


def test_the_message_id_finds_the_delivery_when_there_is_no_verp(runtime: Runtime, smtp_server):
    alice = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    (first,) = deliveries(runtime, alice)
    report(runtime, FeedbackKind.HARD_BOUNCE, "m1", recipient="someone-else@example.com",
           message_id=first.message_id.strip("<>"))  # fmt: skip
    assert subscription(runtime, alice).state is SubscriptionState.BOUNCED


def test_three_soft_bounces_in_a_row_count_as_hard(runtime: Runtime, smtp_server) -> None:
    alice = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    soft = {"recipient": ALICE, "status": "4.2.2", "delivery": (alice, 1)}
    assert report(runtime, FeedbackKind.SOFT_BOUNCE, "s1", **soft) is Outcome.RECORDED
    assert report(runtime, FeedbackKind.SOFT_BOUNCE, "s2", **soft) is Outcome.RECORDED
    report(runtime, FeedbackKind.DELIVERED, "d1", recipient=ALICE, delivery=(alice, 1))
    assert report(runtime, FeedbackKind.SOFT_BOUNCE, "s3", **soft) is Outcome.RECORDED
    assert subscription(runtime, alice).state is SubscriptionState.ACTIVE, "the count was reset"
    report(runtime, FeedbackKind.SOFT_BOUNCE, "s4", **soft)
    assert report(runtime, FeedbackKind.SOFT_BOUNCE, "s5", **soft) is Outcome.ENDED
    assert subscription(runtime, alice).state is SubscriptionState.BOUNCED


def test_a_complaint_unsubscribes_from_every_course(runtime: Runtime, smtp_server) -> None:
    first = subscribe(runtime, ALICE)
    with runtime.sessions() as session, session.begin():  # the same person, a second course
        sub = session.get(type(subscription(runtime, first)), first)
        assert sub is not None
        sub.course_slug = "bone-health-copy"
    second = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    assert report(runtime, FeedbackKind.COMPLAINT, "c1", recipient=ALICE) is Outcome.ENDED
    assert subscription(runtime, second).state is SubscriptionState.UNSUBSCRIBED
    with runtime.sessions() as session:
        assert suppressions.is_suppressed(session, ALICE)


def test_a_suppressed_address_is_marked_at_the_claim(runtime: Runtime, smtp_server) -> None:
    alice, bob = subscribe(runtime, ALICE), subscribe(runtime, BOB)
    with runtime.sessions() as session, session.begin():  # straight into the table
        session.add(suppressions.Suppression(
            email_key=ALICE, email=ALICE, reason=SuppressionReason.MANUAL, detail="",
            created_at=T0))  # fmt: skip
    assert runtime.dispatcher.run_pass(T0).sent == 1
    assert [m.envelope_recipients[0] for m in smtp_server.messages] == [BOB]
    assert subscription(runtime, alice).state is SubscriptionState.UNSUBSCRIBED
    assert subscription(runtime, bob).current_day == 1
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackEvent)) == 0


def test_drip_suppress_adds_lists_exports_and_removes(
    database_url: str, tmp_path, smtp_server, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("DRIP_DATABASE_URL", database_url)
    monkeypatch.setenv("DRIP_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("DRIP_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)
    assert main(["subscribe", ALICE, "--course", "bone-health", "--confirmed"]) == 0
    assert main(["suppress", "add", ALICE.upper(), "--detail", "asked by phone"]) == 0
    assert main(["suppress", "add", ALICE]) == 0
    assert "already suppressed" in capsys.readouterr().out
    assert main(["tick"]) == 0
    assert smtp_server.messages == [], "a suppressed address was sent a lesson"
    assert main(["suppress", "list"]) == 0
    listed = capsys.readouterr().out
    assert "asked by phone" in listed and "manual" in listed
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email,reason\nbob@example.net,complaint\nnot an address,\n")
    assert main(["suppress", "import", str(csv_file)]) == 1  # one bad line, named
    assert "list.csv:3" in capsys.readouterr().err
    assert main(["suppress", "export"]) == 0
    exported = capsys.readouterr().out
    assert "bob@example.net,complaint" in exported and ALICE in exported.lower()
    assert main(["suppress", "remove", ALICE]) == 0
    assert main(["suppress", "remove", ALICE]) == 2
    assert main(["suppress", "add"]) == 2


def test_rates_per_course_and_lesson_and_the_warnings(runtime: Runtime, smtp_server) -> None:
    ids = [subscribe(runtime, email) for email in (ALICE, BOB)]
    runtime.dispatcher.run_pass(T0)
    report(runtime, FeedbackKind.COMPLAINT, "c1", recipient=ALICE, delivery=(ids[0], 1))
    report(runtime, FeedbackKind.HARD_BOUNCE, "b1", recipient=BOB, delivery=(ids[1], 1))
    with runtime.sessions() as session:
        figures = stats.collect(session, LATER)
    by_window = {(r["window"], r["lesson"]): r for r in figures.rates}
    course = by_window[("last 1000 sends", None)]
    assert (course["sends"], course["bounces"], course["complaints"]) == (2, 1, 1)
    assert course["complaint_rate"] == 0.5
    assert by_window[("last 7 days", 1)]["complaints"] == 1
    assert any("over the 0.3% limit" in line for line in figures.warnings)
    runtime.clock = lambda: LATER
    runtime.settings = dataclasses.replace(runtime.settings, metrics_token="m")
    with TestClient(create_app(runtime)) as client:
        text = client.get("/metrics", headers={"Authorization": "Bearer m"}).text
    assert 'drip_complaint_rate{course="bone-health"} 0.5' in text
    assert 'drip_bounce_rate{course="bone-health"} 0.5' in text


def test_a_suppressed_address_signs_up_like_anyone_and_gets_nothing(
    runtime: Runtime, smtp_server, client: TestClient, tmp_path
) -> None:
    with runtime.sessions() as session, session.begin():
        suppressions.suppress(session, ALICE, SuppressionReason.COMPLAINT, "", T0, runtime.courses)
    form = {"email": ALICE, "course": "bone-health", "name": "Alice"}
    suppressed = client.post("/subscribe", data=form)
    fresh = client.post("/subscribe", data={**form, "email": BOB})
    assert suppressed.status_code == fresh.status_code == 200
    assert suppressed.text == fresh.text.replace(BOB, ALICE)
    assert [m.envelope_recipients[0] for m in smtp_server.messages] == [BOB]
    with runtime.sessions() as session:
        assert subscriptions.find_live(session, ALICE) == []
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(f"email\n{ALICE}\ncarol@example.org\n")
    with runtime.sessions() as session, session.begin(), csv_file.open() as file:
        rows, problems = transfer.read_rows(file, "list.csv")
        report = transfer.import_rows(session, runtime.course("bone-health"), rows,
                                      source="list.csv", now=T0, confirmed=True)  # fmt: skip
    assert (report.imported, report.suppressed, problems) == (1, 1, [])


def test_soft_bounces_of_one_delivery_past_the_give_up_time_count_as_hard(
    runtime: Runtime, smtp_server
) -> None:
    alice = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)

    def soft(key: str) -> Report:
        return Report(kind=FeedbackKind.SOFT_BOUNCE, source="dsn", key=key, recipient=ALICE,
                      status="4.2.2", delivery=(alice, 1))  # fmt: skip

    with runtime.sessions() as session, session.begin():
        assert reports.record(session, soft("early"), T0, runtime.courses) is Outcome.RECORDED
    late = T0 + reports.SOFT_BOUNCE_GIVE_UP
    with runtime.sessions() as session, session.begin():
        assert reports.record(session, soft("late"), late, runtime.courses) is Outcome.ENDED
    assert subscription(runtime, alice).state is SubscriptionState.BOUNCED
