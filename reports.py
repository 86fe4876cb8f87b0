"""What the outside world reports about messages drip sent, after the relay accepted them:
bounces, complaints and deliveries, from returned mail (DSN, ARF) or a provider's webhook.

Every source turns what it received into `Report`s; `record` stores each one once (its key) and
acts on it:
1. a hard bounce ends that subscription (bounced) and suppresses the address;
2. a soft bounce is counted; the third in a row, or one of a delivery that has soft-bounced
   for longer than the retries would have tried (3 days), counts as hard;
3. a complaint unsubscribes the address from every course and suppresses it;
4. a delivery report clears the count of soft bounces.
The same report delivered twice changes nothing the second time.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session, joinedload

from . import suppressions
from .bounces import Feedback
from .course.model import Course
from .models import (
    Delivery,
    FeedbackEvent,
    FeedbackKind,
    SeenToken,
    Subscription,
    SuppressionReason,
    insert_new,
)
from .subscriptions import Event, apply
from .webhooks import ProviderEvent

log = logging.getLogger("drip.reports")
SOFT_BOUNCES_ARE_HARD = 3
SOFT_BOUNCE_GIVE_UP = timedelta(days=3)  # as DRIP_RETRY_GIVE_UP_SECONDS' default


@dataclass(frozen=True)
class Report:
    kind: FeedbackKind
    recipient: str
    source: str  # dsn, arf, smtp, ses, postmark, mailgun, sendgrid
    key: str  # the event's identity: a provider's event id, or a digest of its contents
    status: str = ""  # e.g. 5.1.1
    diagnostic: str = ""  # the remote server's words
    message_id: str | None = None  # our Message-ID, when the report quotes it
    delivery: tuple[int, int] | None = None  # (subscription id, day), from the VERP address


class Outcome(enum.StrEnum):
    DUPLICATE = "duplicate"  # seen before: nothing done
    RECORDED = "recorded"  # stored; nothing more to do (a delivery, a soft bounce counted)
    ENDED = "ended"  # a subscription ended or an address was suppressed


def record(session: Session, report: Report, now: datetime, courses: dict[str, Course]) -> Outcome:
    """Store `report` once and act on it (see the module's rules); the caller commits."""
    return record_all(session, [report], now, courses)[0]


def record_all(
    session: Session, batch: Sequence[Report], now: datetime, courses: dict[str, Course]
) -> list[Outcome]:
    """Store each report once and act on it, in order; the caller commits. The statements are
    per batch, not per report: the deliveries with their subscriptions in one query, the new
    events in one INSERT (a key stored before, or meanwhile by another process, is a
    duplicate), the suppressions in one more."""
    found = find_deliveries(session, batch)
    rows: dict[str, dict[str, object]] = {}
    for report, delivery in zip(batch, found, strict=True):
        rows.setdefault(report.key[:128], _event(report, delivery, now))
    table = FeedbackEvent.__table__
    fresh = insert_new(session, table, list(rows.values()), table.c.key)  # type: ignore[arg-type]
    outcomes, suppress = [], []
    for report, delivery in zip(batch, found, strict=True):
        if report.key[:128] not in fresh:
            outcomes.append(Outcome.DUPLICATE)
            continue
        fresh.discard(report.key[:128])  # a second copy in the batch is a duplicate
        sub = delivery.subscription if delivery is not None else None
        log.info("%s for %s (%s %s): %s", report.kind, report.recipient, report.source,
                 report.status, report.diagnostic[:200],
                 extra={"event": str(report.kind), "recipient": report.recipient,
                        "source": report.source, "status": report.status,
                        "subscription_id": sub.id if sub else None})  # fmt: skip
        entry = _act(session, report, sub, now, courses, delivery)
        outcomes.append(Outcome.RECORDED if entry is None else Outcome.ENDED)
        if entry is not None:
            suppress.append(entry)
    suppressions.suppress_all(session, suppress, now, courses)
    return outcomes


def _act(
    session: Session, report: Report, sub: Subscription | None, now: datetime,
    courses: dict[str, Course], delivery: Delivery | None = None,
) -> tuple[str, SuppressionReason, str] | None:  # fmt: skip
    """Count or end: the suppression `report` calls for, or None when it only counts."""
    if report.kind is FeedbackKind.DELIVERED:
        if sub is not None:
            sub.soft_bounces = 0
        return None
    if report.kind is FeedbackKind.SOFT_BOUNCE:
        if sub is None:
            return None
        sub.soft_bounces += 1
        if sub.soft_bounces < SOFT_BOUNCES_ARE_HARD and not _bouncing_too_long(
            session, delivery, now
        ):
            return None
    reason = (SuppressionReason.COMPLAINT if report.kind is FeedbackKind.COMPLAINT
              else SuppressionReason.HARD_BOUNCE)  # fmt: skip
    address = sub.subscriber.email if sub is not None else report.recipient
    if sub is not None and reason is SuppressionReason.HARD_BOUNCE:
        apply(sub, Event.REPORTED_BOUNCE, courses.get(sub.course_slug), now)
    return address, reason, f"{report.source} {report.status} {report.diagnostic}".strip()


def _bouncing_too_long(session: Session, delivery: Delivery | None, now: datetime) -> bool:
    """Soft bounces of one delivery for longer than the give-up time of retries count as hard:
    the mailbox has been full for as long as drip would have tried itself."""
    if delivery is None:
        return False
    first = session.scalar(
        select(func.min(FeedbackEvent.received_at)).where(
            FeedbackEvent.delivery_id == delivery.id,
            FeedbackEvent.kind == FeedbackKind.SOFT_BOUNCE,
        )
    )
    return first is not None and now - first >= SOFT_BOUNCE_GIVE_UP


def report_of(event: ProviderEvent) -> Report:
    """A provider's event as a report; its key is the provider's event id, per provider."""
    return Report(
        kind=FeedbackKind(event.kind.value), recipient=event.recipient, source=event.source,
        key=f"{event.source}:{event.key}", status=event.status or "",
        diagnostic=event.diagnostic, message_id=event.message_id,
    )  # fmt: skip


def report_of_returned(feedback: Feedback) -> Report:
    """An event read from returned mail as a report. Its key digests what it says about which
    delivery, so the same bounce received twice (or by two routes) is stored once; its delivery
    is the VERP address's, set only when that address's tag checked out."""
    delivery = None
    if feedback.subscription_id is not None and feedback.day is not None:
        delivery = (feedback.subscription_id, feedback.day)
    return Report(
        kind=FeedbackKind(feedback.kind.value), recipient=feedback.recipient,
        source=feedback.source, key=f"returned:{feedback.key}", status=feedback.status,
        diagnostic=feedback.diagnostic, message_id=feedback.message_id, delivery=delivery,
    )  # fmt: skip


class DatabaseSeenTokens:
    """Webhook tokens seen, in the database, written in the transaction of the events they
    came with (so a request whose events failed to store may be sent again)."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now

    def seen(self, token: str) -> bool:
        found = self.session.get(SeenToken, token[:128])
        return found is not None and found.expires_at > self.now

    def remember(self, token: str, until: datetime) -> None:
        self.session.execute(delete(SeenToken).where(SeenToken.expires_at <= self.now))
        self.session.merge(SeenToken(token=token[:128], expires_at=until))


def find_deliveries(session: Session, batch: Sequence[Report]) -> list[Delivery | None]:
    """The delivery each report is about, with its subscription and subscriber: by the VERP
    address first (it survives mangled reports), then by our Message-ID. None when neither
    matches: nothing is guessed. One query for each way, for the whole batch."""
    loading = (joinedload(Delivery.subscription).joinedload(Subscription.subscriber),)
    pairs = {report.delivery for report in batch if report.delivery is not None}
    by_pair = {}
    if pairs:
        query = select(Delivery).options(*loading).where(
            tuple_(Delivery.subscription_id, Delivery.day).in_(pairs))  # fmt: skip
        by_pair = {(d.subscription_id, d.day): d for d in session.scalars(query).unique()}
    found: list[Delivery | None] = [by_pair.get(r.delivery) if r.delivery else None for r in batch]
    wanted = {
        i: _angled(r.message_id) for i, r in enumerate(batch) if not found[i] and r.message_id
    }
    if wanted:
        query = select(Delivery).options(*loading).where(
            Delivery.message_id.in_(set(wanted.values())))  # fmt: skip
        by_id = {d.message_id: d for d in session.scalars(query).unique()}
        for i, message_id in wanted.items():
            found[i] = by_id.get(message_id)
    return found


def _angled(message_id: str) -> str:
    wanted = message_id.strip()
    return wanted if wanted.startswith("<") else f"<{wanted}>"


def _event(report: Report, delivery: Delivery | None, now: datetime) -> dict[str, object]:
    """The feedback_events row of a report."""
    return {
        "key": report.key[:128], "kind": report.kind, "source": report.source[:20],
        "recipient": report.recipient[:320],
        "subscription_id": delivery.subscription_id if delivery else None,
        "delivery_id": delivery.id if delivery else None, "status": report.status[:20],
        "diagnostic": " ".join(report.diagnostic.split())[:500], "received_at": now,
    }  # fmt: skip
