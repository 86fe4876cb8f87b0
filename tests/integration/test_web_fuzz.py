"""Generated requests against the real app, on SQLite and PostgreSQL: random methods, the real
routes with hostile segments (NUL, very long, unicode, huge integers, `..`), random form and
JSON bodies (nested, wrong types, NUL, huge), random headers, valid tokens mixed in. Whatever
comes in, the answer is never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from drip.models import Subscription
from drip.runtime import Runtime
from drip.web import create_app

from conftest import T0, make_runtime
from helpers import ALICE, BOB, CAROL, subscribe
from relay_webhooks import CertificateServer, basic_auth, webhook_settings

REQUESTS = 2000
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
ROUTES = [
    "/", "/subscribe", "/confirm/{token}", "/unsubscribe/{token}", "/preferences/{token}",
    "/lessons/{token}/{day}", "/courses/{slug}/{path}", "/healthz", "/metrics", "/static/{path}",
    "/{path}", "/pace/{token}/{action}/{day}", "/pace/{token}/{action}/{day}?days={day}",
    "/pace/{token}/{action}/{day}?to={day}", "/webhooks/ses", "/webhooks/postmark",
    "/webhooks/mailgun", "/webhooks/sendgrid",
]  # fmt: skip
HOSTILE = [
    "", "%00", "a%00b", "..", "%2e%2e", "x" * 300, "9223372036854775808", "2147483648",
    "18446744073709551616", "-1", "0", "1", "2", "7", "8", "9" * 400, "%F0%9F%92%A7", "%ED%A0%80",
    "%FF", "%C0%AE", "bone-health", "images", "hip-hinge.png", "drip.css", "%2F", "%5C", "~",
]  # fmt: skip
VALUES = [
    "Europe", "America", "Etc", "Etc/", "Europe/Paris", "Asia/Tokyo", "x" * 300, "y" * 10_001,
    "a\x00b", "\x00", "07:30", "25:99", "7", "", " ", "bone-health", "ana@example.com",
    "a@b", "pause", "resume", "unsubscribe", "schedule", "switch", "\ud800", "\u202e", "☃",
]  # fmt: skip
FIELDS = ["email", "course", "name", "timezone", "action", "send_time", "at", "days", "to"]
CONTENT_TYPES = [
    None, "application/json", "application/x-www-form-urlencoded", "multipart/form-data",
    "multipart/form-data; boundary=x", "text/plain", "application/json; charset=latin-1",
    "application/jsonp", "application/x-www-form-urlencoded; charset=utf-16",
]  # fmt: skip

ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
values = st.one_of(st.sampled_from(VALUES), st.text(max_size=40))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | values,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=20,
)  # fmt: skip
fields = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)),
                         st.one_of(values, json_values), max_size=8)  # fmt: skip


NASTY = ["%00", "a%00b.png", "x" * 300, "..", "%2e%2e", "9223372036854775808", "2147483648"]
hostile = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40).map(lambda text: quote(text, safe="")),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
)


@st.composite
def paths(draw: st.DrawFn, tokens: list[str]) -> str:
    """A real route; each placeholder a real value, a known-nasty one or a random one."""
    route = draw(st.sampled_from(ROUTES))

    def part(*real: str) -> str:
        return draw(st.sampled_from(real) | st.sampled_from(NASTY) | hostile)

    pieces = draw(st.integers(1, 3))
    return route.format(
        token=part(*tokens), day=part("1", "2", "7"), slug=part("bone-health"),
        action=part("next", "snooze", "restart", "jump"),
        path="/".join(part("images", "hip-hinge.png", "drip.css") for _ in range(pieces)),
    )  # fmt: skip


def encode_form(data: dict[str, Any]) -> bytes:
    pairs = {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in data.items()
    }
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()


bodies = st.one_of(
    st.none(),
    fields.map(lambda data: json.dumps(data).encode()),
    fields.map(encode_form),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.integers(1, 70_000).map(lambda depth: b"[" * depth),
    st.integers(1, 40_000).map(lambda depth: b'{"a":' * depth),
    st.binary(max_size=300),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from([t for t in CONTENT_TYPES if t]),
        "accept": st.sampled_from(["application/json", "text/html", "*/*"]),
        "x-forwarded-for": ascii_text,
        "authorization": st.sampled_from(list(basic_auth().values())) | ascii_text,
        "x-amz-sns-message-type": st.sampled_from(["Notification", "SubscriptionConfirmation"]),
        "x-twilio-email-event-webhook-signature": ascii_text,
        "x-twilio-email-event-webhook-timestamp": st.integers(0, 2**40).map(str) | ascii_text,
    },
)


@pytest.fixture
def fuzz_runtime(database_url: str, tmp_path: Path, smtp_server) -> Iterator[Runtime]:
    """Limits high enough that the signup code runs, not only the 429 in front of it; every
    provider's webhook on."""
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url,
                      signup_limit_per_client=10**9, signup_limit_per_address=10**9,
                      **webhook_settings(tmp_path))  # fmt: skip
    rt.http_get = CertificateServer()
    rt.clock = lambda: T0
    yield rt
    rt.close()


def real_tokens(rt: Runtime) -> list[str]:
    """Tokens of real subscriptions: active ones with lesson 1 sent, and a pending one."""
    for email in (ALICE, BOB):
        subscribe(rt, email)
    subscribe(rt, CAROL, confirmed=False)
    rt.dispatcher.run_pass(T0)
    with rt.sessions() as session:
        subs = session.query(Subscription).all()
        return [getattr(s, f"{kind}_token") for s in subs
                for kind in ("confirm", "unsubscribe", "manage")]  # fmt: skip


def test_no_generated_request_gets_a_server_error(fuzz_runtime: Runtime) -> None:
    tokens = real_tokens(fuzz_runtime)
    sent: list[int] = []
    methods = st.sampled_from(["GET", "POST"]) | st.sampled_from(METHODS)
    with TestClient(create_app(fuzz_runtime), raise_server_exceptions=False) as client:

        @settings(max_examples=REQUESTS, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(methods, paths(tokens), bodies, headers)
        def send(method: str, path: str, body: bytes | None, head: dict[str, str]) -> None:
            answer = client.request(method, path, content=body, headers=head)
            sent.append(answer.status_code)
            request = (method, path, (body or b"")[:200], head)
            assert answer.status_code < 500, (request, answer.text[:300])

        send()
    assert len(sent) >= REQUESTS
    assert {200, 404, 405} <= set(sent), "the requests reached the pages, not only the router"
