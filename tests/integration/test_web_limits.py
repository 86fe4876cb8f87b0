"""What the web pages refuse, and how: oversized and deeply nested bodies, text a database
cannot store, hostile paths and values, a signup that would rename someone; and the headers
every response carries. Always a 4xx, never a 5xx; nothing stored."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from drip.models import Subscriber, Subscription
from drip.runtime import Runtime
from drip.web import create_app
from drip.web.body import MAX_FIELD
from drip.web.headers import HEADERS

from conftest import make_runtime
from helpers import link

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
SIGNUP = {"email": "ok@example.com", "course": "bone-health"}


def stored(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.query(Subscription).count()


def active_manage_token(client: TestClient, runtime: Runtime, smtp_server) -> str:
    """Ana subscribed, confirmed and sent lesson 1; her preferences token."""
    client.post("/subscribe", data={**SIGNUP, "email": "ana@example.com", "name": "Ana"})
    client.post(link(smtp_server.messages[-1], "confirm"))
    runtime.dispatcher.run_pass(runtime.clock())
    return link(smtp_server.messages[-1], "preferences").rsplit("/", 1)[1]


def test_a_body_over_the_limit_is_413(client: TestClient, runtime: Runtime) -> None:
    """In process; tests/integration/test_web_server.py streams a 256 MB body to a real server."""
    over = "x" * runtime.settings.max_body_bytes
    assert client.post("/subscribe", data={**SIGNUP, "pad": over}).status_code == 413
    assert client.post("/subscribe", json={**SIGNUP, "pad": over}).status_code == 413
    declared = client.post(
        "/subscribe", content=b"{}",
        headers={"content-type": "application/json", "content-length": str(256 << 20)},
    )  # fmt: skip
    assert declared.status_code == 413, "refused from Content-Length alone"
    under = {f"pad{i}": "x" * (MAX_FIELD - 10) for i in range(6)}  # 60 kB of fields
    assert client.post("/subscribe", data={**SIGNUP, **under}).status_code == 200


@pytest.fixture
def roomy_client(database_url: str, tmp_path: Path, smtp_server) -> Iterator[TestClient]:
    """The app with a body limit high enough for 100,000 nested brackets to reach the parser."""
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, max_body_bytes=1 << 20)
    with TestClient(create_app(rt), base_url="https://drip.example.org") as client:
        yield client
    rt.close()


@pytest.mark.parametrize(
    "body", ["[" * 100_000, '{"email": ' + "[" * 100_000 + "]" * 100_000 + "}",
             '{"email": ' + "[" * 21 + "]" * 21 + "}", "[]", '"text"', "{"],
)  # fmt: skip
def test_json_too_deep_or_not_an_object_is_400(roomy_client: TestClient, body: str) -> None:
    answer = roomy_client.post(
        "/subscribe", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "fields",
    [{"name": "Eve\x00"}, {"email": "ok\x00@example.com"}, {"timezone": "Europe/Paris\x00"},
     {"course": "bone-health\x00"}, {"name\x00": "x"}],
)  # fmt: skip
@pytest.mark.parametrize("as_json", [False, True])
def test_nul_in_any_field_is_422_and_nothing_is_stored(
    client: TestClient, runtime: Runtime, smtp_server, fields: dict[str, str], as_json: bool
) -> None:
    body = {**SIGNUP, **fields}
    answer = (
        client.post("/subscribe", json=body) if as_json else client.post("/subscribe", data=body)
    )
    assert answer.status_code == 422
    assert stored(runtime) == 0 and smtp_server.messages == []


def test_text_that_is_not_valid_unicode_is_422(client: TestClient, runtime: Runtime) -> None:
    body = b'{"email": "ok@example.com", "course": "bone-health", "name": "\\ud800"}'
    answer = client.post("/subscribe", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and stored(runtime) == 0


@pytest.mark.parametrize("zone", ["Europe", "America", "Etc", "Etc/", "x" * 300, "../etc/passwd"])
def test_a_zone_that_is_a_folder_or_too_long_is_422(
    client: TestClient, runtime: Runtime, smtp_server, zone: str
) -> None:
    answer = client.post("/subscribe", json={**SIGNUP, "timezone": zone})
    assert answer.status_code == 422 and "timezone" in answer.json()["errors"]
    manage = active_manage_token(client, runtime, smtp_server)
    change = {"action": "schedule", "send_time": "07:00", "timezone": zone}
    assert client.post(f"/preferences/{manage}", data=change).status_code == 422


@pytest.mark.parametrize("send_time", ["", "7", "07:60", "24:00", "-1:00", "x" * 300, "07:30:00"])
def test_a_bad_send_time_is_422(
    client: TestClient, runtime: Runtime, smtp_server, send_time: str
) -> None:
    manage = active_manage_token(client, runtime, smtp_server)
    change = {"action": "schedule", "send_time": send_time, "timezone": "Asia/Tokyo"}
    answer = client.post(f"/preferences/{manage}", data=change)
    assert answer.status_code == 422 and "HH:MM" in answer.text


def test_hostile_paths_are_404(client: TestClient, runtime: Runtime, smtp_server) -> None:
    manage = active_manage_token(client, runtime, smtp_server)
    assert client.get(f"/lessons/{manage}/1").status_code == 200
    for day in ("9223372036854775808", "2147483648", "0", "8", "-1", "9" * 5000, "\u0661"):
        assert client.get(f"/lessons/{manage}/{day}").status_code == 404, day[:30]
    for path in (
        "/confirm/%00", "/unsubscribe/%00", "/preferences/%00", "/lessons/%00/1",
        f"/lessons/{manage}%00/1", "/courses/bone-health/images/a%00b.png",
        "/courses/bone-health/" + "a" * 300 + ".png", "/courses/bone-health/" + "a/" * 3000,
        "/courses/bone-%00health/x.png", "/courses/bone-health/images/%2e%2e/%2e%2e/models.py",
    ):  # fmt: skip
        assert client.get(path).status_code == 404, path[:60]
    assert client.post("/preferences/%00", data={"action": "pause"}).status_code == 404


def test_signing_up_again_never_renames_or_moves_anyone(
    client: TestClient, runtime: Runtime, smtp_server
) -> None:
    victim = {**SIGNUP, "email": "victim@example.com", "name": "Vera", "timezone": "Asia/Tokyo"}
    assert client.post("/subscribe", data=victim).status_code == 200
    client.post(link(smtp_server.messages[-1], "confirm"))
    attack = {**victim, "name": "Mallory <script>", "timezone": "America/Lima"}
    for _ in range(2):  # while active, and again on a second course signup attempt
        assert client.post("/subscribe", data=attack).status_code == 200
    with runtime.sessions() as session:
        subscriber = session.query(Subscriber).one()
        assert subscriber.name == "Vera"
        assert [s.timezone for s in subscriber.subscriptions] == ["Asia/Tokyo"]


def test_every_response_carries_the_security_headers(
    client: TestClient, runtime: Runtime, smtp_server
) -> None:
    manage = active_manage_token(client, runtime, smtp_server)
    answers = [
        client.get("/"), client.get("/healthz"), client.get("/static/drip.css"),
        client.get("/static/timezone.js"), client.get("/nothing"), client.get("/subscribe"),
        client.post("/subscribe", json=[]), client.post("/subscribe", content=b"x" * 70_000),
        client.get(f"/preferences/{manage}"),
        client.get("/courses/bone-health/images/hip-hinge.png"),
    ]  # fmt: skip
    for answer in answers:
        for name, value in HEADERS.items():
            assert answer.headers[name] == value, (answer.url, answer.status_code, name)
    lesson = client.get(f"/lessons/{manage}/1")
    assert lesson.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in lesson.headers["content-security-policy"]
    assert "default-src 'none'" in lesson.headers["content-security-policy"]


def test_the_templates_need_no_inline_script_or_style() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son\w+=", text), template
