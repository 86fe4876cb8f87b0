"""The subscription lifecycle, and the only place that decides a subscription's state.

`decide(facts, event, now, course)` is pure: from what a subscription is and what happened, the
state it moves to and when its next lesson is due (None: nothing happens). Web, CLI and import
call `apply`, which writes one subscription; dispatch calls `decide` per claim and writes the
whole batch at once. Everything else here finds subscriptions; the caller commits.
"""

from __future__ import annotations

import enum
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, available_timezones

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from .course.model import Course
from .errors import InvalidInput
from .hooks import announce
from .models import (
    LIVE_STATES,
    Delivery,
    DeliveryState,
    Subscriber,
    Subscription,
    SubscriptionState,
)
from .scheduler.schedule import next_lesson_due, resume_due, zone

log = logging.getLogger("drip.subscriptions")
MAX_NAME_LENGTH = 200
State = SubscriptionState


class Event(enum.StrEnum):
    REQUEST = "request"  # a confirmation email is asked for (a signup): it is due at once
    CONFIRM = "confirm"  # the double opt-in link was followed (or --confirmed)
    PAUSE = "pause"
    RESUME = "resume"
    UNSUBSCRIBE = "unsubscribe"
    RETRY = "retry"  # the operator's retry of a lesson given up on
    RESCHEDULE = "reschedule"  # a new time zone or time of day
    SENT = "sent"  # the lesson after current_day (or, while pending, the confirmation) went out
    DEFERRED = "deferred"  # a temporary failure; retried after a backoff
    GAVE_UP = "gave up"  # temporary failures for longer than the retry budget
    BOUNCED = "bounced"  # refused permanently for this recipient
    COMPLETE = "complete"  # marked done from outside (an imported list)
    REPORTED_BOUNCE = "reported bounce"  # a bounce reported after the relay accepted a message


class Facts(Protocol):
    """What a decision reads: a Subscription row, or a claim of one in dispatch."""

    @property
    def state(self) -> SubscriptionState: ...
    @property
    def current_day(self) -> int: ...
    @property
    def timezone(self) -> str: ...
    @property
    def send_time(self) -> time | None: ...
    @property
    def last_sent_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Change:
    """A decided transition: the columns it sets (the others stay as they are)."""

    state: SubscriptionState
    next_due_at: datetime | None
    ended_at: datetime | None = None
    confirmed_at: datetime | None = None
    retry_attempts: int | None = None

    def columns(self) -> dict[str, Any]:
        values = {"state": self.state, "next_due_at": self.next_due_at}
        for name in ("ended_at", "confirmed_at", "retry_attempts"):
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        return values


# The events each state accepts; any other event changes nothing. A bounce reported later
# ends any live subscription, whatever it is doing now.
ACCEPTS: dict[SubscriptionState, frozenset[Event]] = {
    State.PENDING: frozenset(
        {
            Event.REQUEST,
            Event.CONFIRM,
            Event.UNSUBSCRIBE,
            Event.SENT,
            Event.DEFERRED,
            Event.GAVE_UP,
            Event.BOUNCED,
        }
    ),
    State.ACTIVE: frozenset(
        {
            Event.PAUSE,
            Event.UNSUBSCRIBE,
            Event.RESCHEDULE,
            Event.SENT,
            Event.DEFERRED,
            Event.GAVE_UP,
            Event.BOUNCED,
            Event.COMPLETE,
            Event.REPORTED_BOUNCE,
        }
    ),
    State.PAUSED: frozenset({Event.RESUME, Event.UNSUBSCRIBE, Event.REPORTED_BOUNCE}),
    State.FAILED: frozenset({Event.RETRY, Event.UNSUBSCRIBE, Event.PAUSE, Event.REPORTED_BOUNCE}),
}


def decide(
    facts: Facts, event: Event, now: datetime, course: Course | None, *, attempt: int = 0,
    retry_at: datetime | None = None,
) -> Change | None:  # fmt: skip
    """The transition `event` causes at `now`, or None. `attempt` counts failures of the current
    lesson (DEFERRED, GAVE_UP); `retry_at` is when a deferred lesson is tried again. Without
    its course (no longer loaded), only the events that end a subscription are decided."""
    if event not in ACCEPTS.get(facts.state, frozenset()):
        return None
    if event in ENDINGS:
        return Change(ENDINGS[event], None, ended_at=now)
    if facts.state is State.PENDING and event is not Event.CONFIRM:
        return _confirmation(event, now, attempt, retry_at)
    if event is Event.CONFIRM:
        return Change(State.ACTIVE, now, confirmed_at=now, retry_attempts=0)
    if event is Event.PAUSE:
        return Change(State.PAUSED, None)
    if event is Event.RETRY:
        return Change(State.ACTIVE, now, retry_attempts=0)
    if event is Event.DEFERRED:
        return Change(State.ACTIVE, retry_at or now, retry_attempts=attempt)
    if event is Event.GAVE_UP:
        return Change(State.FAILED, None, retry_attempts=attempt)
    return None if course is None else _lesson_schedule(facts, event, now, course)


