"""The API against its own OpenAPI document, on a live `drip serve` process: schemathesis
writes requests from the document (valid ones and broken ones), and every answer must be no
5xx, a status the document names, and a body its schema allows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, text

from drip import apikeys, migrations
from drip.models import make_engine
from drip.runtime import Runtime

from conftest import POSTGRES_URL, T0, make_runtime
from fleet import start_drip, stop
from helpers import ALICE, BOB, subscribe
from smtp_server import SMTPServer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]  # fmt: skip


class LiveApi:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """`drip serve` on a database holding a write key and two subscriptions."""
    folder: Path = tmp_path_factory.mktemp("api")
    schema = f"drip_api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    url = f"sqlite:///{folder / 'drip.db'}"
    if request.param == "postgresql":
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        yield from _serving(url, folder)
    finally:
        if request.param == "postgresql":
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _serving(url: str, folder: Path) -> Iterator[LiveApi]:
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    rt: Runtime = make_runtime(url, folder)
    with rt.write_sessions() as session, session.begin():
        key = apikeys.create(session, "write", "schemathesis", T0)[1]
    for email in (ALICE, BOB):
        subscribe(rt, email)
    rt.close()
    relay = SMTPServer()
    relay.start()
    process, base = start_drip("serve", url, relay, folder)
    try:
        yield LiveApi(base, key)
    finally:
        log = stop(process)
        relay.stop()
        assert "Traceback" not in log, log


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_the_api_answers_as_its_document_says(live_api: LiveApi, mode: GenerationMode) -> None:
    """Requests within the document (positive) and outside it (negative), to every route."""
    document = schemathesis.openapi.from_url(f"{live_api.base}/api/v1/openapi.json")

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=document.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=f"{live_api.base}/api/v1", headers=live_api.headers,
                               checks=CHECKS)  # fmt: skip

    call()


def test_without_a_key_every_route_answers_401(live_api: LiveApi) -> None:
    document = httpx.get(f"{live_api.base}/api/v1/openapi.json").json()
    for path, operations in document["paths"].items():
        for method in operations:
            answer = httpx.request(method, f"{live_api.base}/api/v1{path.replace('{id}', '1')}")
            assert answer.status_code == 401, (method, path)
            assert answer.json()["error"]["code"] == "unauthorized"
