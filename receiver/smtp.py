"""The SMTP listener the MX or relay forwards returned mail to (aiosmtpd, in a thread of its
own). Any RCPT is accepted, since relays forward bounces to various addresses; the VERP tag, not
the address, decides what a message may change. A message is answered 250 only once what it
reports is committed (or it is kept in the folder); a database that cannot be written answers
451, so the sender keeps the message and tries again: nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller

from .intake import Intake

log = logging.getLogger("drip.receiver")
STORED = "250 2.0.0 Ok: {} report(s) stored"
KEPT = "250 2.0.0 Ok: kept for a person to read"
TRY_AGAIN = "451 4.3.0 Cannot store this now; try again later"


class ReturnedMailHandler:
    """aiosmtpd's handler: each message goes to the intake in a worker thread, so a database
    write never holds up the event loop (and the other connections)."""

    def __init__(self, intake: Intake, threads: int = 2) -> None:
        self.intake = intake
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="drip-returned")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content or envelope.content or b"")
        recipients = [str(address) for address in envelope.rcpt_tos]
        loop = asyncio.get_running_loop()
        try:
            taken = await loop.run_in_executor(self.executor, self.intake.take, data, recipients)
        except Exception:
            log.exception("returned mail to %s not stored (451: the sender will retry)",
                          ", ".join(recipients))  # fmt: skip
            return TRY_AGAIN
        return KEPT if taken.kept is not None else STORED.format(len(taken.outcomes))

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class ReturnedMailServer:
    """The listener on `host:port`, refusing messages over `max_bytes` with 552 (aiosmtpd
    announces the limit as SIZE in its EHLO reply and answers 552 past it)."""

    def __init__(self, intake: Intake, host: str, port: int, max_bytes: int) -> None:
        self.handler = ReturnedMailHandler(intake)
        self.host, self.port = host, port
        self.controller = Controller(
            self.handler, hostname=host, port=port, data_size_limit=max_bytes,
            enable_SMTPUTF8=True, ident="drip returned-mail receiver",
        )  # fmt: skip

    def start(self) -> None:
        self.controller.start()
        log.info("taking returned mail on %s:%d (SMTP)", self.host, self.port)

    def stop(self) -> None:
        """Stop listening. A message cut off here got no 250, so its sender sends it again
        (and a report stored twice changes nothing)."""
        self.controller.stop()
        self.handler.close()
