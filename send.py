"""Transports: they move a message's bytes, one result per message. The message builds itself.

SMTPTransport speaks to a relay; OutboxTransport writes .eml files (the embedded default);
ConsoleTransport prints; MemoryTransport keeps messages in a list. All open lazily and are
context managers, like Django's mail backends. ParallelTransport spreads a batch over several
transports in threads, so a slow relay's round trips overlap instead of adding up.
"""

from __future__ import annotations

import abc
import enum
import logging
import os
import re
import smtplib
import ssl
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from .emails.mime import Outgoing
from .endpoints import SMTPRelay, parse_smtp_url
from .errors import ConfigError

log = logging.getLogger("drip.send")


class SendStatus(enum.Enum):
    SENT = "sent"  # accepted by the server
    TEMPORARY = "temporary"  # 4xx, refused, timeout, dropped connection: try again later
    PERMANENT = "permanent"  # 5xx for this recipient or this message
    UNSENDABLE = "unsendable"  # the message could not be built: a retry would fail the same


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    reply: str  # the server's words, one line


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return " ".join(f"{code} {text}".split())[:500]


class Transport(abc.ABC):
    """open()/close() and `with`; send_messages() returns one SendResult per message, in order."""

    def open(self) -> None:  # noqa: B027 -- most transports have nothing to open
        pass

    def close(self) -> None:  # noqa: B027
        pass

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abc.abstractmethod
    def send_messages(self, messages: Sequence[Outgoing]) -> list[SendResult]: ...


