"""The subscriber's pages, over HTTP against the real app, database and SMTP server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from drip.models import Subscription, SubscriptionState
from drip.runtime import Runtime
from drip.web import create_app

from conftest import T0, Clock, PassNow
from helpers import link


def subscribe(client: TestClient, email: str = "ana@example.com", **extra: str):
    form = {"email": email, "course": "bone-health", "name": "Ana", **extra}
    return client.post("/subscribe", data=form)


def state(runtime: Runtime, email: str) -> list[tuple[SubscriptionState, int]]:
    with runtime.sessions() as session:
        subs = session.query(Subscription).order_by(Subscription.id).all()
        return [(s.state, s.current_day) for s in subs if s.subscriber.email == email]


def test_subscribe_confirm_lesson_one_click_unsubscribe_and_back(
    client: TestClient, runtime: Runtime, smtp_server, clock: Clock
) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Stronger Bones in Seven Days" in page.text
    answer = subscribe(client)
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    (confirmation,) = smtp_server.messages
    scanned = client.get(link(confirmation, "confirm"))
    assert scanned.status_code == 200 and '<form method="post">' in scanned.text
    assert state(runtime, "ana@example.com") == [(SubscriptionState.PENDING, 0)], "GET changed it"
    assert runtime.dispatcher.run_pass(clock.now).total == 0
    confirmed = client.post(link(confirmation, "confirm"))
    assert confirmed.status_code == 200 and "Lesson 2 arrives on" in confirmed.text
    assert client.post(link(confirmation, "confirm")).status_code == 200, "confirming twice"
    assert "You're in" in client.get(link(confirmation, "confirm")).text

    assert runtime.dispatcher.run_pass(clock.now).sent == 1
    lesson = smtp_server.messages[1]
    unsubscribe_url = lesson.message["List-Unsubscribe"].strip("<>")
    assert lesson.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = unsubscribe_url.removeprefix("https://drip.example.org")
    assert client.get(path).status_code == 200
    assert state(runtime, "ana@example.com") == [(SubscriptionState.ACTIVE, 1)], "GET changed it"
    one_click = client.post(
        path, content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert one_click.status_code == 200 and "unsubscribed" in one_click.text
    assert state(runtime, "ana@example.com") == [(SubscriptionState.UNSUBSCRIBED, 1)]
    for days in range(1, 4):
        assert runtime.dispatcher.run_pass(T0 + timedelta(days=days)).total == 0

    clock.now = T0 + timedelta(days=5)
    assert subscribe(client).status_code == 200
    client.post(link(smtp_server.messages[-1], "confirm"))
    assert runtime.dispatcher.run_pass(clock.now).sent == 1
    assert state(runtime, "ana@example.com") == [
        (SubscriptionState.UNSUBSCRIBED, 1), (SubscriptionState.ACTIVE, 1)
    ]  # fmt: skip
    assert smtp_server.messages[-1].message["Subject"].startswith("Day 1")


def test_the_answer_does_not_tell_who_subscribes(client: TestClient, smtp_server) -> None:
    body = {"email": "bo@example.com", "course": "bone-health"}
    new = client.post("/subscribe", json=body)
    pending = client.post("/subscribe", json=body)
    client.post(link(smtp_server.messages[0], "confirm"))
    active = client.post("/subscribe", json=body)
    assert [r.status_code for r in (new, pending, active)] == [200, 200, 200]
    assert new.json() == pending.json() == active.json() == {"status": "check your inbox"}
    assert len(smtp_server.messages) == 2, "no confirmation email once active"


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"email": "not an address"}, 422, "email"),
        ({"email": "a@example.com\r\nBcc: x@example.com"}, 422, "email"),
        ({"email": "a@@example.com"}, 422, "email"),
        ({"course": "no-such-course"}, 422, "course"),
        ({"timezone": "Mars/Olympus"}, 422, "timezone"),
        ({"name": "x" * 300}, 422, "name"),
        ({"name": "x" * 10_240}, 413, None),
    ],
)
def test_bad_signups_are_refused_and_nothing_is_stored(
    client: TestClient, runtime: Runtime, smtp_server, fields, status, field
) -> None:
    body = {"email": "ok@example.com", "course": "bone-health", **fields}
    answer = client.post("/subscribe", data=body, headers={"accept": "application/json"})
    assert answer.status_code == status
    if field:
        assert field in answer.json()["errors"]
    assert smtp_server.messages == []
    with runtime.sessions() as session:
        assert session.query(Subscription).count() == 0


def test_a_name_with_line_breaks_and_template_syntax_is_kept_literally(
    client: TestClient, runtime: Runtime, smtp_server
) -> None:
    name = "Eve\r\n{{ 7*191 }} <b>"
    assert subscribe(client, name=name).status_code == 200
    (message,) = smtp_server.messages
    assert "Eve" in str(message.message["To"]) and "\n" not in str(message.message["To"])
    html = message.message.get_body(("html",)).get_content()
    assert "{{ 7*191 }} &lt;b&gt;" in html and "1337" not in html


def test_signups_are_rate_limited(client: TestClient, runtime: Runtime, smtp_server) -> None:
    limit = runtime.settings.signup_limit_per_address
    answers = [subscribe(client, "same@example.com").status_code for _ in range(limit + 1)]
    assert answers == [200] * limit + [429]
    assert len(smtp_server.messages) == limit
    others = [
        subscribe(client, f"n{i}@example.com").status_code
        for i in range(runtime.settings.signup_limit_per_client)
    ]
    assert others[-1] == 429 and 429 not in others[: -(limit + 1)]


def test_bad_tokens_and_methods_never_give_a_server_error(
    client: TestClient, runtime: Runtime, smtp_server, clock: Clock
) -> None:
    subscribe(client)
    token = link(smtp_server.messages[0], "confirm").rsplit("/", 1)[1]
    tampered = token[:-1] + ("y" if token.endswith("x") else "x")
    for path in (
        f"/confirm/{tampered}", "/confirm/", "/unsubscribe/nope", "/preferences/" + "a" * 500,
        "/lessons/nope/1", "/courses/bone-health/course.toml", "/courses/nope/x.png",
        "/courses/bone-health/%2e%2e/%2e%2e/models.py", "/nothing-here",
    ):  # fmt: skip
        page = client.get(path)
        assert page.status_code == 404 and "This link does not work" in page.text, path
    assert client.get("/subscribe").status_code == 405
    assert client.delete(f"/unsubscribe/{token}").status_code == 405
    assert (
        client.post(
            "/subscribe", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    clock.now = T0 + timedelta(seconds=runtime.settings.pending_expiry_seconds + 1)
    assert client.get(f"/confirm/{token}").status_code == 404, "an expired confirmation link"
    assert client.post(f"/confirm/{token}").status_code == 404


def test_preferences_pause_resume_schedule_and_view_online(
    client: TestClient, runtime: Runtime, smtp_server, clock: Clock
) -> None:
    subscribe(client)
    client.post(link(smtp_server.messages[0], "confirm"))
    runtime.dispatcher.run_pass(clock.now)
    lesson = smtp_server.messages[1]
    preferences = link(lesson, "preferences")
    assert "1 of 7 lessons received" in client.get(preferences).text
    assert client.post(preferences, data={"action": "pause"}).status_code == 200
    assert state(runtime, "ana@example.com") == [(SubscriptionState.PAUSED, 1)]
    assert client.post(preferences, data={"action": "resume"}).status_code == 200
    changed = client.post(
        preferences, data={"action": "schedule", "send_time": "07:15", "timezone": "Asia/Tokyo"}
    )
    assert changed.status_code == 200 and 'value="07:15"' in changed.text
    assert client.post(preferences, data={"action": "schedule", "send_time": "25:99",
                                          "timezone": "Asia/Tokyo"}).status_code == 422  # fmt: skip
    with runtime.sessions() as session:
        sub = session.query(Subscription).one()
        assert sub.state is SubscriptionState.ACTIVE and sub.timezone == "Asia/Tokyo"
        assert sub.next_due_at is not None
        local = sub.next_due_at.astimezone(ZoneInfo("Asia/Tokyo"))
        assert (local.hour, local.minute) == (7, 15)
        manage = sub.manage_token
    online = client.get(f"/lessons/{manage}/1")
    assert online.status_code == 200 and "Hi Ana," in online.text
    assert client.get(f"/lessons/{manage}/2").status_code == 404, "not received yet"
    image = client.get("/courses/bone-health/images/hip-hinge.png")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert client.get("/healthz").json()["status"] == "ok"


def test_templates_ship_with_the_package() -> None:
    from drip import web

    folder = Path(web.__file__).parent / "templates"
    assert {"index.html", "confirmed.html", "unsubscribe.html"} <= {
        p.name for p in folder.iterdir()
    }


def test_switching_course_starts_the_other_at_lesson_one(
    database_url: str, tmp_path: Path, smtp_server, clock: Clock
) -> None:
    from shutil import copytree

    from drip.config import BUNDLED_COURSES

    from conftest import make_runtime, write_course

    courses = tmp_path / "courses"
    copytree(BUNDLED_COURSES / "bone-health", courses / "bone-health")
    write_course(courses / "tiny")
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, courses_dir=courses)
    rt.waker = PassNow(rt)
    try:
        rt.clock = clock
        with TestClient(create_app(rt), base_url="https://drip.example.org") as client:
            subscribe(client)
            client.post(link(smtp_server.messages[0], "confirm"))
            rt.dispatcher.run_pass(clock.now)
            preferences = link(smtp_server.messages[1], "preferences")
            moved = client.post(preferences, data={"action": "switch", "course": "tiny"})
            assert moved.status_code == 200 and "Tiny Course" in moved.text
            again = client.post(preferences, data={"action": "switch", "course": "tiny"})
            assert again.status_code == 422 and "has ended" in again.text
        assert rt.dispatcher.run_pass(clock.now).sent == 1
        assert smtp_server.messages[-1].message["Subject"] == "Subject 1"
        assert state(rt, "ana@example.com") == [
            (SubscriptionState.UNSUBSCRIBED, 1), (SubscriptionState.ACTIVE, 1)
        ]  # fmt: skip
    finally:
        rt.close()
