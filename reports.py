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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
    if session.scalar(select(FeedbackEvent.id).where(FeedbackEvent.key == report.key[:128])):
        return Outcome.DUPLICATE
    delivery = find_delivery(session, report)
    subscription = session.get(Subscription, delivery.subscription_id) if delivery else None
    try:
        with session.begin_nested():
            session.add(_event(report, delivery, now))
    except IntegrityError:  # stored meanwhile by another process
        return Outcome.DUPLICATE
    log.info("%s for %s (%s %s): %s", report.kind, report.recipient, report.source,
             report.status, report.diagnostic[:200],
             extra={"event": str(report.kind), "recipient": report.recipient,
                    "source": report.source, "status": report.status,
                    "subscription_id": subscription.id if subscription else None})  # fmt: skip
    return _act(session, report, subscription, now, courses, delivery)


def _act(
    session: Session, report: Report, sub: Subscription | None, now: datetime,
    courses: dict[str, Course], delivery: Delivery | None = None,
) -> Outcome:  # fmt: skip
    if report.kind is FeedbackKind.DELIVERED:
        if sub is not None:
            sub.soft_bounces = 0
        return Outcome.RECORDED
    if report.kind is FeedbackKind.SOFT_BOUNCE:
        if sub is None:
            return Outcome.RECORDED
        sub.soft_bounces += 1
        if sub.soft_bounces < SOFT_BOUNCES_ARE_HARD and not _bouncing_too_long(
            session, delivery, now
        ):
            return Outcome.RECORDED
    reason = (SuppressionReason.COMPLAINT if report.kind is FeedbackKind.COMPLAINT
              else SuppressionReason.HARD_BOUNCE)  # fmt: skip
    address = sub.subscriber.email if sub is not None else report.recipient
    if sub is not None and reason is SuppressionReason.HARD_BOUNCE:
        apply(sub, Event.REPORTED_BOUNCE, courses.get(sub.course_slug), now)
    detail = f"{report.source} {report.status} {report.diagnostic}".strip()
    suppressions.suppress(session, address, reason, detail, now, courses)
    return Outcome.ENDED


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


def find_delivery(session: Session, report: Report) -> Delivery | None:
    """The delivery a report is about: by the VERP address first (it survives mangled
    reports), then by our Message-ID. None when neither matches: nothing is guessed."""
    if report.delivery is not None:
        subscription_id, day = report.delivery
        found = session.scalar(select(Delivery).where(
            Delivery.subscription_id == subscription_id, Delivery.day == day))  # fmt: skip
        if found is not None:
            return found
    if report.message_id:
        wanted = report.message_id.strip()
        wanted = wanted if wanted.startswith("<") else f"<{wanted}>"
        return session.scalar(select(Delivery).where(Delivery.message_id == wanted))
    return None


def _event(report: Report, delivery: Delivery | None, now: datetime) -> FeedbackEvent:
    return FeedbackEvent(
        key=report.key[:128], kind=report.kind, source=report.source[:20],
        recipient=report.recipient[:320],
        subscription_id=delivery.subscription_id if delivery else None,
        delivery_id=delivery.id if delivery else None, status=report.status[:20],
        diagnostic=" ".join(report.diagnostic.split())[:500], received_at=now,
    )  # fmt: skip