class SMTPTransport(Transport):
    """One connection reused across messages and batches; reconnects once after a drop."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        security: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if security not in {"none", "starttls", "tls"}:
            raise ConfigError(f"SMTP security {security!r}: use none, starttls or tls")
        self.host, self.port, self.security = host, port, security
        self.username, self.password, self.timeout = username, password, timeout
        self.connection: smtplib.SMTP | None = None

    @classmethod
    def from_url(cls, url: str) -> SMTPTransport:
        """smtp://user:pass@host:587?starttls=true, smtps://host:465, smtp://host?timeout=5."""
        return cls.for_relay(parse_smtp_url(url))

    @classmethod
    def for_relay(cls, relay: SMTPRelay) -> SMTPTransport:
        return cls(
            relay.host,
            relay.port,
            security=relay.security,
            username=relay.username,
            password=relay.password,
            timeout=relay.timeout,
        )

    def open(self) -> None:
        if self.connection is not None:
            return
        if self.security == "tls":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.security == "starttls":
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()
            raise
        self.connection = connection

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()

    def send_messages(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        results: list[SendResult] = []
        unreachable: SendResult | None = None
        for message in messages:
            if unreachable is None and self.connection is None:
                try:
                    self.open()
                except Exception as exc:  # refused, TLS, login, a host name IDNA refuses...
                    unreachable = SendResult(SendStatus.TEMPORARY, _failure(exc))
            results.append(unreachable or self._send_guarded(message))
        return results

    def _send_guarded(self, message: Outgoing) -> SendResult:
        """_send_one, with whatever else goes wrong turned into this message's result (see
        unexpected). The connection is dropped, its state being unknown; the next message opens
        another."""
        try:
            return self._send_one(message)
        except Exception as exc:
            self._drop()
            return unexpected(message, exc)

    def _send_one(self, message: Outgoing) -> SendResult:
        """MAIL, RCPT, DATA one by one, so each reply is seen and classified."""
        connection = self.connection
        assert connection is not None
        if message.needs_smtputf8 and not connection.has_extn("smtputf8"):
            needed_for = ", ".join(message.utf8_addresses)
            reason = f"the relay does not offer SMTPUTF8, needed for {needed_for}"
            return SendResult(SendStatus.PERMANENT, reason)
        try:
            # putcmd, not mail()/rcpt(): those re-parse each address with email.utils, which
            # costs more than the rest of the conversation; ours are validated on the way in.
            connection.command_encoding = "utf-8" if message.needs_smtputf8 else "ascii"
            connection.putcmd(
                "mail", f"FROM:<{message.sender}>{_mail_options(message, connection)}"
            )
            code, text = connection.getreply()
            if code != 250:
                return self._refused(code, text, permanent=False)  # our sender, not theirs
            connection.putcmd("rcpt", f"TO:<{message.recipient}>")
            code, text = connection.getreply()
            if code not in (250, 251):
                return self._refused(code, text, permanent=code >= 500)
            code, text = connection.data(message.data)
            if code != 250:
                return self._refused(code, text, permanent=code >= 500)
            return SendResult(SendStatus.SENT, _reply(code, text))
        except smtplib.SMTPResponseException as exc:  # DATA refused before the message went
            return self._refused(exc.smtp_code, exc.smtp_error, permanent=exc.smtp_code >= 500)
        except (OSError, smtplib.SMTPException) as exc:  # dropped, timed out, reset
            self._drop()
            return SendResult(SendStatus.TEMPORARY, _failure(exc))

    def _refused(self, code: int, text: bytes | str, *, permanent: bool) -> SendResult:
        if code == 421 or code == -1:
            self._drop()
        else:
            try:
                assert self.connection is not None
                self.connection.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()
        status = SendStatus.PERMANENT if permanent else SendStatus.TEMPORARY
        return SendResult(status, _reply(code, text))


def _mail_options(message: Outgoing, connection: smtplib.SMTP) -> str:
    """SMTPUTF8 (RFC 6531) for an address outside ASCII, with 8BITMIME for its UTF-8 header."""
    if not message.needs_smtputf8:
        return ""
    return " SMTPUTF8 BODY=8BITMIME" if connection.has_extn("8bitmime") else " SMTPUTF8"


def _failure(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused: {exc}"
    if isinstance(exc, TimeoutError):
        return f"timed out: {exc}"
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


class ParallelTransport(Transport):
    """Round-robins a batch over `size` transports, one thread each; results keep the batch's
    order. Each transport keeps its own connection, its own reconnects and its own failures."""

    def __init__(self, factory: Callable[[], Transport], size: int) -> None:
        if size < 1:
            raise ConfigError(f"the number of SMTP connections must be 1 or more, not {size}")
        self.transports = [factory() for _ in range(size)]

    def close(self) -> None:
        for transport in self.transports:
            transport.close()

    def send_messages(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        size = min(len(self.transports), len(messages))
        if size <= 1:
            return self.transports[0].send_messages(messages)
        shares = [messages[i::size] for i in range(size)]
        with ThreadPoolExecutor(size, thread_name_prefix="drip-smtp") as pool:
            answers = list(pool.map(lambda t, m: t.send_messages(m), self.transports, shares))
        results: list[SendResult] = [None] * len(messages)  # type: ignore[list-item]
        for i, answer in enumerate(answers):
            results[i::size] = answer
        return results


class OutboxTransport(Transport):
    """Writes each message as an .eml file: the embedded default, and a record to inspect."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def send_messages(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        return each_alone(messages, self._write)

    def _write(self, message: Outgoing) -> SendResult:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = re.sub(r"[^A-Za-z0-9.@_-]+", "", message.message_id.strip("<>"))[:120]
        path = self.folder / f"{stamp}-{name}.eml"
        # Written beside its final name, then renamed: a crash never leaves half a file.
        fd, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
        with os.fdopen(fd, "wb") as file:
            file.write(message.data)
        os.replace(temporary, path)
        log.info("wrote %s for %s to %s", message.message_id, message.recipient, path)
        return SendResult(SendStatus.SENT, f"written to {path}")


class ConsoleTransport(Transport):
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send_messages(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        results = each_alone(messages, self._print)
        self.stream.flush()
        return results

    def _print(self, message: Outgoing) -> SendResult:
        text = message.data.decode("utf-8", "replace").replace("\r\n", "\n")
        encoding = getattr(self.stream, "encoding", None) or "utf-8"  # a terminal may not be UTF-8
        self.stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
        self.stream.write("\n" + "-" * 79 + "\n")
        return SendResult(SendStatus.SENT, "printed")


class MemoryTransport(Transport):
    """Keeps what it is given, after checking each message parses: for previews and tests."""

    def __init__(self) -> None:
        self.outbox: list[Outgoing] = []

    def send_messages(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        return each_alone(messages, self._keep)

    def _keep(self, message: Outgoing) -> SendResult:
        message.as_message()
        self.outbox.append(message)
        return SendResult(SendStatus.SENT, "kept in memory")


def each_alone(
    messages: Sequence[Outgoing], send: Callable[[Outgoing], SendResult]
) -> list[SendResult]:
    """`send` per message; what one raises becomes its result, and the others go on."""
    results = []
    for message in messages:
        try:
            results.append(send(message))
        except Exception as exc:
            results.append(unexpected(message, exc))
    return results


def unexpected(message: Outgoing, exc: Exception) -> SendResult:
    """The result of an exception while sending one message: a ValueError (an encoding error,
    a line the protocol forbids) makes it unsendable, since sending it again cannot help;
    anything else (a full disk, ...) fails it for now, so it is retried."""
    log.exception("sending %s to %s failed", message.message_id, message.recipient)
    status = SendStatus.UNSENDABLE if isinstance(exc, ValueError) else SendStatus.TEMPORARY
    return SendResult(status, _failure(exc))


def transport_from_url(
    smtp_url: str | SMTPRelay | None, outbox_dir: Path, *, connections: int = 1
) -> Transport:
    """SMTP when a relay is configured (`connections` in parallel), else the outbox folder.
    Sending budgets are the dispatcher's (scheduler/gate.py), shared through the database."""
    if not smtp_url:
        return OutboxTransport(outbox_dir)
    relay = parse_smtp_url(smtp_url) if isinstance(smtp_url, str) else smtp_url
    if connections == 1:
        return SMTPTransport.for_relay(relay)
    return ParallelTransport(lambda: SMTPTransport.for_relay(relay), connections)
