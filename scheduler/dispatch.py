"""One dispatch pass at `now`: claim -> render -> send -> record, a batch at a time.

1. Claim: in one write transaction, take up to `batch_size` active subscriptions due at `now`
   whose lease is free (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: BEGIN IMMEDIATE), lease them
   until now + lease, and record a 'sending' delivery for each one's next lesson.
2. Render each lesson email (the renderer does the per-lesson work once).
3. Re-read which claimed subscriptions are still active (an unsubscribe takes effect at once) and
   send only those, as one batch through the transport.
4. Record every result in one transaction and release the leases: sent -> advance, or complete
   after the last lesson; temporary failure -> deferred, retried after a backoff (failed, and no
   longer due, once the backoff has added up to the give-up time); permanent failure -> bounced.
Steps 3 and 4 retry once on a lost database connection: what the relay accepted must be
recorded, or the lease would expire and the lesson go out twice.
Batches repeat until nothing is due, so memory follows the batch size, not the subscriber count;
while one batch is being sent, the next is claimed and rendered.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from ..course.model import Course
from ..emails import LessonRenderer, Outgoing, Recipient
from ..models import Delivery, DeliveryState, Subscription, SubscriptionState, writer
from ..send import SendResult, SendStatus, Transport
from .queries import DELIVERIES, SUBSCRIPTIONS, due, finish, reconnecting, update_rows
from .schedule import next_lesson_due, retry_delay, retry_waited, zone

log = logging.getLogger("drip.dispatch")


@dataclass
class PassResult:
    """What one pass did, for `drip tick` to print and the runner to log."""

    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    skipped: int = 0  # claimed, then found unsubscribed or paused before the send
    failed: int = 0  # temporary failures retried for too long: given up

    def add(self, other: PassResult) -> None:
        self.sent += other.sent
        self.deferred += other.deferred
        self.bounced += other.bounced
        self.skipped += other.skipped
        self.failed += other.failed

    @property
    def total(self) -> int:
        return self.sent + self.deferred + self.bounced + self.skipped + self.failed


@dataclass
class Claim:
    """A leased subscription and the delivery recorded for its next lesson."""

    subscription_id: int
    course: Course
    day: int
    recipient: Recipient
    timezone: str
    send_time: time | None
    retry_attempts: int
    delivery_id: int
    message_id: str
    delivery_was_new: bool
    previous_delivery_state: DeliveryState | None = None


@dataclass
class Batch:
    """Claims on their way: rendered, being sent, then recorded."""

    to_send: list[Claim]
    dropped: list[Claim]  # unsubscribed or paused between the claim and the send
    messages: list[Outgoing] = field(default_factory=list)
    sending: Future[list[SendResult]] | None = None
    results: list[SendResult] = field(default_factory=list)


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(minutes=1)
    ceiling: timedelta = timedelta(hours=6)
    give_up: timedelta = timedelta(days=3)

    def delay(self, attempt: int) -> timedelta:
        return retry_delay(attempt, base=self.base, ceiling=self.ceiling)

    def exhausted(self, attempt: int) -> bool:
        """True when failure number `attempt` comes after backing off for `give_up` in all.
        Counted in backoff, not wall-clock time, so days with no worker running use none of it."""
        return retry_waited(attempt, base=self.base, ceiling=self.ceiling) >= self.give_up


@dataclass
class Dispatcher:
    """Everything a pass needs, built once per process; `run_pass(now)` is the whole job."""

    engine: Engine
    courses: Mapping[str, Course]
    transport: Transport
    renderer: LessonRenderer
    batch_size: int = 200
    lease: timedelta = timedelta(minutes=5)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: Callable[[PassResult], None] | None = None  # told of each recorded batch

    def run_pass(self, now: datetime) -> PassResult:
        """Send every lesson due at `now`, batch after batch, until none is left.

        While one batch is on the wire (a thread that mostly waits on the socket), the next is
        claimed and rendered, so the SMTP server is never idle waiting for the database."""
        result = PassResult()
        in_flight: Batch | None = None
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drip-send") as wire:
                while claims := self.claim(now):
                    batch = self.prepare(claims, now)
                    if in_flight is not None:
                        result.add(self.record(in_flight, now))
                        in_flight = None
                    batch.sending = wire.submit(self.transport.send_messages, batch.messages)
                    in_flight = batch
        finally:
            if in_flight is not None:  # a claim failed meanwhile: what went out is still recorded
                result.add(self.record(in_flight, now))
            self.transport.close()  # an idle SMTP connection would time out before the next pass
        return result

    def deliver(self, claims: list[Claim], now: datetime) -> PassResult:
        """Render, send and record one claimed batch, in this thread."""
        batch = self.prepare(claims, now)
        batch.results = self.transport.send_messages(batch.messages)
        return self.record(batch, now)

    def claim(self, now: datetime) -> list[Claim]:
        with Session(writer(self.engine)) as session, session.begin():
            rows = session.execute(due(now, self.batch_size, list(self.courses))).all()
            if not rows:
                return []
            claims = self._deliveries_for(session, rows, now)
            session.execute(
                update(Subscription)
                .where(Subscription.id.in_([row.id for row in rows]))
                .values(leased_until=now + self.lease)
            )
            return claims

    def prepare(self, claims: list[Claim], now: datetime) -> Batch:
        """Render each claimed lesson; set aside the subscriptions no longer active."""
        active = reconnecting(lambda: self._still_active([c.subscription_id for c in claims]))
        batch = Batch(
            to_send=[c for c in claims if c.subscription_id in active],
            dropped=[c for c in claims if c.subscription_id not in active],
        )
        batch.messages = [
            self.renderer.render(
                claim.course, claim.day, claim.recipient, message_id=claim.message_id, now=now
            )
            for claim in batch.to_send
        ]
        return batch

    def record(self, batch: Batch, now: datetime) -> PassResult:
        if batch.sending is not None:
            batch.results = batch.sending.result()
        outcomes = list(zip(batch.to_send, batch.results, strict=True))
        outcome = reconnecting(lambda: self._record(outcomes, batch.dropped, now))
        if self.progress is not None:
            self.progress(outcome)
        log.info(
            "batch: %d sent, %d deferred, %d bounced, %d skipped, %d failed",
            outcome.sent, outcome.deferred, outcome.bounced, outcome.skipped, outcome.failed,
        )  # fmt: skip
        return outcome

    def _deliveries_for(self, session: Session, rows: Sequence[Any], now: datetime) -> list[Claim]:
        """Insert (or take over, after a crash or deferral) the delivery of each row's next day."""
        pairs = [(row.id, row.current_day + 1) for row in rows]
        existing = {
            (d.subscription_id, d.day): d
            for d in session.execute(
                select(Delivery.id, Delivery.subscription_id, Delivery.day, Delivery.message_id,
                       Delivery.state)
                .where(tuple_(Delivery.subscription_id, Delivery.day).in_(pairs))
            )
        }  # fmt: skip
        new_rows = [
            {
                "subscription_id": sub_id,
                "day": day,
                "state": DeliveryState.SENDING,
                "message_id": _message_id(self.courses[row.course_slug], sub_id, day),
                "smtp_reply": "",
                "attempts": 1,
                "created_at": now,
                "updated_at": now,
            }
            for row, (sub_id, day) in zip(rows, pairs, strict=True)
            if (sub_id, day) not in existing
        ]
        inserted = {}
        if new_rows:
            for d in session.execute(
                insert(DELIVERIES).returning(
                    DELIVERIES.c.id,
                    DELIVERIES.c.subscription_id,
                    DELIVERIES.c.day,
                    DELIVERIES.c.message_id,
                ),
                new_rows,
            ):
                inserted[(d.subscription_id, d.day)] = d
        if existing:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in existing.values()]))
                .values(state=DeliveryState.SENDING, attempts=Delivery.attempts + 1, updated_at=now)
            )
        claims = []
        for row, pair in zip(rows, pairs, strict=True):
            delivery = existing.get(pair) or inserted[pair]
            claims.append(
                Claim(
                    subscription_id=row.id,
                    course=self.courses[row.course_slug],
                    day=pair[1],
                    recipient=Recipient(
                        email=row.email,
                        name=row.name,
                        unsubscribe_token=row.unsubscribe_token,
                        manage_token=row.manage_token,
                    ),
                    timezone=row.timezone,
                    send_time=row.send_time,
                    retry_attempts=row.retry_attempts,
                    delivery_id=delivery.id,
                    message_id=delivery.message_id,
                    delivery_was_new=pair not in existing,
                    previous_delivery_state=existing[pair].state if pair in existing else None,
                )
            )
        return claims

    def _still_active(self, subscription_ids: list[int]) -> set[int]:
        with Session(self.engine) as session:
            return set(
                session.scalars(
                    select(Subscription.id).where(
                        Subscription.id.in_(subscription_ids),
                        Subscription.state == SubscriptionState.ACTIVE,
                    )
                )
            )

    def _record(
        self, outcomes: list[tuple[Claim, SendResult]], dropped: list[Claim], now: datetime
    ) -> PassResult:
        result = PassResult(skipped=len(dropped))
        deliveries: list[dict[str, Any]] = []
        advanced: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        finished: dict[SubscriptionState, list[int]] = {
            SubscriptionState.COMPLETED: [],
            SubscriptionState.BOUNCED: [],
        }
        for claim, sent in outcomes:
            base = {"row_id": claim.delivery_id, "smtp_reply": sent.reply[:500], "updated_at": now}
            if sent.status is SendStatus.SENT:
                result.sent += 1
                deliveries.append({**base, "state": DeliveryState.SENT, "sent_at": now})
                advanced.append(self._advanced(claim, now))
                if claim.day >= claim.course.total_days:
                    finished[SubscriptionState.COMPLETED].append(claim.subscription_id)
                log.info("sent day %d to subscription %d (%s): %s", claim.day,
                         claim.subscription_id, claim.message_id, sent.reply,
                         extra=_fields("sent", claim, sent))  # fmt: skip
            elif sent.status is SendStatus.TEMPORARY and self.retry.exhausted(
                claim.retry_attempts + 1
            ):
                result.failed += 1
                deliveries.append({**base, "state": DeliveryState.FAILED, "sent_at": None})
                deferred.append(
                    {"row_id": claim.subscription_id, "retry_attempts": claim.retry_attempts + 1,
                     "next_due_at": None, "leased_until": None}
                )  # fmt: skip
                log.error("gave up on day %d of subscription %d after %d attempts: %s "
                          "(`drip retry` makes it due again)", claim.day, claim.subscription_id,
                          claim.retry_attempts + 1, sent.reply,
                          extra=_fields("failed", claim, sent))  # fmt: skip
            elif sent.status is SendStatus.TEMPORARY:
                result.deferred += 1
                deliveries.append({**base, "state": DeliveryState.DEFERRED, "sent_at": None})
                attempt = claim.retry_attempts + 1
                deferred.append(
                    {"row_id": claim.subscription_id, "retry_attempts": attempt,
                     "next_due_at": now + self.retry.delay(attempt), "leased_until": None}
                )  # fmt: skip
                log.warning("deferred day %d of subscription %d (attempt %d): %s",
                            claim.day, claim.subscription_id, attempt, sent.reply,
                            extra=_fields("deferred", claim, sent))  # fmt: skip
            else:
                result.bounced += 1
                deliveries.append({**base, "state": DeliveryState.BOUNCED, "sent_at": None})
                finished[SubscriptionState.BOUNCED].append(claim.subscription_id)
                log.warning("bounced day %d of subscription %d: %s",
                            claim.day, claim.subscription_id, sent.reply,
                            extra=_fields("bounced", claim, sent))  # fmt: skip
        with Session(writer(self.engine)) as session, session.begin():
            for table, rows in ((DELIVERIES, deliveries), (SUBSCRIPTIONS, advanced + deferred)):
                update_rows(session, table, rows)
            for state, ids in finished.items():
                finish(session, ids, state, now)
            _release(session, dropped)
        return result

    def _advanced(self, claim: Claim, now: datetime) -> dict[str, Any]:
        """The subscription after lesson `claim.day` went out at `now`."""
        last = claim.day >= claim.course.total_days
        send_time = claim.send_time or claim.course.send_time
        next_due = None if last else _next_due(
            now, claim.timezone, send_time, claim.course.interval_days
        )  # fmt: skip
        return {
            "row_id": claim.subscription_id,
            "current_day": claim.day,
            "last_sent_at": now,
            "next_due_at": next_due,
            "retry_attempts": 0,
            "leased_until": None,
        }