# Events that end a subscription, whatever it is doing, to the state they end it in.
ENDINGS = {
    Event.UNSUBSCRIBE: State.UNSUBSCRIBED,
    Event.REPORTED_BOUNCE: State.BOUNCED,
    Event.BOUNCED: State.BOUNCED,
    Event.COMPLETE: State.COMPLETED,
}


def _lesson_schedule(facts: Facts, event: Event, now: datetime, course: Course) -> Change:
    """Resume, reschedule or a sent lesson: when the next lesson is due, by the course."""
    send_time = facts.send_time or course.send_time
    if event is Event.SENT:
        if facts.current_day + 1 >= course.total_days:
            return Change(State.COMPLETED, None, ended_at=now, retry_attempts=0)
        due = _next_lesson_due(now, facts.timezone, send_time, course.interval_days)
        return Change(State.ACTIVE, due, retry_attempts=0)
    due = resume_due(now, zone(facts.timezone), send_time, course.interval_days,
                     facts.last_sent_at)  # fmt: skip
    return Change(State.ACTIVE, due)


def _confirmation(
    event: Event, now: datetime, attempt: int, retry_at: datetime | None
) -> Change | None:
    """A pending subscription's next_due_at is when its confirmation email is due."""
    if event is Event.REQUEST:
        return Change(State.PENDING, now, retry_attempts=0)
    if event is Event.DEFERRED:
        return Change(State.PENDING, retry_at or now, retry_attempts=attempt)
    return Change(State.PENDING, None, retry_attempts=attempt if event is Event.GAVE_UP else 0)


@lru_cache(maxsize=4096)
def _next_lesson_due(sent_at: datetime, timezone: str, send_time: time, interval: int) -> datetime:
    """Everyone in one zone sent a lesson at the same `now` is next due at the same instant."""
    return next_lesson_due(sent_at, zone(timezone), send_time, interval)


def apply(
    subscription: Subscription, event: Event | str, course: Course | None, now: datetime
) -> bool:
    """Decide and write one subscription's transition (a log line, webhooks); False if none."""
    change = decide(subscription, Event(event), now, course)
    if change is None:
        return False
    previous = subscription.state
    for column, value in change.columns().items():
        setattr(subscription, column, value)
    if previous is not change.state:
        log_transition(subscription.id, subscription.course_slug, previous, change.state)
    announce(subscription, event, previous, now)  # webhooks, in the same transaction
    return True


def reschedule(
    subscription: Subscription, course: Course, timezone: str, send_time: time, now: datetime
) -> None:
    """A new time zone and time of day; an active subscription's next lesson moves with them."""
    subscription.timezone = check_timezone(timezone)
    subscription.send_time = send_time
    apply(subscription, Event.RESCHEDULE, course, now)


def has_received(session: Session, subscription_id: int, day: int) -> bool:
    """Whether lesson `day` went out to the subscription (it may then be read online)."""
    found = session.scalar(
        select(Delivery.id).where(
            Delivery.subscription_id == subscription_id,
            Delivery.day == day,
            Delivery.state == DeliveryState.SENT,
        )
    )
    return found is not None


def log_transition(
    subscription_id: int, course_slug: str, previous: SubscriptionState, state: SubscriptionState
) -> None:
    """One structured log line per state change (see logs.py)."""
    log.info(
        "subscription %s of %s: %s -> %s", subscription_id, course_slug, previous, state,
        extra={"event": "state", "subscription_id": subscription_id, "state": str(state),
               "course": course_slug},
    )  # fmt: skip


def due_condition(now: datetime) -> ColumnElement[bool]:
    """The one definition of "due": active, and its next lesson's time has come."""
    return and_(Subscription.state == State.ACTIVE, Subscription.next_due_at <= now)


def confirmation_due_condition(now: datetime) -> ColumnElement[bool]:
    """Pending, and its confirmation email is due (asked for, or to be retried)."""
    return and_(Subscription.state == State.PENDING, Subscription.next_due_at <= now)


def normalize_email(address: str) -> str:
    """The one address check of web, CLI and import: the address in its normal form (NFC, the
    domain lowercased and in Unicode, so josé@Bücher.example and josé@xn--bcher-kva.example are
    one subscriber); InvalidInput saying why it is not an address. A local part outside ASCII
    is accepted: such a lesson needs a relay that offers SMTPUTF8."""
    try:
        checked = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=True)
        return checked.normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"{address!r} is not a valid email address: {exc}") from exc


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """`name` if it is an IANA zone; checked against the list, never opened as a file path."""
    if name not in known_zones():
        raise InvalidInput(f"{name[:80]!r} is not a known time zone (e.g. Europe/Paris)")
    return name


