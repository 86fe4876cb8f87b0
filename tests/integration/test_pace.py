"""The learner's pace links, against the real app, database and SMTP server: a GET shows one
button and changes nothing, a POST acts once, and what it asks for goes out."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from drip import pace
from drip.models import PaceAction, Subscription, SubscriptionState
from drip.runtime import Runtime

from conftest import T0, Clock
from fleet import DRIP, start_drip, stop
from helpers import (
    ALICE,
    confirm_path,
    deliveries,
    hidden_fields,
    lesson_day,
    pace_link,
    stamp_of,
    subscribe,
    subscription,
)


def started(runtime: Runtime, clock: Clock) -> int:
    """Alice, with lesson 1 received."""
    sub_id = subscribe(runtime, ALICE)
    assert runtime.dispatcher.run_pass(clock.now).sent == 1
    return sub_id


def actions(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(PaceAction)) or 0


def press(client: TestClient, path: str, **form: str):
    """What a person does: open the link, then press its one button."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={**hidden_fields(page.text), **form})


def test_next_now_sends_the_next_lesson_once(client, runtime, smtp_server, clock) -> None:
    sub_id = started(runtime, clock)
    path = pace_link(smtp_server.messages[0], "next")
    before = subscription(runtime, sub_id)
    page = client.get(path)
    assert page.status_code == 200 and "Send me the next lesson now" in page.text
    assert subscription(runtime, sub_id).next_due_at == before.next_due_at, "the GET changed it"
    stamp = stamp_of(page.text)
    clock.now = T0 + timedelta(hours=1)
    done = client.post(path, data={"at": stamp})
    assert done.status_code == 200 and "Lesson 2 is on its way" in done.text
    again = client.post(path, data={"at": stamp})  # a double click
    assert again.status_code == 200 and "Nothing more to do" in again.text
    assert actions(runtime) == 1
    assert runtime.dispatcher.run_pass(clock.now).sent == 1
    assert lesson_day(runtime, smtp_server.messages[1].message["Subject"]) == 2
    stale = client.post(path, data={"at": stamp})  # lesson 1's link, after lesson 2
    assert stale.status_code == 200 and "you have had lesson 2 since" in stale.text
    after = subscription(runtime, sub_id)
    assert after.current_day == 2 and after.next_due_at == datetime(2026, 3, 3, 14, tzinfo=UTC)
    assert runtime.dispatcher.run_pass(clock.now).sent == 0, "a second lesson went out"


def test_snooze_keeps_lessons_away_for_a_week(client, runtime, smtp_server, clock) -> None:
    sub_id = started(runtime, clock)
    done = press(client, pace_link(smtp_server.messages[0], "snooze"))
    assert done.status_code == 200 and "No lessons until Monday, 9 March 2026, 09:00" in done.text
    for days in range(1, 7):
        assert runtime.dispatcher.run_pass(T0 + timedelta(days=days)).sent == 0
    assert runtime.dispatcher.run_pass(datetime(2026, 3, 9, 13, tzinfo=UTC)).sent == 1
    assert subscription(runtime, sub_id).current_day == 2


def test_restart_and_jump_send_received_lessons_again(client, runtime, smtp_server, clock):
    sub_id = started(runtime, clock)
    for day in (1, 2):  # 10:00 in New York
        runtime.dispatcher.run_pass(T0 + timedelta(days=day, hours=9))
    assert subscription(runtime, sub_id).current_day == 3
    done = press(client, pace_link(smtp_server.messages[-1], "restart"))
    assert done.status_code == 200 and "Lesson 1 is on its way" in done.text
    assert runtime.dispatcher.run_pass(clock.now + timedelta(days=3)).sent == 1
    assert lesson_day(runtime, smtp_server.messages[-1].message["Subject"]) == 1
    assert [d.day for d in deliveries(runtime, sub_id)] == [1, 2, 3], "one row per lesson"
    token = subscription(runtime, sub_id).manage_token
    preferences = client.get(f"/preferences/{token}")
    assert preferences.text.count("Send it again, go on from there") == 3
    jump = f"/pace/{token}/jump/1"
    refused = client.post(jump, data={"at": stamp_of(preferences.text), "to": "5"})
    assert refused.status_code == 409 and "Only a lesson you have received" in refused.text
    done = client.post(jump, data={"at": stamp_of(preferences.text), "to": "3"})
    assert done.status_code == 200 and "Lesson 3 is on its way" in done.text
    assert runtime.dispatcher.run_pass(clock.now + timedelta(days=3)).sent == 1
    assert lesson_day(runtime, smtp_server.messages[-1].message["Subject"]) == 3
    assert subscription(runtime, sub_id).current_day == 3


