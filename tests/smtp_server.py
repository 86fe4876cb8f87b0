"""A real SMTP server (aiosmtpd) on loopback that tests can tell to misbehave.

server.reply_rcpt["x@example.com"] = "550 5.1.1 No such user"   # one recipient refused
server.fail_all = "421 4.3.2 Try again later"                   # every command refused
server.drop_on_data = 1          # hang up during DATA for the next message(s)
server.stall_seconds = 2.0       # wait before answering DATA (client timeouts)
server.stop(); server.start()    # gone (connection refused), then back on the same port
SMTPServer(smtputf8=True)        # offers SMTPUTF8 (RFC 6531): fixture smtputf8_server
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    envelope_from: str
    envelope_recipients: list[str]
    data: bytes
    message: EmailMessage
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM parameters: SMTPUTF8, ...
    arrived: float = field(default_factory=time.monotonic)  # when DATA was taken


class Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:  # fmt: skip
        self.server.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        if self.server.fail_all:
            return self.server.fail_all
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        if self.server.fail_all:
            return self.server.fail_all
        reply = self.server.reply_rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.server.fail_all:
            return self.server.fail_all
        if self.server.stall_seconds:
            await asyncio.sleep(self.server.stall_seconds)
        if self.server.drop_on_data > 0:
            self.server.drop_on_data -= 1
            server.transport.close()
            return "421 4.4.2 connection dropped by the test"
        data = bytes(envelope.original_content or envelope.content)
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        received = Received(
            envelope.mail_from, list(envelope.rcpt_tos), data, message, list(envelope.mail_options)
        )
        with self.server.lock:
            self.server.messages.append(received)
        return f"250 2.0.0 Ok: queued as {len(self.server.messages)}"


class RecordingSMTP(SMTP):
    """aiosmtpd's protocol, noting every reply that says the client broke the protocol
    (503 bad sequence, 500/501 syntax): a sender that shares a connection shows up here."""

    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.recorder = handler.server

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text[:3] in ("500", "501", "503"):
            with self.recorder.lock:
                self.recorder.protocol_errors.append(text)
        await super().push(status)


class RecordingController(Controller):
    def factory(self) -> SMTP:
        return RecordingSMTP(self.handler, **self.SMTP_kwargs)


class SMTPServer:
    def __init__(self, port: int | None = None, *, smtputf8: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.smtputf8 = smtputf8  # offer SMTPUTF8 in EHLO; without it, non-ASCII gets a 5xx
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.protocol_errors: list[str] = []
        self.connections = 0
        self.reset()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}?timeout=5"

    def reset(self) -> None:
        """Forget what was received and behave again."""
        with self.lock:
            self.messages.clear()
        self.reply_rcpt: dict[str, str] = {}
        self.fail_all: str | None = None
        self.drop_on_data = 0
        self.stall_seconds = 0.0

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The messages, once at least `count` have arrived from another thread or process
        (their sender's own schedule decides when; this only waits for the socket)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        with self.lock:
            assert len(self.messages) >= count, f"{len(self.messages)} of {count} arrived"
            return list(self.messages)

    def start(self) -> None:
        self._controller = RecordingController(
            Handler(self), hostname=self.host, port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtputf8_server() -> Iterator[SMTPServer]:
    """A relay that offers SMTPUTF8, for addresses whose local part is not ASCII."""
    server = SMTPServer(smtputf8=True)
    server.start()
    yield server
    server.stop()