def check_name(name: str) -> str:
    """Names are kept as typed (they are data, shown escaped), only bounded in length."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"the name is longer than {MAX_NAME_LENGTH} characters")
    return name


def zone_of(subscription: Subscription) -> ZoneInfo:
    return zone(subscription.timezone)


def subscribe(
    session: Session, course: Course, email: str, *, now: datetime, name: str = "",
    timezone: str | None = None, confirmed: bool = False, then: Event | None = None,
) -> Subscription:  # fmt: skip
    """The live subscription of `email` to `course`, created pending (or active if `confirmed`),
    with `then` applied to it (REQUEST: its confirmation email is due); see `enrol`."""
    address = normalize_email(email)
    subscriber = find_subscriber(session, address)
    live = live_subscription(session, subscriber.id, course.slug) if subscriber else None
    subscription = enrol(session, course, address, subscriber, live, now=now, name=name,
                         timezone=timezone, confirmed=confirmed, then=then)  # fmt: skip
    session.flush()  # one flush writes the rows as they end up, and gives the caller its id
    return subscription


def enrol(
    session: Session, course: Course, address: str, subscriber: Subscriber | None,
    live: Subscription | None, *, now: datetime, name: str = "", timezone: str | None = None,
    confirmed: bool = False, then: Event | None = None,
) -> Subscription:  # fmt: skip
    """`subscribe` once the address's subscriber and live subscription are looked up (a batch
    of signups looks them all up at once); nothing is flushed unless an id is needed.

    An address already pending, active, paused or failed keeps its subscription as it is; an
    ended one (unsubscribed, bounced, completed) starts again from lesson 1 as a new
    subscription. A known subscriber's name is never changed here: anyone may type any address,
    so changes go through the preferences link only. A new address costs two INSERTs."""
    zone_name = check_timezone(timezone or course.timezone)
    name = check_name(name)
    if subscriber is None:
        subscriber = Subscriber(
            email=address, email_key=Subscriber.key_for(address), name=name, created_at=now
        )
        session.add(subscriber)
    subscription = live
    if subscription is None:
        subscription = Subscription(
            subscriber=subscriber, course_slug=course.slug, state=State.PENDING, current_day=0,
            retry_attempts=0, timezone=zone_name, created_at=now,
        )  # fmt: skip
        session.add(subscription)
    for event in ([Event.CONFIRM] if confirmed else []) + ([then] if then else []):
        if subscription.id is None and event is Event.CONFIRM:
            session.flush()  # its id, for the log line of its activation
        apply(subscription, event, course, now)
    return subscription


def find_subscriber(session: Session, address: str) -> Subscriber | None:
    return session.scalar(
        select(Subscriber).where(Subscriber.email_key == Subscriber.key_for(address))
    )


def live_subscription(
    session: Session, subscriber_id: int, course_slug: str
) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.course_slug == course_slug,
            Subscription.state.in_(LIVE_STATES),
        )
    )


def ever_subscribed(session: Session, subscriber_id: int, course_slug: str) -> bool:
    """Whether the subscriber has any subscription to the course, live or ended."""
    query = select(Subscription.id).where(Subscription.subscriber_id == subscriber_id,
                                          Subscription.course_slug == course_slug)  # fmt: skip
    return session.scalar(query.limit(1)) is not None


def find_live(
    session: Session, email: str, course_slug: str | None = None,
    states: Sequence[SubscriptionState] = LIVE_STATES,
) -> list[Subscription]:  # fmt: skip
    """The live subscriptions of `email` (of one course, if given)."""
    query = (
        select(Subscription)
        .join(Subscriber)
        .where(
            Subscriber.email_key == Subscriber.key_for(normalize_email(email)),
            Subscription.state.in_(states),
        )
        .order_by(Subscription.id)
    )
    if course_slug is not None:
        query = query.where(Subscription.course_slug == course_slug)
    return list(session.scalars(query))


def find_failed(session: Session, email: str, course_slug: str | None = None) -> list[Subscription]:
    """The subscriptions of `email` whose next lesson was given up on."""
    return find_live(session, email, course_slug, states=(State.FAILED,))


def listing(session: Session, course_slug: str | None = None) -> list[tuple[str, Subscription]]:
    """(email, subscription) for every subscription, by course and address."""
    query = (
        select(Subscriber.email, Subscription)
        .join(Subscription.subscriber)
        .order_by(Subscription.course_slug, Subscriber.email_key, Subscription.id)
    )
    if course_slug:
        query = query.where(Subscription.course_slug == course_slug)
    return [(email, sub) for email, sub in session.execute(query)]


def by_token(session: Session, column: str, token: str) -> Subscription | None:
    """The subscription whose `column` token is `token`, compared in constant time."""
    if not token or len(token) > 64 or not token.isascii() or "\x00" in token:
        return None
    subscription = session.scalar(
        select(Subscription).where(getattr(Subscription, column) == token)
    )
    if subscription is None or not hmac.compare_digest(getattr(subscription, column), token):
        return None
    return subscription
