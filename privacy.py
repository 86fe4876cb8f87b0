"""Personal data: the consent record kept when a subscription becomes active, a subscriber's
data as JSON, and erasure (personal data removed, the counts kept).

Erasing ends the address's live subscriptions (through subscriptions.apply, so other systems
hear of it) and then overwrites what names the person: the address and name, the addresses and
replies in deliveries and reports, the IP and browser of the consent records, and the webhook
messages already delivered about them. Subscriptions, deliveries and their states stay, so
every figure stays true. The suppression list keeps its entry: it exists so that drip never
mails that address again (`drip suppress remove` lifts it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from . import subscriptions, suppressions
from .course.model import Course
from .models import LIVE_STATES, Delivery, FeedbackEvent, Subscription, new_token
from .models_api import Consent, WebhookMessage

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never a real address


def wording(course: Course) -> str:
    """The words a person agrees to by confirming, shown on the confirm page and stored."""
    every = "day" if course.interval_days == 1 else f"{course.interval_days} days"
    return (f"Send me the {course.total_days} lessons of \u201c{course.title}\u201d by email, "
            f"one every {every}, from {course.sender_name} <{course.sender_email}>. "
            "I can unsubscribe from any of them with one click.")  # fmt: skip


def record_consent(
    session: Session, sub: Subscription, course: Course, now: datetime, *, source: str,
    ip: str = "", user_agent: str = "", agreed: str | None = None,
) -> Consent:  # fmt: skip
    """Keep what the person agreed to, in the transaction that activates the subscription."""
    consent = Consent(subscription_id=sub.id, course_slug=course.slug, source=source[:20],
                      ip=ip[:64], user_agent=" ".join(user_agent.split())[:500],
                      wording=agreed or wording(course), agreed_at=now)  # fmt: skip
    session.add(consent)
    return consent


def consents(session: Session, subscription_ids: list[int]) -> list[Consent]:
    return list(session.scalars(select(Consent).where(
        Consent.subscription_id.in_(subscription_ids)).order_by(Consent.id)))  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def export(session: Session, email: str) -> dict[str, Any] | None:
    """Everything drip holds about the subscriber of `email`, as JSON-ready data; None if
    the address is unknown."""
    subscriber = subscriptions.find_subscriber(session, subscriptions.normalize_email(email))
    if subscriber is None:
        return None
    subs = list(session.scalars(select(Subscription).where(
        Subscription.subscriber_id == subscriber.id).order_by(Subscription.id)))  # fmt: skip
    ids = [s.id for s in subs]
    sent = session.scalars(select(Delivery).where(Delivery.subscription_id.in_(ids))
                           .order_by(Delivery.subscription_id, Delivery.day)).all()  # fmt: skip
    entry = suppressions.find(session, subscriber.email)
    return {
        "subscriber": {"email": subscriber.email, "name": subscriber.name,
                       "created_at": _iso(subscriber.created_at)},
        "subscriptions": [_subscription(s, [d for d in sent if d.subscription_id == s.id])
                          for s in subs],
        "consents": [{"subscription_id": c.subscription_id, "course": c.course_slug,
                      "source": c.source, "agreed_at": _iso(c.agreed_at), "ip": c.ip,
                      "user_agent": c.user_agent, "wording": c.wording}
                     for c in consents(session, ids)],
        "reports": [{"subscription_id": r.subscription_id, "kind": str(r.kind),
                     "source": r.source, "status": r.status, "diagnostic": r.diagnostic,
                     "received_at": _iso(r.received_at)}
                    for r in session.scalars(select(FeedbackEvent).where(
                        FeedbackEvent.subscription_id.in_(ids)).order_by(FeedbackEvent.id))],
        "suppression": None if entry is None else {
            "reason": str(entry.reason), "detail": entry.detail,
            "created_at": _iso(entry.created_at)},
    }  # fmt: skip


def _subscription(sub: Subscription, deliveries: list[Delivery]) -> dict[str, Any]:
    return {
        "id": sub.id, "course": sub.course_slug, "state": str(sub.state),
        "current_day": sub.current_day, "timezone": sub.timezone,
        "send_time": sub.send_time.strftime("%H:%M") if sub.send_time else None,
        "created_at": _iso(sub.created_at), "confirmed_at": _iso(sub.confirmed_at),
        "ended_at": _iso(sub.ended_at),
        "deliveries": [{"day": d.day, "state": str(d.state), "message_id": d.message_id,
                        "attempts": d.attempts, "sent_at": _iso(d.sent_at),
                        "smtp_reply": d.smtp_reply} for d in deliveries],
    }  # fmt: skip


def is_erased(email: str) -> bool:
    """Whether an address is the stand-in an erasure left."""
    return email.endswith("@" + ERASED_DOMAIN)


@dataclass(frozen=True)
class Erased:
    """What an erasure did: subscriptions ended by it, and subscriptions kept (anonymous)."""

    subscriber_id: int
    ended: int
    kept: int


def erase(session: Session, email: str, now: datetime, courses: dict[str, Course]) -> Erased | None:
    """Remove the personal data of the subscriber of `email` (see the module); None if the
    address is unknown. The caller commits."""
    subscriber = subscriptions.find_subscriber(session, subscriptions.normalize_email(email))
    if subscriber is None:
        return None
    subs = list(session.scalars(select(Subscription).where(
        Subscription.subscriber_id == subscriber.id)))  # fmt: skip
    ended = sum(subscriptions.apply(s, subscriptions.Event.UNSUBSCRIBE,
                                    courses.get(s.course_slug), now)
                for s in subs if s.state in LIVE_STATES)  # fmt: skip
    ids = [s.id for s in subs]
    anonymous = f"erased-{subscriber.id}@{ERASED_DOMAIN}"
    subscriber.email, subscriber.email_key, subscriber.name = anonymous, anonymous, ""
    if ids:
        _scrub(session, ids)
    return Erased(subscriber.id, ended, len(ids))


def _scrub(session: Session, ids: list[int]) -> None:
    """Overwrite what names the person in rows about these subscriptions."""
    session.execute(update(Delivery).where(Delivery.subscription_id.in_(ids))
                    .values(smtp_reply=""))  # fmt: skip
    session.execute(update(FeedbackEvent).where(FeedbackEvent.subscription_id.in_(ids))
                    .values(recipient="", diagnostic=""))  # fmt: skip
    session.execute(update(Consent).where(Consent.subscription_id.in_(ids))
                    .values(ip="", user_agent=""))  # fmt: skip
    delivered = WebhookMessage.delivered_at.is_not(None)
    session.execute(delete(WebhookMessage).where(
        WebhookMessage.subscription_id.in_(ids), delivered))  # fmt: skip
    for sub in session.scalars(select(Subscription).where(Subscription.id.in_(ids))):
        sub.confirm_token, sub.unsubscribe_token, sub.manage_token = (new_token() for _ in range(3))
