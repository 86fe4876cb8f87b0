"""The operator's console in process, on SQLite and PostgreSQL: sign-in and its limits, forged
and expired sessions and missing CSRF tokens refused with nothing changed, every page, every
action through subscriptions.apply with the operator in the audit log, and a lost database."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from drip import operators
from drip.cli import main
from drip.models import (
    DeliveryState,
    OperatorAction,
    StateChange,
    SubscriptionState,
)
from drip.runtime import Runtime
from drip.web import create_app
from drip.web.admin.session import COOKIE, Signer

from conftest import T0, Clock, make_runtime
from helpers import (
    ALICE,
    BOB,
    CAROL,
    OPERATOR,
    PASSWORD,
    add_operator,
    deliveries,
    forged,
    sign_in,
    subscribe,
    subscription,
)
from proxy import Proxy, postgres_proxy  # noqa: F401  (fixture)


@pytest.fixture
def console(runtime: Runtime, client: TestClient) -> TestClient:
    add_operator(runtime)
    return client


def audit(rt: Runtime) -> list[tuple[str, str, int | None]]:
    with rt.sessions() as session:
        rows = session.scalars(select(OperatorAction).order_by(OperatorAction.id))
        return [(a.operator, a.action, a.subscription_id) for a in rows]


def history(rt: Runtime, sub_id: int) -> list[tuple[str, str, str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(StateChange).where(StateChange.subscription_id == sub_id)
                               .order_by(StateChange.id))  # fmt: skip
        return [(c.previous, c.state, c.event, c.by) for c in rows]


def test_sign_in_pages_and_sign_out(runtime: Runtime, console: TestClient) -> None:
    alice = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    answer = console.get("/admin", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login?next=/admin")
    raw = console.get("/admin/login").headers["set-cookie"]
    assert "HttpOnly" in raw and "SameSite=strict" in raw and "Secure" in raw
    csrf = sign_in(console)
    assert console.get("/admin/login", follow_redirects=False).status_code == 303, "still in"
    for path in ("/admin", "/admin/courses/bone-health", "/admin/subscribers?q=ALICE",
                 f"/admin/subscriptions/{alice}", "/admin/suppressions"):  # fmt: skip
        page = console.get(path)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store", path
    assert ALICE in console.get("/admin/subscribers?q=alice&state=active").text
    assert ALICE not in console.get("/admin/subscribers?q=alice&state=paused").text
    timeline = console.get(f"/admin/subscriptions/{alice}").text
    assert "lesson 1: sent" in timeline and "&lt;drip.bone-health." in timeline
    assert "pending → active (confirm)" in timeline and "250 " in timeline
    out = console.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert console.get("/admin", follow_redirects=False).status_code == 303
    assert [(who, what) for who, what, _ in audit(runtime)] == [
        (OPERATOR, "sign-in"), (OPERATOR, "sign-out")]  # fmt: skip


def test_wrong_passwords_are_refused_logged_and_limited(runtime, console) -> None:
    for attempt in range(5):
        token = console.get("/admin/login").text.split('name="csrf" value="')[1].split('"')[0]
        answer = console.post("/admin/login", data={"csrf": token, "email": OPERATOR,
                                                    "password": f"wrong {attempt}"})  # fmt: skip
        assert answer.status_code == 401 and "do not match" in answer.text
    token = console.get("/admin/login").text.split('name="csrf" value="')[1].split('"')[0]
    right = {"csrf": token, "email": OPERATOR, "password": PASSWORD}
    answer = console.post("/admin/login", data=right)
    assert answer.status_code == 429, "the sixth try in 15 minutes, even with the password"
    assert [what for _, what, _ in audit(runtime)] == ["sign-in refused"] * 5
    assert console.get("/admin", follow_redirects=False).status_code == 303


def test_forged_expired_and_old_sessions_are_refused(runtime, console, clock: Clock) -> None:
    alice = subscribe(runtime, ALICE)
    csrf = sign_in(console)
    good = console.cookies[COOKIE]
    body, mac = good.split(".")
    wrong_key = Signer("another key", timedelta(hours=8))
    forged_cookies = [
        f"{body}.{forged(mac)}", f"{forged(body)}.{mac}", "garbage", "a.b.c", "", "%00.%00",
        wrong_key.dumps(wrong_key.new(T0, 1, "x")), good + "A" * 2000,
    ]  # fmt: skip
    for cookie in forged_cookies:
        console.cookies.set(COOKIE, cookie, domain="drip.example.org", path="/admin")
        assert console.get("/admin", follow_redirects=False).status_code == 303
        answer = console.post(f"/admin/subscriptions/{alice}",
                              data={"csrf": csrf, "action": "pause"})  # fmt: skip
        assert answer.status_code == 403
    console.cookies.set(COOKIE, good, domain="drip.example.org", path="/admin")
    clock.now = T0 + timedelta(hours=8, seconds=1)  # past DRIP_ADMIN_SESSION_SECONDS
    assert console.post(f"/admin/subscriptions/{alice}",
                        data={"csrf": csrf, "action": "pause"}).status_code == 403  # fmt: skip
    clock.now = T0
    with runtime.sessions() as session, session.begin():
        operators.set_password(session, OPERATOR, "another long password", T0)
    assert console.post(f"/admin/subscriptions/{alice}",
                        data={"csrf": csrf, "action": "pause"}).status_code == 403  # fmt: skip
    assert subscription(runtime, alice).state is SubscriptionState.ACTIVE, "nothing changed"
    assert [what for _, what, _ in audit(runtime)] == ["sign-in"]


def test_a_post_without_its_csrf_token_changes_nothing(runtime, console) -> None:
    alice = subscribe(runtime, ALICE)
    csrf = sign_in(console)
    for token in (None, "", forged(csrf), "é", csrf + csrf):
        data = {"action": "pause"} if token is None else {"action": "pause", "csrf": token}
        answer = console.post(f"/admin/subscriptions/{alice}", data=data)
        assert answer.status_code == 403
        assert console.post("/admin/deliveries/1/retry", data=data).status_code == 403
    login = console.post("/admin/login", data={"email": OPERATOR, "password": PASSWORD})
    assert login.status_code == 403, "the sign-in form has its token too"
    assert subscription(runtime, alice).state is SubscriptionState.ACTIVE
    assert [what for _, what, _ in audit(runtime)] == ["sign-in"]


def test_actions_go_through_the_lifecycle_with_the_operator(runtime, console) -> None:
    alice = subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    csrf = sign_in(console)

    def act(action: str, **more: str) -> int:
        data = {"csrf": csrf, "action": action, **more}
        return console.post(f"/admin/subscriptions/{alice}", data=data,
                            follow_redirects=False).status_code  # fmt: skip

    assert act("pause") == 303
    assert act("pause") == 409, "already paused"
    assert act("move", lesson="4") == 303
    assert subscription(runtime, alice).current_day == 3
    assert act("resume") == 303
    for bad in ("0", "8", "x", "99999999999", ""):
        assert act("resend", lesson=bad) == 400
    assert act("resend", lesson="2") == 303
    sub = subscription(runtime, alice)
    assert (sub.state, sub.current_day, sub.next_due_at) == (SubscriptionState.ACTIVE, 1, T0)
    assert runtime.dispatcher.run_pass(T0).sent == 1
    assert [d.day for d in deliveries(runtime, alice)] == [1, 2]
    assert act("dance") == 400
    assert act("unsubscribe") == 303 and act("resume") == 409
    assert [row[1:] for row in history(runtime, alice)] == [
        ("active", "confirm", ""), ("paused", "pause", OPERATOR), ("paused", "move", OPERATOR),
        ("active", "resume", OPERATOR), ("active", "resend", OPERATOR),
        ("unsubscribed", "unsubscribe", OPERATOR),
    ]  # fmt: skip
    done = [(what, sub_id) for who, what, sub_id in audit(runtime) if who == OPERATOR]
    acts = ("pause", "move", "resume", "resend", "unsubscribe")
    assert done == [("sign-in", None), *[(a, alice) for a in acts]]
    assert console.get("/admin/subscriptions/999999").status_code == 404


def test_retry_of_a_deferred_delivery_makes_it_due_now(runtime, console, smtp_server) -> None:
    carol = subscribe(runtime, CAROL)
    smtp_server.reply_rcpt[CAROL] = "421 4.7.0 Try later"
    assert runtime.dispatcher.run_pass(T0).deferred == 1
    (delivery,) = deliveries(runtime, carol)
    assert delivery.state is DeliveryState.DEFERRED
    csrf = sign_in(console)
    page = console.get("/admin/courses/bone-health").text
    assert "421 4.7.0 Try later" in page and f"/admin/deliveries/{delivery.id}/retry" in page
    later = T0 + timedelta(minutes=1)
    runtime.clock = lambda: later
    del smtp_server.reply_rcpt[CAROL]
    answer = console.post(f"/admin/deliveries/{delivery.id}/retry", data={"csrf": csrf},
                          follow_redirects=False)  # fmt: skip
    assert answer.headers["location"] == f"/admin/subscriptions/{carol}?done=retry"
    sub = subscription(runtime, carol)
    assert (sub.state, sub.next_due_at, sub.retry_attempts) == (SubscriptionState.ACTIVE, later, 1)
    assert runtime.dispatcher.run_pass(later).sent == 1
    again = console.post(f"/admin/deliveries/{delivery.id}/retry", data={"csrf": csrf})
    assert again.status_code == 409, "sent: nothing to retry"
    assert (
        console.post("/admin/deliveries/4000000000/retry", data={"csrf": csrf}).status_code == 404
    )


def test_the_cli_adds_operators_and_lists_subscribers_with_ids(
    runtime: Runtime, database_url: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("DRIP_DATABASE_URL", database_url)
    monkeypatch.setenv("DRIP_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setattr("sys.stdin", _Stdin(PASSWORD + "\n"))
    assert main(["admin", "add", "Ops@Example.com", "--now", "2026-03-02T06:00:00"]) == 0
    assert main(["admin", "add", "ops@example.com"]) == 2, "already an operator"
    monkeypatch.setattr("sys.stdin", _Stdin("short\n"))
    assert main(["admin", "passwd", "ops@example.com"]) == 2
    monkeypatch.setattr("sys.stdin", _Stdin("a new long password\n" * 2))
    assert main(["admin", "passwd", "nobody@example.com"]) == 2
    assert main(["admin", "passwd", "ops@example.com"]) == 0
    with runtime.sessions() as session:
        assert operators.verify(session, "OPS@example.com", "a new long password") is not None
        assert operators.verify(session, "ops@example.com", PASSWORD) is None
    ids = {email: subscribe(runtime, email) for email in (CAROL, ALICE, BOB)}
    for n in (10, 2, 1):
        ids[f"reader{n}@example.com"] = _subscribe_any(runtime, f"reader{n}@example.com")
    capsys.readouterr()
    assert main(["subscribers", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    readers = [f"reader{n}@example.com" for n in (1, 2, 10)]
    assert [row["email"] for row in listed] == [ALICE, BOB, CAROL, *readers], "natural order"
    assert all(row["id"] == ids[row["email"]] for row in listed)
    assert main(["subscribers", "--state", "pending"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("id\temail") and len(lines) == 4
    with pytest.raises(SystemExit) as refused:
        main(["subscribers", "--state", "nonsense"])
    assert refused.value.code == 2


def test_drip_admin_without_a_usable_database_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DRIP_CONFIG", str(tmp_path / "absent.toml"))
    for url, status, said in (
        (f"sqlite:///{tmp_path / 'empty.db'}", 1, "run `drip init` first"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", 4, "cannot use the database"),
    ):
        monkeypatch.setenv("DRIP_DATABASE_URL", url)
        monkeypatch.setattr("sys.stdin", _Stdin(PASSWORD + "\n"))
        assert main(["admin", "add", OPERATOR]) == status
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


class _Stdin:
    """Standard input that is not a terminal, holding `text`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        line, _, self.text = self.text.partition("\n")
        return line + "\n"


