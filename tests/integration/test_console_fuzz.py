"""Generated requests against the console, signed in and not, on SQLite and PostgreSQL:
hostile path segments, query strings, form bodies and cookies. Whatever comes in, the answer
is never a 5xx, and no request without its session's CSRF token changes anything."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from drip.models import OperatorAction, StateChange
from drip.runtime import Runtime
from drip.web import create_app
from drip.web.admin.session import COOKIE

from conftest import T0
from helpers import ALICE, BOB, add_operator, sign_in, subscribe

REQUESTS = 600
ROUTES = [
    "/admin", "/admin/login", "/admin/logout", "/admin/courses/{x}", "/admin/subscribers",
    "/admin/subscriptions/{x}", "/admin/deliveries/{x}/retry", "/admin/suppressions",
    "/admin/subscriptions/{x}/export", "/admin/subscriptions/{x}/erase", "/admin/{x}",
]  # fmt: skip
HOSTILE = [
    "", "%00", "..", "%2e%2e", "x" * 300, "9223372036854775808", "2147483648", "-1", "0", "1",
    "2", "9" * 400, "%F0%9F%92%A7", "%ED%A0%80", "%FF", "bone-health", "%2F", "%5C",
]  # fmt: skip
VALUES = [
    "", "x" * 300, "y" * 10_001, "a\x00b", "pause", "resume", "unsubscribe", "move", "resend",
    "retry", "1", "7", "8", "0", "-1", "99999999999999999999", "active", "bone-health", "%",
    "_", "\\", "'; DROP TABLE subscribers; --", "\ud800", "☃", "//evil.example", "/admin/..",
    ALICE, ALICE.upper() + " ", BOB,
]  # fmt: skip
FORM = {"content-type": "application/x-www-form-urlencoded"}
FIELDS = [
    "csrf",
    "action",
    "lesson",
    "email",
    "password",
    "next",
    "q",
    "course",
    "state",
    "confirm",
]

segments = st.sampled_from(HOSTILE) | st.text(max_size=30).map(lambda t: quote(t, safe=""))
values = st.sampled_from(VALUES) | st.text(max_size=30)
forms = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), values, max_size=6)
cookies = st.sampled_from(["", "garbage", "a.b", "%00.%00", "x" * 5000, "W10.AAAA"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=';,\\"'), max_size=80
)


def encode(data: dict[str, str]) -> bytes:
    return urlencode(data, encoding="utf-8", errors="surrogatepass").encode()


def changes(rt: Runtime) -> tuple[int, int]:
    with rt.sessions() as session:
        return (session.scalar(select(func.count()).select_from(StateChange)) or 0,
                session.scalar(select(func.count()).select_from(OperatorAction)) or 0)  # fmt: skip


def test_no_generated_console_request_gets_a_server_error(runtime: Runtime) -> None:
    runtime.clock = lambda: T0
    add_operator(runtime)
    for email in (ALICE, BOB):
        subscribe(runtime, email)
    runtime.dispatcher.run_pass(T0)
    seen: list[int] = []
    with TestClient(create_app(runtime), base_url="https://drip.example.org",
                    raise_server_exceptions=False) as client:  # fmt: skip
        csrf = sign_in(client)
        signed_in = client.cookies[COOKIE]
        before = changes(runtime)
        token: list[str] = []  # the session's CSRF token, put in every form of the second run

        @settings(max_examples=REQUESTS, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(st.sampled_from(["GET", "POST"]), st.sampled_from(ROUTES), segments, forms,
               forms, st.one_of(st.none(), cookies))  # fmt: skip
        def send(method, route, segment, query, form, cookie) -> None:
            path = route.format(x=segment) + "?" + encode(query).decode()
            form = {**form, "csrf": token[0]} if token else form
            client.cookies.set(COOKIE, signed_in if cookie is None else cookie,
                               domain="drip.example.org", path="/admin")  # fmt: skip
            body = encode(form) if method == "POST" else None
            answer = client.request(method, path, content=body, headers=FORM,
                                    follow_redirects=False)  # fmt: skip
            seen.append(answer.status_code)
            assert answer.status_code < 500, (method, path, form, cookie, answer.text[:300])

        send()
        assert changes(runtime) == before, "no generated request carried its CSRF token"
        token.append(csrf)
        send()  # now with the token: the actions' own checks meet the hostile input
    assert {200, 303, 403, 404} <= set(seen), "the requests reached the pages and the checks"
