"""A course in German, through the real app in process: the pages about that one course (the
signup answer, confirm, preferences, pace, unsubscribe) speak German, write dates the German
way and say lang="de"; the list of every course stays English, and so does an English course.
A weekdays learner is never promised a lesson "Tomorrow"."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from drip.runtime import Runtime
from drip.web import create_app

from conftest import BUNDLED_COURSES, T0, Clock, PassNow, make_runtime
from helpers import ALICE, BOB, pace_link, subscribe, subscription

FRIDAY = datetime(2026, 3, 6, 15, tzinfo=UTC)  # 10:00 in New York, midnight in Tokyo


@pytest.fixture
def german(database_url: str, tmp_path: Path, smtp_server, clock: Clock) -> Iterator[Runtime]:
    """The bundled course with `language = "de"` in its course.toml."""
    courses = tmp_path / "courses"
    shutil.copytree(BUNDLED_COURSES, courses)
    with (courses / "bone-health" / "course.toml").open("a", encoding="utf-8") as toml:
        toml.write('language = "de"\n')
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, courses_dir=courses)
    rt.waker, rt.clock = PassNow(rt), clock
    yield rt
    rt.close()


@pytest.fixture
def german_client(german: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(german), base_url="https://drip.example.org") as client:
        yield client


def test_a_german_course_confirms_and_keeps_its_preferences_in_german(german, german_client):
    client = german_client
    sub = subscription(german, subscribe(german, ALICE, confirmed=False))
    offer = client.get(f"/confirm/{sub.confirm_token}")
    assert '<html lang="de">' in offer.text and "Ja, schicken Sie mir die Lektionen" in offer.text
    confirmed = client.post(f"/confirm/{sub.confirm_token}")
    assert "Sie sind dabei: Stronger Bones in Seven Days" in confirmed.text
    assert "Lektion 2 kommt am Dienstag, 3. März 2026, 09:00 (America/New_York)" in confirmed.text
    preferences = client.get(f"/preferences/{sub.manage_token}")
    assert '<html lang="de">' in preferences.text and "Ihre Einstellungen" in preferences.text
    assert "aktiv" in preferences.text
    assert "Lektion 2: Dienstag, 3. März 2026, 09:00" in preferences.text
    assert "Nächste Lektion jetzt senden" in preferences.text and "Zeitzone" in preferences.text
    form = {"action": "schedule", "send_time": "25:99", "timezone": "UTC"}
    bad = client.post(f"/preferences/{sub.manage_token}", data=form)
    assert bad.status_code == 422 and "Geben Sie die Uhrzeit als HH:MM an" in bad.text
    leave = client.get(f"/unsubscribe/{sub.unsubscribe_token}")
    assert "Von Stronger Bones in Seven Days abmelden?" in leave.text
    gone = client.post(f"/unsubscribe/{sub.unsubscribe_token}")
    assert '<html lang="de">' in gone.text and "Sie sind abgemeldet" in gone.text


def test_german_pace_pages_and_the_signup_answer(german, german_client, smtp_server, clock):
    client = german_client
    subscribe(german, ALICE)
    assert german.dispatcher.run_pass(clock.now).sent == 1
    path = pace_link(smtp_server.messages[0], "snooze")
    offer = client.get(path)
    assert '<html lang="de">' in offer.text and "7 Tage Pause" in offer.text
    done = client.post(path, data={"at": offer.text.split('name="at" value="')[1].split('"')[0],
                                   "days": "7"})  # fmt: skip
    assert "Keine Lektionen bis Montag, 9. März 2026, 09:00 (America/New_York)" in done.text
    wrong = client.get(path.replace("days=7", "days=2"))
    assert wrong.status_code == 422 and "Dieser Link funktioniert nicht" in wrong.text
    assert "Eine Pause dauert 1, 3, 7, 14 Tage." in wrong.text
    answer = client.post("/subscribe", data={"email": "neu@example.de", "course": "bone-health"})
    assert '<html lang="de">' in answer.text and "Sehen Sie in Ihr Postfach" in answer.text
    index = client.get("/")
    assert '<html lang="en">' in index.text and "lessons by email" in index.text
    unknown = client.get("/preferences/not-a-token")
    assert unknown.status_code == 404 and "This link does not work" in unknown.text


def test_an_english_course_reads_as_before(client, runtime, smtp_server, clock) -> None:
    sub = subscription(runtime, subscribe(runtime, ALICE, confirmed=False))
    confirmed = client.post(f"/confirm/{sub.confirm_token}")
    assert '<html lang="en">' in confirmed.text
    assert "You're in: Stronger Bones in Seven Days" in confirmed.text, "an apostrophe escaped"
    assert "Lesson 2 arrives on Tuesday, 3 March 2026, 09:00 (America/New_York)" in confirmed.text
    page = client.get(f"/preferences/{sub.manage_token}").text
    assert "Your preferences" in page and "0 of 7 lessons received" in page and "active" in page


def test_a_weekdays_learner_reads_next_time_on_a_friday(runtime, smtp_server) -> None:
    """Bob gets every day's lesson: "Tomorrow". Alice asked for weekdays: on a Friday the next
    one comes on Monday, so hers says "Next time" (the same lesson, prepared for each kind)."""
    alice, bob = subscribe(runtime, ALICE, now=FRIDAY), subscribe(runtime, BOB, now=FRIDAY)
    from drip.models import Subscription

    with runtime.sessions() as session, session.begin():
        found = session.get(Subscription, alice)
        assert found is not None
        found.cadence = "weekdays"
    assert runtime.dispatcher.run_pass(FRIDAY).sent == 2
    texts = {m.envelope_recipients[0]: m.message.get_body(("plain",)).get_content()
             for m in smtp_server.wait_for(2)}  # fmt: skip
    assert "Next time: " in texts[ALICE] and "Tomorrow" not in texts[ALICE]
    assert "Tomorrow: " in texts[BOB]
    assert subscription(runtime, bob).cadence is None


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    action=st.sampled_from(["schedule", "switch", "pause", "x", ""]) | st.text(max_size=12),
    value=st.text(max_size=40),
)
def test_hostile_preferences_input_gets_a_german_answer(german, german_client, action, value):
    """Whatever is posted, a German answer with no server error, and nothing typed reaches the
    page unescaped."""
    if not _has_subscription(german):
        subscribe(german, ALICE)
    sub = subscription(german, 1)
    answer = german_client.post(f"/preferences/{sub.manage_token}",
                                data={"action": action, "send_time": value, "timezone": value,
                                      "cadence": value, "course": value})  # fmt: skip
    assert answer.status_code in (200, 303, 422), answer.text[:300]
    if answer.headers["content-type"].startswith("text/html"):  # not the body's own refusal
        assert '<html lang="de">' in answer.text and "<script" not in answer.text.lower()


def _has_subscription(rt: Runtime) -> bool:
    from sqlalchemy import func, select

    from drip.models import Subscription

    with rt.sessions() as session:
        return bool(session.scalar(select(func.count()).select_from(Subscription)))


def test_a_german_page_reads_while_a_lesson_is_being_sent(german, german_client, smtp_server):
    """A pass holds the subscription (a slow relay); its German preferences page still shows."""
    sub = subscription(german, subscribe(german, ALICE))
    smtp_server.stall_seconds = 1.0
    sending = threading.Thread(target=german.dispatcher.run_pass, args=(T0,))
    sending.start()
    page = german_client.get(f"/preferences/{sub.manage_token}")
    sending.join()
    assert page.status_code == 200 and "Ihre Einstellungen" in page.text
    assert "Lektion 2: Dienstag, 3. März 2026, 09:00" in page.text
