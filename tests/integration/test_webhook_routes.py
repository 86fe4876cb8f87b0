"""The relays' webhooks through the real app, on SQLite and PostgreSQL: a signed report acts
once, the same report again changes nothing, anything unproven gets a 4xx and leaves every
table as it was, a provider without settings has no route, a lost database answers 503."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from drip import suppressions
from drip.models import FeedbackEvent, SeenToken, Subscription, SubscriptionState, Suppression
from drip.runtime import Runtime
from drip.web import create_app
from drip.webhooks import WebhookRequest

from conftest import T0, make_runtime
from fleet import start_drip, stop
from helpers import ALICE, BOB, deliveries, subscribe, subscription
from proxy import Proxy, postgres_proxy  # noqa: F401  (fixture)
from relay_webhooks import (
    CERT_URL,
    MAILGUN_KEY,
    NOW,
    POSTMARK_PASSWORD,
    PROVIDERS,
    SUBSCRIBE_URL,
    CertificateServer,
    mailgun_body,
    pem,
    post,
    relay_report,
    signing_certificate,
    sns_envelope,
    webhook_settings,
)

assert NOW == T0  # the relays' samples and the lessons sent share one clock


def hooks_runtime(database_url: str, tmp_path: Path, smtp_url: str) -> Runtime:
    """All four routes on; SNS certificates and SubscribeURLs served from memory."""
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_url, **webhook_settings(tmp_path))
    rt.http_get = CertificateServer(
        {CERT_URL: pem(signing_certificate()), SUBSCRIBE_URL: b"<ConfirmSubscriptionResponse/>"}
    )
    rt.clock = lambda: NOW
    return rt


@pytest.fixture
def hooks(database_url: str, tmp_path: Path, smtp_server) -> Iterator[tuple[Runtime, TestClient]]:
    rt = hooks_runtime(database_url, tmp_path, smtp_server.url)
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        yield rt, client
    rt.close()


def send(client: TestClient, provider: str, request: WebhookRequest):
    """The request, posted to the provider's route through the app."""
    return client.post(f"/webhooks/{provider}", content=request.body, headers=dict(request.headers))


def lesson_sent(rt: Runtime, email: str) -> tuple[int, str]:
    """A subscription of `email` with lesson 1 sent: its id and the lesson's Message-ID."""
    sub_id = subscribe(rt, email)
    rt.dispatcher.run_pass(T0)
    (first,) = deliveries(rt, sub_id)
    assert first.message_id
    return sub_id, first.message_id


def tables(rt: Runtime) -> list[object]:
    """What a report may change: its events, suppressions, Mailgun's tokens, the states."""
    with rt.sessions() as session:
        counts = [session.scalar(select(func.count()).select_from(table))
                  for table in (FeedbackEvent, Suppression, SeenToken)]  # fmt: skip
        states = session.scalars(select(Subscription.state).order_by(Subscription.id)).all()
    return [*counts, [str(state) for state in states]]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signed_hard_bounce_ends_the_subscription_once(
    hooks: tuple[Runtime, TestClient], provider: str
) -> None:
    rt, client = hooks
    alice, message_id = lesson_sent(rt, ALICE)
    bob, _ = lesson_sent(rt, BOB)
    report = relay_report(provider, "bounce", ALICE, message_id)
    answer = send(client, provider, report)
    assert (answer.status_code, answer.json()) == (200, {"recorded": 1, "duplicates": 0})
    assert subscription(rt, alice).state is SubscriptionState.BOUNCED
    assert subscription(rt, bob).state is SubscriptionState.ACTIVE
    with rt.sessions() as session:
        assert suppressions.is_suppressed(session, ALICE)
    before = tables(rt)
    again = send(client, provider, report)
    if provider == "mailgun":  # its token is spent: a replay
        assert (again.status_code, again.json()) == (403, {"error": "token seen before"})
    else:
        assert (again.status_code, again.json()) == (200, {"recorded": 0, "duplicates": 1})
    assert tables(rt) == before


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signed_complaint_unsubscribes_from_every_course(
    hooks: tuple[Runtime, TestClient], provider: str
) -> None:
    rt, client = hooks
    first, message_id = lesson_sent(rt, ALICE)
    with rt.sessions() as session, session.begin():  # the same person, in a second course
        sub = session.get(Subscription, first)
        assert sub is not None
        sub.course_slug = "bone-health-copy"
    second = subscribe(rt, ALICE)
    answer = send(client, provider, relay_report(provider, "complaint", ALICE, message_id))
    assert (answer.status_code, answer.json()) == (200, {"recorded": 1, "duplicates": 0})
    assert subscription(rt, second).state is SubscriptionState.UNSUBSCRIBED
    with rt.sessions() as session:
        assert suppressions.is_suppressed(session, ALICE)


