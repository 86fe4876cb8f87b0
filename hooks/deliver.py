"""A webhook delivery pass at `now`: claim -> sign -> post -> record, a batch at a time.

1. Claim: in one write transaction, lease up to `batch_size` due messages (outbox.claim_due).
2. Post: each endpoint's messages in order, endpoints side by side in a few threads, every
   request within `timeout` seconds. The first failure of an endpoint holds its other messages
   back, untried, until that failure's retry: a dead receiver costs one attempt per pass.
3. Record: in one transaction, a 2xx marks a message delivered; anything else (no answer, a
   redirect, 4xx, 5xx) retries it after an exponential backoff, or gives it up once the backoff
   has used up its give-up time. The leases are given back.
Each pass first forgets messages delivered or given up on more than KEEP ago.
A killed worker's leases run out and the next pass takes its messages over; the only duplicate
possible is a message the receiver took in the instant before the kill, and it has the same
webhook-id, so the receiver drops it. This runs beside the dispatcher, never in its way.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..models import writer
from ..scheduler.schedule import RetryPolicy
from . import outbox
from .signature import headers

log = logging.getLogger("drip.webhooks")
KEEP = timedelta(days=14)  # how long delivered and given-up messages stay for operators to read
# url, body, headers, timeout -> (HTTP status or 0, what went wrong or "")
Post = Callable[[str, bytes, dict[str, str], float], tuple[int, str]]


@dataclass
class DeliveryResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0


@dataclass
class Deliverer:
    """Everything a delivery pass needs; `run_pass(now)` is the whole job."""

    engine: Engine
    post: Post
    retry: RetryPolicy
    lease: timedelta = timedelta(minutes=5)
    batch_size: int = 100
    timeout: float = 10.0
    threads: int = 4

    def run_pass(self, now: datetime) -> DeliveryResult:
        """Send every message due at `now`, batch after batch."""
        result = DeliveryResult()
        with Session(writer(self.engine)) as session, session.begin():
            outbox.prune(session, now - KEEP)
        while claims := self._claim(now):
            answers = self._post_all(claims, now)
            with Session(writer(self.engine)) as session, session.begin():
                outbox.record(session, answers, now)
            result.delivered += len(answers.delivered)
            result.retried += len(answers.retry)
            result.failed += len(answers.failed)
            result.held += len(answers.held)
            if len(claims) < self.batch_size:
                break
        if result.delivered or result.retried or result.failed:
            log.info("webhooks: %d delivered, %d to retry, %d given up", result.delivered,
                     result.retried + result.held, result.failed)  # fmt: skip
        return result

    def _claim(self, now: datetime) -> list[outbox.Claimed]:
        with Session(writer(self.engine)) as session, session.begin():
            return outbox.claim_due(session, now, self.batch_size, self.lease)

    def _post_all(self, claims: list[outbox.Claimed], now: datetime) -> outbox.Answers:
        by_endpoint: dict[int, list[outbox.Claimed]] = defaultdict(list)
        for claim in claims:
            by_endpoint[claim.endpoint_id].append(claim)
        answers = outbox.Answers()
        workers = max(1, min(self.threads, len(by_endpoint)))
        # messages not tried by the time the lease is nearly over are given back, not sent late
        deadline = time.monotonic() + self.lease.total_seconds() * 0.8
        with ThreadPoolExecutor(workers, thread_name_prefix="drip-webhook") as pool:
            for part in pool.map(lambda group: self._post_in_order(group, now, deadline),
                                 by_endpoint.values()):  # fmt: skip
                for name in ("delivered", "retry", "failed", "held", "attempts"):
                    getattr(answers, name).extend(getattr(part, name))
        return answers

    def _post_in_order(
        self, claims: list[outbox.Claimed], now: datetime, deadline: float
    ) -> outbox.Answers:
        """One endpoint's messages, oldest first, until one fails or the deadline passes."""
        answers = outbox.Answers()
        for index, claim in enumerate(claims):
            if index and time.monotonic() > deadline:
                answers.held.extend((later.id, now) for later in claims[index:])
                break
            status, error = self._post_one(claim, now)
            answers.attempts.append({"message_id": claim.id, "endpoint_id": claim.endpoint_id,
                                     "attempted_at": now, "status": status,
                                     "error": error[:500]})  # fmt: skip
            if 200 <= status < 300:
                answers.delivered.append(claim.id)
                continue
            retry_at = self._failed(claim, error, now, answers)
            answers.held.extend((later.id, retry_at) for later in claims[index + 1 :])
            break
        return answers

    def _failed(
        self, claim: outbox.Claimed, error: str, now: datetime, answers: outbox.Answers
    ) -> datetime:
        """Retry a message that failed after a backoff, or give it up; when it comes next."""
        attempt = claim.attempts + 1
        retry_at = now + self.retry.delay(attempt)
        if self.retry.exhausted(attempt):
            answers.failed.append((claim.id, attempt))
            log.error("webhook %s to %s given up after %d attempts: %s", claim.webhook_id,
                      claim.url, attempt, error)  # fmt: skip
        else:
            answers.retry.append((claim.id, attempt, retry_at))
            log.warning("webhook %s to %s failed (attempt %d): %s", claim.webhook_id, claim.url,
                        attempt, error)  # fmt: skip
        return retry_at

    def _post_one(self, claim: outbox.Claimed, now: datetime) -> tuple[int, str]:
        body = claim.payload.encode("utf-8")
        signed = headers(claim.secret, claim.webhook_id, int(now.timestamp()), body)
        try:
            status, error = self.post(claim.url, body, signed, self.timeout)
        except Exception as exc:  # whatever the receiver did, this message alone is retried
            status, error = 0, f"{type(exc).__name__}: {exc}"
        if not 200 <= status < 300 and not error:
            error = f"HTTP {status}"
        return status, " ".join(error.split())