def _subscribe_any(rt: Runtime, email: str) -> int:
    from drip import subscriptions

    with rt.sessions() as session, session.begin():
        return subscriptions.subscribe(session, rt.course("bone-health"), email, now=T0).id


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lost_database_is_a_clean_503(
    database_url: str,
    tmp_path: Path,
    smtp_server,
    postgres_proxy: Proxy,  # noqa: F811
) -> None:
    rt = make_runtime(postgres_proxy.route(database_url), tmp_path, smtp_url=smtp_server.url)
    rt.clock = lambda: T0
    try:
        add_operator(rt)
        alice = subscribe(rt, ALICE)
        with TestClient(create_app(rt), base_url="https://drip.example.org",
                        raise_server_exceptions=False) as client:  # fmt: skip
            csrf = sign_in(client)
            postgres_proxy.cut()
            for answer in (client.get(f"/admin/subscriptions/{alice}"),
                           client.post(f"/admin/subscriptions/{alice}",
                                       data={"csrf": csrf, "action": "pause"}),
                           client.post(f"/admin/subscriptions/{alice}/export",
                                       data={"csrf": csrf}),
                           client.post(f"/admin/subscriptions/{alice}/erase",
                                       data={"csrf": csrf, "confirm": ALICE})):  # fmt: skip
                assert answer.status_code == 503 and "cannot reach its database" in answer.text
            postgres_proxy.restore()
            page = client.get(f"/admin/subscriptions/{alice}")
            assert page.status_code == 200 and f"<h1>{ALICE}</h1>" in page.text, "not erased"
        assert subscription(rt, alice).state is SubscriptionState.ACTIVE
    finally:
        rt.close()


