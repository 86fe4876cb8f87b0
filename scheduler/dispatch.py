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
Passes repeat until nothing is due, so memory follows the batch size, not the subscriber count.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, insert, or_, select, tuple_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from course.model import Course
from emails import LessonRenderer, Outgoing, Recipient
from models import Delivery, DeliveryState, Subscriber, Subscription, SubscriptionState, writer
from scheduler.schedule import next_lesson_due, retry_delay, retry_waited
from send import SendResult, SendStatus, Transport

log = logging.getLogger("drip.dispatch")
T = TypeVar("T")


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
    message: Outgoing | None = field(default=None, repr=False)


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

    def run_pass(self, now: datetime) -> PassResult:
        """Send every lesson due at `now`, batch after batch, until none is left."""
        result = PassResult()
        try:
            while claims := self.claim(now):
                result.add(self.deliver(claims, now))
        finally:
            self.transport.close()  # an idle SMTP connection would time out before the next pass
        return result

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

    def deliver(self, claims: list[Claim], now: datetime) -> PassResult:
        for claim in claims:
            claim.message = self.renderer.render(
                claim.course, claim.day, claim.recipient, message_id=claim.message_id, now=now
            )
        active = _reconnecting(lambda: self._still_active([c.subscription_id for c in claims]))
        to_send = [c for c in claims if c.subscription_id in active]
        dropped = [c for c in claims if c.subscription_id not in active]
        results = self.transport.send_messages([c.message for c in to_send if c.message])
        outcomes = list(zip(to_send, results, strict=True))
        outcome = _reconnecting(lambda: self._record(outcomes, dropped, now))
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
                insert(Delivery).returning(
                    Delivery.id, Delivery.subscription_id, Delivery.day, Delivery.message_id
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
        subscriptions: list[dict[str, Any]] = []
        finished: dict[SubscriptionState, list[int]] = {
            SubscriptionState.COMPLETED: [],
            SubscriptionState.BOUNCED: [],
        }
        for claim, sent in outcomes:
            base = {"id": claim.delivery_id, "smtp_reply": sent.reply[:500], "updated_at": now}
            if sent.status is SendStatus.SENT:
                result.sent += 1
                deliveries.append({**base, "state": DeliveryState.SENT, "sent_at": now})
                subscriptions.append(self._advanced(claim, now))
                if claim.day >= claim.course.total_days:
                    finished[SubscriptionState.COMPLETED].append(claim.subscription_id)
                log.info("sent day %d to subscription %d (%s): %s", claim.day,
                         claim.subscription_id, claim.message_id, sent.reply)  # fmt: skip
            elif sent.status is SendStatus.TEMPORARY and self.retry.exhausted(
                claim.retry_attempts + 1
            ):
                result.failed += 1
                deliveries.append({**base, "state": DeliveryState.FAILED, "sent_at": None})
                subscriptions.append(
                    {"id": claim.subscription_id, "retry_attempts": claim.retry_attempts + 1,
                     "next_due_at": None, "leased_until": None}
                )  # fmt: skip
                log.error("gave up on day %d of subscription %d after %d attempts: %s "
                          "(`drip retry` makes it due again)", claim.day, claim.subscription_id,
                          claim.retry_attempts + 1, sent.reply)  # fmt: skip
            elif sent.status is SendStatus.TEMPORARY:
                result.deferred += 1
                deliveries.append({**base, "state": DeliveryState.DEFERRED, "sent_at": None})
                attempt = claim.retry_attempts + 1
                subscriptions.append(
                    {"id": claim.subscription_id, "retry_attempts": attempt,
                     "next_due_at": now + self.retry.delay(attempt), "leased_until": None}
                )  # fmt: skip
                log.warning("deferred day %d of subscription %d (attempt %d): %s",
                            claim.day, claim.subscription_id, attempt, sent.reply)  # fmt: skip
            else:
                result.bounced += 1
                deliveries.append({**base, "state": DeliveryState.BOUNCED, "sent_at": None})
                finished[SubscriptionState.BOUNCED].append(claim.subscription_id)
                log.warning("bounced day %d of subscription %d: %s",
                            claim.day, claim.subscription_id, sent.reply)  # fmt: skip
        with Session(writer(self.engine)) as session, session.begin():
            if deliveries:
                session.execute(update(Delivery), deliveries)
            if subscriptions:
                session.execute(update(Subscription), subscriptions)
            for state, ids in finished.items():
                _finish(session, ids, state, now)
            _release(session, dropped)
        return result

    def _advanced(self, claim: Claim, now: datetime) -> dict[str, Any]:
        """The subscription after lesson `claim.day` went out at `now`."""
        last = claim.day >= claim.course.total_days
        send_time = claim.send_time or claim.course.send_time
        next_due = None if last else next_lesson_due(
            now, ZoneInfo(claim.timezone), send_time, claim.course.interval_days
        )  # fmt: skip
        return {
            "id": claim.subscription_id,
            "current_day": claim.day,
            "last_sent_at": now,
            "next_due_at": next_due,
            "retry_attempts": 0,
            "leased_until": None,
        }


def due(now: datetime, limit: int, course_slugs: list[str]) -> Any:
    """The claim query: subscriptions that are
    - active, of a course this process has loaded,
    - due at `now` (next_due_at <= now),
    - not leased by a live worker (no lease, or its deadline has passed);
    oldest due first, at most `limit`, locked for this transaction and skipped by the others."""
    return (
        select(
            Subscription.id,
            Subscription.course_slug,
            Subscription.current_day,
            Subscription.timezone,
            Subscription.send_time,
            Subscription.retry_attempts,
            Subscription.unsubscribe_token,
            Subscription.manage_token,
            Subscriber.email,
            Subscriber.name,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(
            Subscription.state == SubscriptionState.ACTIVE,
            Subscription.next_due_at <= now,
            Subscription.course_slug.in_(course_slugs),
            or_(Subscription.leased_until.is_(None), Subscription.leased_until <= now),
        )
        .order_by(Subscription.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Subscription)
    )


def _reconnecting(step: Callable[[], T]) -> T:
    """Run `step` again once if the database connection was lost under it (a restart, a killed
    backend): the pool has discarded the dead connection and the retry gets a fresh one."""
    try:
        return step()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("lost the database connection (%s); reconnecting", exc.orig)
        return step()


def _finish(session: Session, ids: list[int], state: SubscriptionState, now: datetime) -> None:
    """Move still-active subscriptions to a final state (an unsubscribe meanwhile stands)."""
    if ids:
        session.execute(
            update(Subscription)
            .where(Subscription.id.in_(ids), Subscription.state == SubscriptionState.ACTIVE)
            .values(state=state, next_due_at=None, ended_at=now, leased_until=None)
        )


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


def _message_id(course: Course, subscription_id: int, day: int) -> str:
    """Unique, and it tells an operator reading a mail log whose lesson this was."""
    domain = course.sender_email.rpartition("@")[2]
    return f"<drip.{course.slug}.{subscription_id}.{day}.{secrets.token_hex(6)}@{domain}>"
