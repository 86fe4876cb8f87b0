"""One returned message in: read it, store what it reports, or keep it for a person."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

from .. import reports
from ..bounces import Feedback, parse_returned
from ..reports import Outcome
from ..runtime import Runtime

log = logging.getLogger("drip.receiver")


@dataclass
class Taken:
    """What one message came to: its reports by outcome, or the file it was kept in."""

    outcomes: list[Outcome] = field(default_factory=list)
    kept: Path | None = None

    @property
    def stored(self) -> int:
        return sum(outcome is not Outcome.DUPLICATE for outcome in self.outcomes)


class Intake:
    """Reads returned mail with the runtime's secret and stores its reports in its database."""

    def __init__(self, rt: Runtime, clock: Callable[[], datetime] | None = None) -> None:
        self.rt = rt
        self.clock = clock or rt.clock

    def take(self, data: bytes, recipients: Sequence[str]) -> Taken:
        """Store what `data` reports, or keep it in DRIP_BOUNCES_DIR when it reports nothing.
        Raises when it cannot do either (the sender is then told to try again)."""
        (taken,) = self.take_all([(data, recipients)])
        if isinstance(taken, Exception):
            raise taken
        return taken

    def take_all(self, messages: Sequence[tuple[bytes, Sequence[str]]]) -> list[Taken | Exception]:
        """`take` for several messages (data, envelope recipients), the reports of them all
        stored in one transaction; for each, what it came to or why it could not be taken. If
        that transaction fails, each message is stored alone, so one that cannot be does not
        hold up the others."""
        results: list[Taken | Exception] = []
        found: list[list[Feedback]] = []
        for data, recipients in messages:
            feedback: list[Feedback] = []
            try:
                feedback = self.read(data, recipients)
                results.append(Taken() if feedback else Taken(kept=self.keep(data, recipients)))
            except Exception as exc:
                feedback = []
                results.append(exc)
            found.append(feedback)
        reporting = [i for i, feedback in enumerate(found) if feedback]
        try:
            outcomes = iter(self.store([f for i in reporting for f in found[i]]))
            for i in reporting:
                results[i] = Taken(outcomes=[next(outcomes) for _ in found[i]])
        except Exception as exc:
            for i in reporting:
                results[i] = exc if len(reporting) == 1 else self._take_alone(found[i])
        return results

    def _take_alone(self, found: list[Feedback]) -> Taken | Exception:
        try:
            return Taken(outcomes=self.store(found))
        except Exception as exc:
            return exc

    def read(self, data: bytes, recipients: Sequence[str]) -> list[Feedback]:
        """The events `data` reports, read once per envelope recipient (the VERP address it
        came back to, each distinct one once), each event once."""
        secret = self.rt.settings.secret_key
        found: dict[str, Feedback] = {}
        envelopes: list[str | None] = [*dict.fromkeys(r.lower() for r in recipients)] or [None]
        for recipient in envelopes:
            for feedback in parse_returned(data, secret, envelope_to=recipient):
                found.setdefault(feedback.key, feedback)
        return list(found.values())

    def store(self, found: Sequence[Feedback]) -> list[Outcome]:
        """Record every event in one transaction (SQLite: waiting for the write lock)."""
        now = self.clock()
        batch = [reports.report_of_returned(feedback) for feedback in found]
        with self.rt.write_sessions() as session, session.begin():
            return reports.record_all(session, batch, now, self.rt.courses)

    def keep(self, data: bytes, recipients: Sequence[str]) -> Path:
        """Write a message that reports nothing to DRIP_BOUNCES_DIR for a person to read, the
        envelope recipients added on top as X-Original-To (as Postfix does), and log it."""
        folder = self.rt.settings.bounces_dir
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self.clock().strftime("%Y%m%dT%H%M%SZ")
        path = folder / f"{stamp}-{hashlib.sha256(data).hexdigest()[:16]}.eml"
        head = b"".join(f"X-Original-To: {r}\r\n".encode("utf-8", "replace") for r in recipients)
        partial = path.with_suffix(".part")
        with partial.open("wb") as out:
            out.write(head + data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)
        log.warning(
            "returned mail that reports no bounce or complaint kept in %s (to %s, from %s, "
            "subject %r)", path, ", ".join(recipients) or "?", *_from_and_subject(data),
            extra={"event": "returned_unread"},
        )  # fmt: skip
        return path


def _from_and_subject(data: bytes) -> tuple[str, str]:
    try:
        message = message_from_bytes(data[:65536], policy=policy.compat32)
        return str(message.get("From", "?"))[:200], str(message.get("Subject", ""))[:200]
    except Exception:  # only for the log line: the message is kept whatever it holds
        return "?", ""
