"""The listener the MX or relay forwards returned mail to (aiosmtpd, in a thread of its own),
over SMTP or LMTP. Any RCPT is accepted, since relays forward bounces to various addresses; the
VERP tag, not the address, decides what a message may change. A message is answered 250 only
once what it reports is committed (or it is kept in the folder); a database that cannot be
written answers 451, so the sender keeps the message and tries again: nothing is lost.

Messages are written by one thread, several to a transaction: whatever came in on any
connection while the previous transaction was being committed goes into the next one, so the
statements and the commit's wait for the disk are shared by all of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from .intake import Intake, Taken

log = logging.getLogger("drip.receiver")
STORED = "250 2.0.0 Ok: {} report(s) stored"
KEPT = "250 2.0.0 Ok: kept for a person to read"
TRY_AGAIN = "451 4.3.0 Cannot store this now; try again later"
BATCH = 100  # messages written in one transaction, at most
Pending = tuple[bytes, list[str], "Future[Taken | Exception]"]


class ReturnedMailHandler:
    """aiosmtpd's handler: each message is handed to the writer thread and answered when its
    transaction is over, so a database write never holds up the event loop (and the other
    connections). With `lmtp`, one reply per recipient (RFC 2033), each the message's own."""

    def __init__(self, intake: Intake, lmtp: bool = False) -> None:
        self.intake = intake
        self.lmtp = lmtp
        self.waiting: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self.writer = threading.Thread(target=self._write, name="drip-returned", daemon=True)
        self.writer.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content or envelope.content or b"")
        recipients = [str(address) for address in envelope.rcpt_tos]
        done: Future[Taken | Exception] = Future()
        self.waiting.put((data, recipients, done))
        reply = _reply(await asyncio.wrap_future(done), recipients)
        return "\r\n".join([reply] * len(recipients)) if self.lmtp else reply

    def _write(self) -> None:
        """Take whatever is waiting (up to BATCH messages), store it in one go, answer each."""
        while (first := self.waiting.get()) is not None:
            batch = [first]
            while len(batch) < BATCH and (more := _next_waiting(self.waiting)) is not None:
                batch.append(more)
            try:
                results: Sequence[Taken | Exception] = self.intake.take_all(
                    [(data, recipients) for data, recipients, _ in batch]
                )
            except Exception as exc:  # the intake answers per message; this is a last resort
                results = [exc] * len(batch)
            for (_, _, done), result in zip(batch, results, strict=True):
                with contextlib.suppress(InvalidStateError):  # its sender hung up meanwhile
                    done.set_result(result)

    def close(self) -> None:
        """Let the writer finish what is waiting, then stop it."""
        self.waiting.put(None)
        self.writer.join()


def _next_waiting(waiting: queue.SimpleQueue[Pending | None]) -> Pending | None:
    try:
        item = waiting.get_nowait()
    except queue.Empty:
        return None
    if item is None:
        waiting.put(None)  # the stop comes after this batch
    return item


def _reply(result: Taken | Exception, recipients: list[str]) -> str:
    if isinstance(result, Exception):
        log.error("returned mail to %s not stored (451: the sender will retry): %s",
                  ", ".join(recipients), result, exc_info=result)  # fmt: skip
        return TRY_AGAIN
    return KEPT if result.kept is not None else STORED.format(len(result.outcomes))


class _Listener(Controller):
    """aiosmtpd's controller, speaking LMTP instead of SMTP when told to."""

    def __init__(self, handler: ReturnedMailHandler, **kwargs: Any) -> None:
        self.lmtp = handler.lmtp
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        return (LMTP if self.lmtp else SMTP)(self.handler, **self.SMTP_kwargs)


class ReturnedMailServer:
    """The listener on `host:port`, refusing messages over `max_bytes` with 552 (aiosmtpd
    announces the limit as SIZE in its EHLO reply and answers 552 past it)."""

    def __init__(
        self, intake: Intake, host: str, port: int, max_bytes: int, lmtp: bool = False
    ) -> None:
        self.handler = ReturnedMailHandler(intake, lmtp)
        self.host, self.port = host, port
        self.controller = _Listener(
            self.handler, hostname=host, port=port, data_size_limit=max_bytes,
            enable_SMTPUTF8=True, ident="drip returned-mail receiver",
        )  # fmt: skip

    def start(self) -> None:
        self.controller.start()
        protocol = "LMTP" if self.handler.lmtp else "SMTP"
        log.info("taking returned mail on %s:%d (%s)", self.host, self.port, protocol)

    def stop(self) -> None:
        """Stop listening. A message cut off here got no 250, so its sender sends it again
        (and a report stored twice changes nothing)."""
        self.controller.stop()
        self.handler.close()
