"""The HTTP API at /api/v1, in process on the real database: keys and scopes, every route's
behaviour, its one error shape, and personal data out and erased."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from drip import apikeys
from drip.runtime import Runtime

from conftest import T0, Clock
from helpers import ALICE, BOB, CAROL, subscribe


def make_key(rt: Runtime, scope: str = "write") -> str:
    with rt.write_sessions() as session, session.begin():
        return apikeys.create(session, scope, f"{scope} key", T0)[1]


@pytest.fixture
def write_key(runtime: Runtime) -> str:
    return make_key(runtime, "write")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_requests_without_a_live_key_are_refused(client: TestClient, runtime: Runtime) -> None:
    assert_error(client.get("/api/v1/courses"), 401, "unauthorized")
    assert client.get("/api/v1/courses").headers["www-authenticate"].startswith("Bearer")
    assert_error(client.get("/api/v1/courses", headers=auth("drip_wrong")), 401, "unauthorized")
    assert_error(client.get("/api/v1/courses", headers={"Authorization": "Basic eDp5"}), 401,
                 "unauthorized")  # fmt: skip
    key = make_key(runtime, "read")
    assert client.get("/api/v1/courses", headers=auth(key)).status_code == 200
    with runtime.write_sessions() as session, session.begin():
        (row,) = apikeys.listing(session)
        assert row.key_hash == apikeys.digest(key) and key not in (row.prefix, row.key_hash)
        assert apikeys.revoke(session, row.id, T0)
    assert_error(client.get("/api/v1/courses", headers=auth(key)), 401, "unauthorized")


def test_a_read_key_cannot_write(client: TestClient, runtime: Runtime) -> None:
    key = make_key(runtime, "read")
    answer = client.post("/api/v1/subscriptions", headers=auth(key),
                         json={"email": ALICE, "course": "bone-health"})  # fmt: skip
    assert_error(answer, 403, "forbidden")
    assert client.get("/api/v1/subscriptions", headers=auth(key)).json()["data"] == []


def test_enroll_pending_sends_the_confirmation(client, write_key, smtp_server) -> None:
    body = {"email": ALICE, "course": "bone-health", "name": "Alice", "timezone": "Asia/Tokyo"}
    first = client.post("/api/v1/subscriptions", headers=auth(write_key), json=body)
    assert first.status_code == 201, first.text
    assert first.json()["state"] == "pending" and first.json()["timezone"] == "Asia/Tokyo"
    assert len(smtp_server.wait_for(1)) == 1  # the confirmation email
    again = client.post("/api/v1/subscriptions", headers=auth(write_key), json=body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_enroll_confirmed_keeps_the_consent_given_elsewhere(client, write_key) -> None:
    body = {
        "email": BOB,
        "course": "bone-health",
        "confirmed": True,
        "consent_ip": "203.0.113.9",
        "consent_user_agent": "Checkout/1.0",
        "consent_wording": "Yes, the bone course.",
    }
    answer = client.post("/api/v1/subscriptions", headers=auth(write_key), json=body)
    assert answer.status_code == 201 and answer.json()["state"] == "active"
    data = client.post("/api/v1/subscribers/export", headers=auth(write_key),
                       json={"email": BOB}).json()  # fmt: skip
    (consent,) = data["consents"]
    assert consent["ip"] == "203.0.113.9" and consent["wording"] == "Yes, the bone course."
    assert consent["source"] == "api" and consent["course"] == "bone-health"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not an address", "course": "bone-health"}, 422, "invalid"),
        ({"email": ALICE, "course": "nope"}, 422, "invalid"),
        ({"email": ALICE}, 422, "invalid"),
        ({"email": ALICE, "course": "bone-health", "confirmed": "yes"}, 422, "invalid"),
        ({"email": ALICE, "course": "bone-health", "extra": 1}, 422, "invalid"),
        ({"email": ALICE, "course": "bone-health", "timezone": "Mars/Base"}, 422, "invalid"),
    ],
)
def test_enroll_refuses_bad_fields(client, write_key, body, status, code) -> None:
    answer = client.post("/api/v1/subscriptions", headers=auth(write_key), json=body)
    assert_error(answer, status, code)


def test_malformed_bodies_get_the_error_shape(client, write_key) -> None:
    headers = {**auth(write_key), "content-type": "application/json"}
    for raw in (b"{", b"[1]", b"\xff", b'{"a":' * 30 + b"1" + b"}" * 30):
        assert_error(client.post("/api/v1/subscriptions", headers=headers, content=raw), 400,
                     "bad_request")  # fmt: skip
    assert_error(client.delete("/api/v1/subscriptions", headers=auth(write_key)), 405,
                 "method_not_allowed")  # fmt: skip
    assert_error(client.get("/api/v1/nothing", headers=auth(write_key)), 404, "not_found")
    newline = "/api/v1/subscriptions/a%0Ab/unsubscribe"  # no route of the API's mount matches
    assert_error(client.post(newline, headers=auth(write_key)), 404, "not_found")


def test_list_pages_through_every_subscription(client, runtime, write_key) -> None:
    ids = [subscribe(runtime, email) for email in (ALICE, BOB, CAROL)]
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/subscriptions", headers=auth(write_key), params=query).json()
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    found = client.get("/api/v1/subscriptions", headers=auth(write_key),
                       params={"email": BOB.upper(), "state": "active"}).json()  # fmt: skip
    assert [s["email"] for s in found["data"]] == [BOB]
    for params in ({"cursor": "nonsense"}, {"limit": 0}, {"state": "gone"}, {"course": "x"}):
        answer = client.get("/api/v1/subscriptions", headers=auth(write_key), params=params)
        assert_error(answer, 400, "bad_request")


def test_get_update_pause_resume_unsubscribe(client, runtime, write_key, clock: Clock) -> None:
    sub_id = subscribe(runtime, ALICE)
    url = f"/api/v1/subscriptions/{sub_id}"
    assert client.get(url, headers=auth(write_key)).json()["email"] == ALICE
    changed = client.patch(
        url,
        headers=auth(write_key),
        json={"name": "Ana", "timezone": "Europe/Paris", "send_time": "07:15"},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["send_time"]) == ("Ana", "07:15")
    assert_error(client.patch(url, headers=auth(write_key), json={"send_time": "25:00"}), 422,
                 "invalid")  # fmt: skip
    assert client.post(f"{url}/pause", headers=auth(write_key)).json()["state"] == "paused"
    assert client.post(f"{url}/pause", headers=auth(write_key)).status_code == 200  # already
    clock.now = T0 + timedelta(days=1)
    assert client.post(f"{url}/resume", headers=auth(write_key)).json()["state"] == "active"
    ended = client.post(f"{url}/unsubscribe", headers=auth(write_key)).json()
    assert ended["state"] == "unsubscribed" and ended["ended_at"] is not None
    assert_error(client.post(f"{url}/resume", headers=auth(write_key)), 409, "conflict")
    assert_error(client.patch(url, headers=auth(write_key), json={"name": "x"}), 409, "conflict")
    for missing in ("/api/v1/subscriptions/999999", "/api/v1/subscriptions/abc",
                    "/api/v1/subscriptions/99999999999999999999"):  # fmt: skip
        assert_error(client.get(missing, headers=auth(write_key)), 404, "not_found")


def test_export_and_erase(client, runtime, write_key) -> None:
    sub_id = subscribe(runtime, ALICE)
    assert runtime.dispatcher.run_pass(T0).sent == 1
    data = client.post("/api/v1/subscribers/export", headers=auth(write_key),
                       json={"email": ALICE}).json()  # fmt: skip
    assert data["subscriber"]["email"] == ALICE
    assert data["subscriptions"][0]["deliveries"][0]["state"] == "sent"
    erased = client.post("/api/v1/subscribers/erase", headers=auth(write_key),
                         json={"email": ALICE}).json()  # fmt: skip
    assert (erased["ended"], erased["kept"]) == (1, 1)
    assert_error(client.post("/api/v1/subscribers/export", headers=auth(write_key),
                             json={"email": ALICE}), 404, "not_found")  # fmt: skip
    left = client.get(f"/api/v1/subscriptions/{sub_id}", headers=auth(write_key)).json()
    assert left["email"].endswith("@erased.invalid") and left["name"] == ""
    assert left["state"] == "unsubscribed" and left["current_day"] == 1  # the counts stay
    figures = client.get("/api/v1/stats", headers=auth(write_key)).json()
    assert figures["by_state"]["unsubscribed"] == 1


def test_the_openapi_document_is_served_without_a_key(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "/subscriptions/{id}/pause" in document["paths"]