def test_settings_of_the_console_and_metrics_are_checked() -> None:
    from drip.config import Settings
    from drip.errors import ConfigError

    with pytest.raises(ConfigError, match="metrics_listen"):
        Settings().with_values({"metrics_listen": "nowhere"})
    assert Settings().with_values({"admin_signin_limit": "3"}).admin_signin_limit == 3
    assert dataclasses.fields(Settings)  # the console's settings are plain fields


def test_searches_take_percent_and_underscore_as_themselves(runtime, console) -> None:
    from drip import suppressions
    from drip.models import SuppressionReason

    addresses = ("a_b@example.com", "axb@example.com", "100%@example.com")
    with runtime.sessions() as session, session.begin():
        for address in addresses:
            suppressions.suppress(session, address, SuppressionReason.MANUAL, "", T0,
                                  runtime.courses)  # fmt: skip
    for address in addresses:
        _subscribe_any(runtime, address.replace("@", "+s@"))
    sign_in(console)
    page = console.get("/admin/suppressions?q=A_B").text
    assert "a_b@example.com" in page and "axb@example.com" not in page
    page = console.get("/admin/subscribers?q=_b%2Bs").text
    assert "a_b+s@example.com" in page and "axb+s@example.com" not in page
    page = console.get("/admin/suppressions?q=%25").text
    assert "100%@example.com" in page and "a_b@example.com" not in page


def test_a_search_with_a_nul_is_refused_not_a_database_error(runtime, console) -> None:
    """PostgreSQL cannot compare text holding NUL: a hand-made URL gets 422, and the search
    goes on working."""
    sign_in(console)
    for path in ("/admin/suppressions", "/admin/subscribers"):
        refused = console.get(f"{path}?q=a%00b")
        assert refused.status_code == 422, (path, refused.status_code)
        assert console.get(f"{path}?q=ab").status_code == 200
