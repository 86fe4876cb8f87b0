"""The commands of the API, webhooks and personal data: keys shown once, endpoints and their
deliveries, a subscriber's export and erasure, and one-line refusals (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from drip import apikeys, privacy
from drip.cli import main
from drip.runtime import Runtime

from conftest import make_runtime
from helpers import ALICE, link
from webhook_receiver import Receiver

NOW = ["--now", "2026-03-02T06:00:00Z"]


@pytest.fixture
def env(database_url: str, tmp_path: Path, smtp_server, monkeypatch) -> str:
    values = {"DRIP_DATABASE_URL": database_url, "DRIP_SMTP_URL": smtp_server.url,
              "DRIP_BASE_URL": "https://drip.example.org",
              "DRIP_CONFIG": str(tmp_path / "absent.toml")}  # fmt: skip
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)
    return database_url


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_api_keys_are_shown_once_and_revoked(env, capsys, tmp_path: Path) -> None:
    status, out, _ = run(capsys, "api-key", "create", "--scope", "write", "--name", "shop", *NOW)
    assert status == 0
    key = out.split(": ", 1)[1].split()[0]
    assert key.startswith("drip_")
    status, listing, _ = run(capsys, "api-key", "list")
    assert "shop\twrite" in listing and key not in listing
    rt = make_runtime(env, tmp_path)
    with rt.sessions() as session:
        assert apikeys.authenticate(session, key) is not None
    assert run(capsys, "api-key", "revoke", "1", *NOW)[0] == 0
    with rt.sessions() as session:
        assert apikeys.authenticate(session, key) is None
    rt.close()
    for args in (["revoke", "1"], ["revoke", "x"], ["revoke"]):
        status, _, err = run(capsys, "api-key", *args, *NOW)
        assert status == 2 and err.startswith("drip: ") and err.count("\n") == 1


def test_webhook_endpoints_and_their_deliveries(env, capsys, receiver: Receiver) -> None:
    assert run(capsys, "subscribe", ALICE, "--course", "bone-health", *NOW)[0] == 0  # pending
    status, out, _ = run(capsys, "webhooks", "add", receiver.url, "--events",
                         "subscriber.confirmed,subscriber.unsubscribed", *NOW)  # fmt: skip
    assert status == 0
    receiver.secret = next(line for line in out.splitlines() if line.startswith("secret: "))[8:]
    assert receiver.secret.startswith("whsec_")
    assert receiver.secret not in run(capsys, "webhooks", "list")[1]
    assert run(capsys, "unsubscribe", ALICE, *NOW)[0] == 0
    status, out, _ = run(capsys, "webhook", "deliver", *NOW)
    assert status == 0 and "1 delivered" in out
    assert receiver.types() == ["subscriber.unsubscribed"]
    status, out, _ = run(capsys, "webhooks", "attempts")
    assert "subscriber.unsubscribed" in out and "\t200\t" in out
    assert run(capsys, "webhooks", "remove", "1")[0] == 0
    assert run(capsys, "webhooks", "list")[1].count("\n") == 1  # the header alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "ftp://example.org/x"], "not an http"),
        (["add", "http://"], "not an http"),
        (["add"], "needs the endpoint's URL"),
        (["add", "http://127.0.0.1:9/x", "--events", "lesson.read"], "unknown event"),
        (["remove", "7"], "no webhook endpoint 7"),
        (["remove", "seven"], "not an endpoint id"),
    ],
)
def test_bad_webhook_input_is_one_line_exit_2(env, capsys, args, message) -> None:
    status, _, err = run(capsys, "webhooks", *args, *NOW)
    assert status == 2 and message in err and err.count("\n") == 1


def test_export_and_erase_a_subscriber(env, capsys, tmp_path: Path) -> None:
    run(capsys, "subscribe", ALICE, "--course", "bone-health", "--confirmed", "--name", "Al",
        *NOW)  # fmt: skip
    assert run(capsys, "tick", *NOW)[0] == 0
    status, out, _ = run(capsys, "subscriber", "export", ALICE)
    data = json.loads(out)
    assert status == 0 and data["subscriber"]["name"] == "Al"
    assert data["subscriptions"][0]["deliveries"][0]["day"] == 1
    status, _, err = run(capsys, "subscriber", "erase", ALICE)
    assert status == 2 and "--now" in err
    status, out, _ = run(capsys, "subscriber", "erase", ALICE, *NOW)
    assert status == 0 and "1 subscription(s) ended" in out
    assert run(capsys, "subscriber", "export", ALICE)[0] == 2
    status, out, _ = run(capsys, "stats", "--json")
    assert json.loads(out)["by_state"]["unsubscribed"] == 1  # the counts stay
    assert ALICE not in run(capsys, "subscribers")[1]


def test_confirming_keeps_a_consent_record(client: TestClient, runtime: Runtime,
                                           smtp_server) -> None:  # fmt: skip
    client.post("/subscribe", data={"email": ALICE, "course": "bone-health"})
    (message,) = smtp_server.wait_for(1)
    page = client.get(link(message, "confirm"))
    course = runtime.course("bone-health")
    assert privacy.wording(course).split("\u201c")[0] in page.text
    client.post(link(message, "confirm"), headers={"user-agent": "Firefox/140 (test)"})
    with runtime.sessions() as session:
        data = privacy.export(session, ALICE)
    assert data is not None
    (consent,) = data["consents"]
    assert consent["user_agent"] == "Firefox/140 (test)" and consent["ip"] == "testclient"
    assert consent["wording"] == privacy.wording(course) and consent["source"] == "web"