def refusals(message_id: str) -> list[tuple[str, WebhookRequest, int]]:
    """(provider, request, status) of requests that must change nothing."""
    cases = []
    for provider in PROVIDERS:
        good = relay_report(provider, "bounce", ALICE, message_id, key="7")
        truncated = WebhookRequest("POST", good.headers, good.body[:-9])
        cases.append((provider, truncated, 403 if provider == "sendgrid" else 400))
        if provider != "postmark":  # Postmark's reports carry no time to check
            stale = relay_report(provider, "bounce", ALICE, message_id, at=NOW - timedelta(hours=2))
            cases.append((provider, stale, 403))
        cases.append((provider, WebhookRequest("POST", good.headers, b" " * 1_100_000), 413))
    signed = json.loads(relay_report("mailgun", "bounce", ALICE, message_id).body)
    signed["signature"]["signature"] = "0" * 64
    forged_ses = json.loads(relay_report("ses", "bounce", ALICE, message_id).body)
    forged_ses["Message"] = forged_ses["Message"].replace(ALICE, BOB)
    sendgrid = relay_report("sendgrid", "bounce", ALICE, message_id)
    return [
        *cases,
        ("mailgun", post(signed), 403),
        ("mailgun", post(mailgun_body({"event": "failed"}, key="not-our-key")), 403),
        ("ses", post(forged_ses), 403),
        ("sendgrid", WebhookRequest("POST", sendgrid.headers,
                                    sendgrid.body.replace(b"5.1", b"5.2")), 403),
        ("postmark", post(json.loads(relay_report("postmark", "bounce", ALICE, message_id).body),
                          {"authorization": "Basic ZHJpcC1ob29rczpndWVzcw=="}), 401),
        ("postmark", post({"RecordType": "Bounce"}), 401),
    ]  # fmt: skip


def test_unproven_requests_get_a_4xx_and_change_nothing(
    hooks: tuple[Runtime, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    rt, client = hooks
    _, message_id = lesson_sent(rt, ALICE)
    before = tables(rt)
    for provider, request, status in refusals(message_id):
        answer = send(client, provider, request)
        assert answer.status_code == status, (provider, request.body[:300], answer.text)
        if status != 413:  # the body limit answers before the route, in plain text
            assert set(answer.json()) == {"error"}
    assert tables(rt) == before
    assert before[1] == 0 and before[3] == ["active"]
    assert "postmark webhook refused (401): wrong credentials" in caplog.text
    for secret in (POSTMARK_PASSWORD, MAILGUN_KEY, "not-our-key"):
        assert secret not in caplog.text


def test_a_provider_without_settings_has_no_route(
    database_url: str, tmp_path: Path, smtp_server
) -> None:
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url, mailgun_signing_key="k")
    with TestClient(create_app(rt)) as client:
        for provider in ("ses", "postmark", "sendgrid"):
            assert client.post(f"/webhooks/{provider}", content=b"{}").status_code == 404
        assert client.post("/webhooks/mailgun", content=b"{}").status_code == 401
        assert client.get("/webhooks/mailgun").status_code == 405
    rt.close()


def test_sns_subscriptions_are_confirmed_for_our_topic_only(
    hooks: tuple[Runtime, TestClient],
) -> None:
    rt, client = hooks
    fetcher = rt.http_get
    assert isinstance(fetcher, CertificateServer)
    before = tables(rt)
    foreign = sns_envelope("join", message_type="SubscriptionConfirmation",
                           topic="arn:aws:sns:eu-west-1:999999999999:theirs")  # fmt: skip
    answer = send(client, "ses", post(foreign))
    assert answer.status_code == 403
    assert fetcher.asked == [], "a foreign topic's confirmation was acted on"
    ours = sns_envelope("join", message_type="SubscriptionConfirmation")
    answer = send(client, "ses", post(ours))
    assert answer.status_code == 200
    assert fetcher.asked == [CERT_URL, SUBSCRIBE_URL]
    send(client, "ses", post(ours))
    assert fetcher.asked == [CERT_URL, SUBSCRIBE_URL, SUBSCRIBE_URL], "the certificate is cached"
    assert tables(rt) == before


# SQLite is a file in this process: it has no outage to answer.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lost_database_answers_503_and_the_retry_is_recorded(
    database_url: str,
    tmp_path: Path,
    smtp_server,
    postgres_proxy: Proxy,  # noqa: F811
) -> None:
    through_proxy = postgres_proxy.route(database_url)
    rt = hooks_runtime(through_proxy, tmp_path, smtp_server.url)
    try:
        alice, message_id = lesson_sent(rt, ALICE)
        report = relay_report("mailgun", "bounce", ALICE, message_id)
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            postgres_proxy.cut()
            answer = send(client, "mailgun", report)
            assert (answer.status_code, set(answer.json())) == (503, {"error"})
            postgres_proxy.restore()
            answer = send(client, "mailgun", report)  # the token was not kept: a retry passes
            assert (answer.status_code, answer.json()) == (200, {"recorded": 1, "duplicates": 0})
        assert subscription(rt, alice).state is SubscriptionState.BOUNCED
    finally:
        rt.close()


def test_a_drip_serve_process_believes_signed_mailgun_reports_once(
    database_url: str, tmp_path: Path, smtp_server
) -> None:
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url)
    alice, message_id = lesson_sent(rt, ALICE)
    process, base = start_drip(
        "serve", database_url, smtp_server, tmp_path, mailgun_signing_key=MAILGUN_KEY
    )
    try:  # the server's clock is the wall clock
        report = relay_report("mailgun", "bounce", ALICE, message_id, at=datetime.now(UTC))
        url = f"{base}/webhooks/mailgun"
        forged = json.loads(report.body)
        forged["signature"]["token"] = "another-token"
        assert httpx.post(url, json=forged).status_code == 403
        assert subscription(rt, alice).state is SubscriptionState.ACTIVE
        answer = httpx.post(url, content=report.body)
        assert (answer.status_code, answer.json()) == (200, {"recorded": 1, "duplicates": 0})
        assert httpx.post(url, content=report.body).status_code == 403
        assert httpx.post(f"{base}/webhooks/sendgrid", content=b"[]").status_code == 404
        assert subscription(rt, alice).state is SubscriptionState.BOUNCED
    finally:
        output = stop(process)
        rt.close()
    assert "token seen before" in output
    assert MAILGUN_KEY not in output