def test_the_last_lesson_offers_no_next(client, runtime, smtp_server, clock) -> None:
    sub_id = started(runtime, clock)
    with runtime.write_sessions() as session, session.begin():
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        sub.current_day = runtime.course("bone-health").total_days
    page = client.get(f"/pace/{sub.manage_token}/next/{sub.current_day}")
    assert page.status_code == 409 and "You have had every lesson" in page.text
    text = runtime.renderer.page(runtime.course("bone-health"), 7, _recipient(sub))
    assert "Send me the next lesson now" not in text and "Start again from lesson 1" in text


def _recipient(sub: Subscription):
    from drip.emails import Recipient

    return Recipient(ALICE, "", sub.unsubscribe_token, sub.manage_token)


def test_an_action_waits_for_a_lesson_being_sent(client, runtime, smtp_server, clock) -> None:
    """Concurrency with sending: while a worker holds the subscription (the relay is slow),
    an action is refused with 409 and changes nothing; afterwards it acts."""
    sub_id = started(runtime, clock)
    path = pace_link(smtp_server.messages[0], "restart")
    stamp = stamp_of(client.get(path).text)
    smtp_server.stall_seconds = 1.5
    due = datetime(2026, 3, 3, 14, tzinfo=UTC)
    sending = threading.Thread(target=runtime.dispatcher.run_pass, args=(due,))
    sending.start()
    leased = lambda: subscription(runtime, sub_id).leased_until is not None  # noqa: E731
    while sending.is_alive() and not leased():
        sending.join(0.02)
    clock.now = due
    busy = client.post(path, data={"at": stamp})
    sending.join()
    assert busy.status_code == 409 and "being sent to you right now" in busy.text
    assert subscription(runtime, sub_id).current_day == 2 and actions(runtime) == 0
    smtp_server.stall_seconds = 0
    done = press(client, pace_link(smtp_server.messages[1], "restart"))
    assert done.status_code == 200 and subscription(runtime, sub_id).current_day == 0


def test_a_relay_that_refuses_defers_the_lesson_asked_for(client, runtime, smtp_server, clock):
    """The relay is down when 'next now' is pressed: the page answers, the lesson is deferred
    and goes out once the relay is back."""
    sub_id = started(runtime, clock)
    smtp_server.fail_all = "421 4.3.2 Try again later"
    done = press(client, pace_link(smtp_server.messages[0], "next"))
    assert done.status_code == 200
    assert runtime.dispatcher.run_pass(clock.now).deferred == 1
    smtp_server.fail_all = None
    assert runtime.dispatcher.run_pass(clock.now + timedelta(minutes=5)).sent == 1
    assert subscription(runtime, sub_id).current_day == 2


