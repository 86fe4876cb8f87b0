"""The API under hostile input, beside a dispatch pass, and with its relay down: generated
requests never get a 5xx nor another error shape; pauses and unsubscribes made while lessons go
out hold; an enrollment whose confirmation cannot go out yet is still taken."""

from __future__ import annotations

import json
import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from drip import apikeys
from drip.models import Delivery, Subscription, SubscriptionState
from drip.runtime import Runtime

from conftest import T0
from fleet import seed
from helpers import ALICE, subscribe

PATHS = ["/courses", "/stats", "/subscriptions", "/subscriptions/{id}",
         "/subscriptions/{id}/pause", "/subscriptions/{id}/resume",
         "/subscriptions/{id}/unsubscribe", "/subscribers/export", "/subscribers/erase",
         "/openapi.json", "/{id}", "/subscriptions/{id}/{id}"]  # fmt: skip
SEGMENTS = ["1", "2", "0", "-1", "2147483648", "9" * 40, "%00", "..", "%FF", "abc", "%F0%9F%92%A7",
            "x" * 300, "%2F"]  # fmt: skip
WORDS = ["bone-health", "alice@example.com", "a@b", "", "\x00", "x" * 10_001, "Europe/Paris",
         "25:99", "07:30", "active", "☃", "\u202e", "drip_x"]  # fmt: skip
FIELDS = ["email", "course", "name", "timezone", "confirmed", "send_time", "consent_ip", "x"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.sampled_from(WORDS) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=12,
)  # fmt: skip
bodies = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), json_values,
                    max_size=6).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)  # fmt: skip
queries = st.dictionaries(st.sampled_from(["limit", "cursor", "state", "email", "course", "q"]),
                          st.one_of(st.sampled_from(WORDS + SEGMENTS), st.text(max_size=20)),
                          max_size=4)  # fmt: skip
AUTHS = st.sampled_from(["write", "read", "none", "Bearer ", "Bearer drip_", "Basic x", "garbage"])


def make_key(rt: Runtime, scope: str) -> str:
    with rt.write_sessions() as session, session.begin():
        return apikeys.create(session, scope, "", T0)[1]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]),
    path=st.sampled_from(PATHS),
    segment=st.sampled_from(SEGMENTS),
    query=queries,
    body=bodies,
    who=AUTHS,
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
)
def test_hostile_requests_get_4xx_in_the_error_shape(
    client: TestClient, runtime: Runtime, method: str, path: str, segment: str,
    query: dict[str, str], body: bytes, who: str, content_type: str,
) -> None:  # fmt: skip
    keys = _keys(runtime)
    header = f"Bearer {keys[who]}" if who in keys else who
    answer = client.request(
        method,
        "/api/v1" + path.replace("{id}", segment),
        params=query,
        content=body if method != "GET" else None,
        headers={"Authorization": header, "Content-Type": content_type},
    )
    assert answer.status_code < 500, answer.text
    if (method, path, who) == ("GET", "/courses", "write"):
        assert answer.status_code == 200  # the keys work: the refusals are the input's
    inside = answer.request.url.path.startswith("/api/v1/")  # not `..` resolved by the client
    if answer.status_code >= 400 and method != "HEAD" and inside:
        assert answer.headers["content-type"] == "application/json", (answer.request, answer.text)
        error: Any = answer.json()["error"]
        assert set(error) == {"code", "message"}


KEYS: dict[str, dict[str, str]] = {}


def _keys(rt: Runtime) -> dict[str, str]:
    """A read and a write key per database (each test has its own), made at its first example."""
    url = rt.settings.database_url
    if url not in KEYS:
        KEYS[url] = {"write": make_key(rt, "write"), "read": make_key(rt, "read")}
        subscribe(rt, ALICE)
    return KEYS[url]


def test_pauses_unsubscribes_and_erasures_made_during_a_pass_hold(
    client: TestClient, runtime: Runtime, database_url: str
) -> None:
    seed(database_url, 60, "bone-health", T0)
    key = make_key(runtime, "write")
    answers: list[int] = []
    sending = threading.Thread(target=runtime.dispatcher.run_pass, args=(T0,))
    sending.start()
    for sub_id in range(1, 61, 2):
        action = "pause" if sub_id % 4 == 1 else "unsubscribe"
        answers.append(
            client.post(
                f"/api/v1/subscriptions/{sub_id}/{action}",
                headers={"Authorization": f"Bearer {key}"},
            ).status_code
        )
    sending.join(120)
    assert set(answers) == {200}
    with runtime.sessions() as session:
        for sub_id in range(1, 61, 2):
            sub = session.get(Subscription, sub_id)
            assert sub is not None
            assert sub.state in (SubscriptionState.PAUSED, SubscriptionState.UNSUBSCRIBED)
            sent = session.query(Delivery).filter(Delivery.subscription_id == sub_id).count()
            assert sent <= 1  # the lesson under way at most, never one after
    assert runtime.dispatcher.run_pass(T0).sent == 0  # nothing is due any more to the others


def test_an_enrollment_is_taken_while_the_relay_is_down(
    client: TestClient, runtime: Runtime, smtp_server
) -> None:
    key = make_key(runtime, "write")
    smtp_server.stop()
    answer = client.post("/api/v1/subscriptions", headers={"Authorization": f"Bearer {key}"},
                         json={"email": ALICE, "course": "bone-health"})  # fmt: skip
    assert answer.status_code == 201 and answer.json()["state"] == "pending"
    with runtime.sessions() as session:
        sub = session.get(Subscription, answer.json()["id"])
        assert sub is not None and sub.next_due_at is not None  # the confirmation is queued