@lru_cache(maxsize=4096)
def _next_due(sent_at: datetime, timezone: str, send_time: time, interval_days: int) -> datetime:
    """Everyone in one zone sent a lesson at the same `now` is next due at the same instant."""
    return next_lesson_due(sent_at, zone(timezone), send_time, interval_days)


def _release(session: Session, dropped: list[Claim]) -> None:
    """Undo the claim of subscriptions that stopped being active before their send."""
    if not dropped:
        return
    session.execute(
        update(Subscription)
        .where(Subscription.id.in_([c.subscription_id for c in dropped]))
        .values(leased_until=None)
    )
    new = [c.delivery_id for c in dropped if c.delivery_was_new]
    if new:
        session.execute(delete(Delivery).where(Delivery.id.in_(new)))
    for claim in dropped:
        if not claim.delivery_was_new:
            session.execute(
                update(Delivery)
                .where(Delivery.id == claim.delivery_id)
                .values(state=claim.previous_delivery_state, attempts=Delivery.attempts - 1)
            )


def _fields(event: str, claim: Claim, sent: SendResult) -> dict[str, object]:
    """The structured fields of a per-message log line (see logs.py)."""
    return {
        "event": event,
        "subscription_id": claim.subscription_id,
        "message_id": claim.message_id,
        "day": claim.day,
        "course": claim.course.slug,
        "smtp_reply": sent.reply,
    }


def _message_id(course: Course, subscription_id: int, day: int) -> str:
    """Unique, and it tells an operator reading a mail log whose lesson this was."""
    domain = course.sender_email.rpartition("@")[2]
    return f"<drip.{course.slug}.{subscription_id}.{day}.{secrets.token_hex(6)}@{domain}>"
