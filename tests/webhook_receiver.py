"""A webhook receiver on loopback, as another system would run one: it checks each message as
the Standard Webhooks specification says (its own code, not drip's), refuses an id it has seen,
and can be stopped (connections refused), made to fail (503) or made to stall."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from drip.hooks import outbox
from drip.runtime import Runtime

from smtp_server import free_port


@dataclass
class Message:
    webhook_id: str
    timestamp: int
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


def spec_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The specification's algorithm: base64 HMAC-SHA256, keyed with the base64 bytes after
    whsec_, of "{id}.{timestamp}.{body}"."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = webhook_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    secret: str = ""  # set once the endpoint is added
    status: int = 200
    received: list[Message] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused message was refused
    stall: threading.Event | None = None  # while set to an unset Event, requests wait on it
    stalled: threading.Event = field(default_factory=threading.Event)  # a request is waiting
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if receiver.stall is not None:
                    receiver.stalled.set()
                    receiver.stall.wait(60)
                code = receiver.take(dict(self.headers.items()), body)
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def take(self, headers: dict[str, str], body: bytes) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        webhook_id, stamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
        expected = "v1," + spec_signature(self.secret, webhook_id, int(stamp or 0), body)
        if expected not in lowered.get("webhook-signature", "").split():
            self.refused.append(f"bad signature on {webhook_id}")
            return 401
        if any(m.webhook_id == webhook_id for m in self.received):
            self.refused.append(f"reused id {webhook_id}")
            return 409
        if self.status >= 300:
            return self.status
        self.received.append(Message(webhook_id, int(stamp), body))
        return self.status

    def types(self) -> list[str]:
        return [m.event["type"] for m in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    if found.stall is not None:
        found.stall.set()
    found.stop()


def add_endpoint(rt: Runtime, receiver: Receiver, events: tuple[str, ...] = ()) -> int:
    """An endpoint for `receiver` (all events, or those named), its secret told to it."""
    from conftest import T0  # here: conftest imports this module for its fixture

    with rt.write_sessions() as session, session.begin():
        endpoint = outbox.add_endpoint(session, receiver.url, list(events), T0)
        receiver.secret = endpoint.secret
        return endpoint.id
