"""A person's data in the console, on SQLite and PostgreSQL: the consent record kept at a web
confirmation, the export as a JSON download, an erasure that one click cannot make and that no
forged form makes, each in the audit log with the operator; and the outgoing webhooks' recent
attempts on the first page."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select
from starlette.testclient import TestClient

from drip import privacy, subscriptions
from drip.models import OperatorAction, Subscriber, SubscriptionState
from drip.models_api import Consent
from drip.runtime import Runtime

from conftest import T0
from helpers import (
    ALICE,
    BOB,
    OPERATOR,
    add_operator,
    csrf_of,
    forged,
    sign_in,
    subscribe,
    subscription,
)
from webhook_receiver import Receiver, add_endpoint

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def audit(rt: Runtime) -> list[tuple[str, str, int | None]]:
    with rt.sessions() as session:
        rows = session.scalars(select(OperatorAction).order_by(OperatorAction.id))
        return [(a.operator, a.action, a.subscription_id) for a in rows]


def addresses(rt: Runtime) -> list[str]:
    with rt.sessions() as session:
        return sorted(session.scalars(select(Subscriber.email)))


def confirm_on_the_web(rt: Runtime, client: TestClient, email: str) -> int:
    sub_id = subscribe(rt, email, confirmed=False)
    token = subscription(rt, sub_id).confirm_token
    answer = client.post(f"/confirm/{token}", headers={"user-agent": BROWSER})
    assert answer.status_code == 200 and subscription(rt, sub_id).state is SubscriptionState.ACTIVE
    return sub_id


def test_the_consent_record_shows_after_a_web_confirmation(runtime, client) -> None:
    add_operator(runtime)
    alice = confirm_on_the_web(runtime, client, ALICE)
    bob = subscribe(runtime, BOB)  # enrolled without a confirmation of their own
    sign_in(client)
    page = client.get(f"/admin/subscriptions/{alice}").text
    section = page.split('id="consent"')[1].split("</section>")[0]
    assert BROWSER in section and "<td>web</td>" in section and "testclient" in section
    assert "Send me the 7 lessons" in section and T0.strftime("%Y-%m-%d %H:%M:%S") in section
    assert f'action="/admin/subscriptions/{alice}/export"' in section
    assert f'action="/admin/subscriptions/{alice}/erase"' in section
    assert "No consent record" in client.get(f"/admin/subscriptions/{bob}").text


def test_export_is_a_json_download_for_a_signed_in_operator(runtime, client) -> None:
    add_operator(runtime)
    alice = confirm_on_the_web(runtime, client, ALICE)
    anonymous = csrf_of(client.get("/admin/login").text)  # a session that names no one
    for token in (anonymous, ""):
        refused = client.post(f"/admin/subscriptions/{alice}/export", data={"csrf": token})
        assert refused.status_code == 403 and ALICE not in refused.text
    csrf = sign_in(client)
    answer = client.post(f"/admin/subscriptions/{alice}/export", data={"csrf": csrf})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"].startswith("application/json")
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment;") and ALICE not in disposition
    data = json.loads(answer.content)
    assert data["subscriber"]["email"] == ALICE
    assert data["consents"][0]["user_agent"] == BROWSER
    assert [s["id"] for s in data["subscriptions"]] == [alice]
    assert client.post("/admin/subscriptions/99999/export", data={"csrf": csrf}).status_code == 404
    assert client.post("/admin/subscriptions/x/export", data={"csrf": csrf}).status_code == 404
    assert audit(runtime) == [(OPERATOR, "sign-in", None), (OPERATOR, "export", alice)]


def test_erasing_needs_the_address_typed_and_the_forms_token(runtime, client) -> None:
    add_operator(runtime)
    alice = confirm_on_the_web(runtime, client, ALICE)
    csrf = sign_in(client)
    url = f"/admin/subscriptions/{alice}/erase"
    for form, status in (
        ({"csrf": csrf}, 400), ({"csrf": csrf, "confirm": ""}, 400),
        ({"csrf": csrf, "confirm": BOB}, 400), ({"csrf": csrf, "confirm": ALICE + "x"}, 400),
        ({"confirm": ALICE}, 403), ({"csrf": forged(csrf), "confirm": ALICE}, 403),
        ({"csrf": "", "confirm": ALICE}, 403),
    ):  # fmt: skip
        answer = client.post(url, data=form)
        assert answer.status_code == status, form
    assert client.post("/admin/subscriptions/99999/erase",
                       data={"csrf": csrf, "confirm": ALICE}).status_code == 404  # fmt: skip
    assert ALICE in addresses(runtime)
    assert subscription(runtime, alice).state is SubscriptionState.ACTIVE
    assert audit(runtime) == [(OPERATOR, "sign-in", None)], "nothing changed, nothing logged"


def test_erasing_removes_the_person_and_is_in_the_audit_log(runtime, client) -> None:
    add_operator(runtime)
    alice = confirm_on_the_web(runtime, client, ALICE)
    bob = subscribe(runtime, BOB)
    runtime.dispatcher.run_pass(T0)
    csrf = sign_in(client)
    answer = client.post(f"/admin/subscriptions/{alice}/erase",
                         data={"csrf": csrf, "confirm": f" {ALICE.upper()} "},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/subscriptions/{alice}?done=erase"
    page = client.get(answer.headers["location"]).text
    assert "Erased:" in page and ALICE not in page and "has been erased" in page
    sub = subscription(runtime, alice)
    assert (sub.state, sub.current_day) == (SubscriptionState.UNSUBSCRIBED, 1), "counts kept"
    assert ALICE not in addresses(runtime) and BOB in addresses(runtime)
    with runtime.sessions() as session:
        assert privacy.export(session, ALICE) is None
        (consent,) = session.scalars(select(Consent).where(Consent.subscription_id == alice))
        assert (consent.ip, consent.user_agent) == ("", "")
    again = client.post(f"/admin/subscriptions/{alice}/erase",
                        data={"csrf": csrf, "confirm": ALICE})  # fmt: skip
    assert again.status_code == 409
    assert audit(runtime)[1:] == [(OPERATOR, "erase", alice)]
    assert subscription(runtime, bob).state is SubscriptionState.ACTIVE


def test_erasing_waits_while_a_lesson_is_being_sent(runtime, client) -> None:
    add_operator(runtime)
    alice = subscribe(runtime, ALICE)
    with runtime.write_sessions() as session, session.begin():  # as a worker's claim leaves it
        leased = session.get(subscriptions.Subscription, alice)
        assert leased is not None
        leased.leased_until = T0 + timedelta(minutes=1)
    csrf = sign_in(client)
    answer = client.post(f"/admin/subscriptions/{alice}/erase",
                         data={"csrf": csrf, "confirm": ALICE})  # fmt: skip
    assert answer.status_code == 409 and "being sent" in answer.text
    assert ALICE in addresses(runtime)
    assert subscription(runtime, alice).state is SubscriptionState.ACTIVE


def test_recent_webhook_attempts_show_on_the_first_page(runtime, client, receiver: Receiver):
    add_operator(runtime)
    add_endpoint(runtime, receiver)
    subscribe(runtime, ALICE)
    runtime.dispatcher.run_pass(T0)
    assert runtime.webhooks.run_pass(T0).delivered == 2
    sign_in(client)
    section = client.get("/admin").text.split('id="webhooks"')[1].split("</section>")[0]
    assert "0 message(s) waiting" in section and receiver.url in section
    assert "subscriber.confirmed" in section and "lesson.sent" in section
    assert all(m.webhook_id in section for m in receiver.received)
    receiver.status = 503  # the receiver fails from now on
    bob = subscribe(runtime, BOB)
    runtime.webhooks.run_pass(T0 + timedelta(minutes=1))
    section = client.get("/admin").text.split('id="webhooks"')[1].split("</section>")[0]
    assert "1 message(s) waiting" in section and ">503<" in section
    assert section.index(">503<") < section.index("lesson.sent"), "newest first"
    receiver.stop()
    runtime.webhooks.run_pass(T0 + timedelta(hours=1))
    section = client.get("/admin").text.split('id="webhooks"')[1].split("</section>")[0]
    assert "no answer" in section and bob