def test_ended_subscriptions_and_bad_parameters(client, runtime, smtp_server, clock) -> None:
    sub_id = started(runtime, clock)
    token = subscription(runtime, sub_id).manage_token
    assert client.get(f"/pace/{token}/snooze/1?days=5").status_code == 422
    assert client.get(f"/pace/{token}/snooze/1?days=x").status_code == 422
    assert client.get(f"/pace/{token}/jump/1?to=99999999").status_code == 422
    assert client.get(f"/pace/{token}/fly/1").status_code == 422
    assert client.get(f"/pace/{token}/next/999").status_code == 422
    assert client.get("/pace/nope/next/1").status_code == 404
    client.post(f"/unsubscribe/{subscription(runtime, sub_id).unsubscribe_token}")
    assert subscription(runtime, sub_id).state is SubscriptionState.UNSUBSCRIBED
    ended = client.get(f"/pace/{token}/next/1")
    assert ended.status_code == 409 and "This subscription is unsubscribed" in ended.text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    action=st.sampled_from([*pace.ACTIONS, "x", ""]),
    lesson=st.sampled_from(["0", "1", "2", "-1", "%00", "9" * 30, "\u0661"]) | st.text(max_size=8),
    form=st.dictionaries(st.sampled_from(["at", "days", "to"]),
                         st.text(max_size=20) | st.sampled_from(["7", "1", "0", "2"])),
)  # fmt: skip
def test_hostile_pace_requests_get_no_5xx(client, runtime, clock, action, lesson, form) -> None:
    if not actions(runtime) and not _has_alice(runtime):
        started(runtime, clock)
    with runtime.sessions() as session:
        token = session.scalars(select(Subscription.manage_token)).first()
    from urllib.parse import quote

    path = f"/pace/{token}/{quote(action, safe='') or 'next'}/{quote(lesson, safe='')}"
    for answer in (client.get(path, params=form), client.post(path, data=form)):
        assert answer.status_code in (200, 404, 409, 422), (path, form, answer.text[:300])


def _has_alice(runtime: Runtime) -> bool:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Subscription)) != 0


def test_next_now_through_drip_run_is_sent_at_once(database_url, smtp_server, tmp_path) -> None:
    """The real service, with a tick of an hour: confirming and 'next now' wake it, so lesson 1
    and then lesson 2 arrive within seconds. /metrics and `drip stats` count the action."""
    process, base = start_drip("run", database_url, smtp_server, tmp_path, tick_seconds=3600,
                               metrics_token="pace-metrics")  # fmt: skip
    try:
        httpx.post(f"{base}/subscribe", json={"email": "run@example.com", "course": "bone-health"})
        httpx.post(base + confirm_path(smtp_server))
        lesson_one = smtp_server.wait_for(2, timeout=20)[1]
        path = pace_link(lesson_one, "next")
        page = httpx.get(base + path)
        assert page.status_code == 200
        done = httpx.post(base + path, data=hidden_fields(page.text))
        assert done.status_code == 200 and "Lesson 2 is on its way" in done.text
        lesson_two = smtp_server.wait_for(3, timeout=20)[2]
        bearer = {"Authorization": "Bearer pace-metrics"}
        metrics = httpx.get(f"{base}/metrics", headers=bearer).text
    finally:
        stop(process)
    assert "Day 2" in lesson_two.message["Subject"]
    assert 'drip_pace_actions_total{action="next",course="bone-health",lesson="1"} 1.0' in metrics
    figures = subprocess.run(
        [DRIP, "stats", "--json"], env={**os.environ, "DRIP_DATABASE_URL": database_url},
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    counted = json.loads(figures.stdout)["pace"]
    assert counted == [{"course": "bone-health", "action": "next", "lesson": 1, "count": 1}]


def test_the_learner_chooses_days_and_a_time(client, runtime, smtp_server, clock) -> None:
    """Monday's lesson 1, then Monday-Wednesday-Friday at 07:30: lesson 2 on Wednesday."""
    sub_id = started(runtime, clock)
    path = f"/preferences/{subscription(runtime, sub_id).manage_token}"
    form = {"action": "schedule", "send_time": "07:30", "timezone": "America/New_York"}
    assert client.post(path, data={**form, "cadence": "fortnightly"}).status_code == 422
    assert client.post(path, data={**form, "cadence": "mwf"}).status_code == 200
    sub = subscription(runtime, sub_id)
    assert sub.cadence == "mwf" and sub.next_due_at == datetime(2026, 3, 4, 12, 30, tzinfo=UTC)
    assert 'value="mwf" selected' in client.get(path).text
    assert runtime.dispatcher.run_pass(datetime(2026, 3, 3, 23, tzinfo=UTC)).sent == 0
    assert runtime.dispatcher.run_pass(sub.next_due_at).sent == 1
    friday = datetime(2026, 3, 6, 12, 30, tzinfo=UTC)
    assert subscription(runtime, sub_id).next_due_at == friday
