"""The subscription lifecycle, and the only place that decides a subscription's state.

`decide(facts, event, now, course)` is pure: from what a subscription is and what happened, the
state it moves to and when its next lesson is due (None: nothing happens). Web, CLI and import
call `apply`, which writes one subscription; dispatch calls `decide` per claim and writes the
whole batch at once. Everything else here finds subscriptions; the caller commits.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from datetime import datetime, time
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from .course.model import Course
from .finders import by_token as by_token
from .finders import ever_subscribed as ever_subscribed
from .finders import find_failed as find_failed
from .finders import find_live as find_live
from .finders import find_subscriber as find_subscriber
from .finders import live_subscription as live_subscription
from .hooks import announce
from .inputs import check_name as check_name
from .inputs import check_timezone as check_timezone
from .inputs import normalize_email as normalize_email
from .models import StateChange, Subscriber, Subscription, SubscriptionState
from .scheduler.schedule import (
    Cadence,
    next_lesson_due,
    resume_due,
    snooze_until,
    upcoming,
    zone,
)  # fmt: skip

log = logging.getLogger("drip.subscriptions")
MAX_SNOOZE_DAYS = 90
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
    # The learner's pace (web/pace.py): the next lesson now, none for `target` days, lesson 1
    # again, or lesson `target` again (one already received).
    NEXT_NOW = "next now"
    SNOOZE = "snooze"
    RESTART = "restart"
    JUMP = "jump"
    RETRY_NOW = "retry now"  # the operator's: a deferred lesson (or confirmation) is tried now
    MOVE = "move"  # the operator's: lesson N is the next one, due as on a resume
    RESEND = "resend"  # the operator's: lesson N goes out now, and the course goes on after it


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
    @property
    def snoozed_until(self) -> datetime | None: ...
    @property
    def cadence(self) -> str | None: ...
    @property
    def retry_attempts(self) -> int: ...


@dataclass(frozen=True)
class Change:
    """A decided transition: the columns it sets (the others stay as they are)."""

    state: SubscriptionState
    next_due_at: datetime | None
    ended_at: datetime | None = None
    confirmed_at: datetime | None = None
    retry_attempts: int | None = None
    current_day: int | None = None  # a pace action or MOVE/RESEND moves the learner
    snoozed_until: datetime | None = None
    clear_snooze: bool = False  # a pace action that asks for a lesson now ends a snooze
    rewalk: bool | None = None  # a restart or a jump: received lessons are sent again

    def columns(self) -> dict[str, Any]:
        values = {"state": self.state, "next_due_at": self.next_due_at}
        values.update((n, getattr(self, n)) for n in OPTIONAL if getattr(self, n) is not None)
        return {**values, "snoozed_until": None} if self.clear_snooze else values


OPTIONAL = ("ended_at", "confirmed_at", "retry_attempts", "current_day", "snoozed_until", "rewalk")


PACE = frozenset({Event.NEXT_NOW, Event.SNOOZE, Event.RESTART, Event.JUMP})
# The events each state accepts; any other event changes nothing. A pace action (re)starts an
# active or paused course; a failed one can only be moved to a lesson. A bounce reported later
# ends any live subscription, whatever it is doing now.
ACCEPTS: dict[SubscriptionState, frozenset[Event]] = {
    State.PENDING: frozenset({Event.REQUEST, Event.CONFIRM, Event.UNSUBSCRIBE, Event.SENT,
                              Event.DEFERRED, Event.GAVE_UP, Event.BOUNCED, Event.RETRY_NOW}),
    State.ACTIVE: frozenset({Event.PAUSE, Event.UNSUBSCRIBE, Event.RESCHEDULE, Event.SENT,
                             Event.DEFERRED, Event.GAVE_UP, Event.BOUNCED, Event.COMPLETE,
                             Event.REPORTED_BOUNCE, Event.RETRY_NOW, Event.MOVE, Event.RESEND,
                             *PACE}),
    State.PAUSED: frozenset({Event.RESUME, Event.UNSUBSCRIBE, Event.REPORTED_BOUNCE, Event.MOVE,
                             *PACE}),
    State.FAILED: frozenset({Event.RETRY, Event.UNSUBSCRIBE, Event.PAUSE, Event.REPORTED_BOUNCE,
                             Event.RESTART, Event.JUMP, Event.MOVE, Event.RESEND}),
}  # fmt: skip


def decide(
    facts: Facts, event: Event, now: datetime, course: Course | None, *, attempt: int = 0,
    retry_at: datetime | None = None, target: int = 0, lesson: int | None = None,
) -> Change | None:  # fmt: skip
    """The transition `event` causes at `now`, or None. `attempt` counts failures of the current
    lesson (DEFERRED, GAVE_UP); `retry_at` is when a deferred lesson is tried again; `target`
    is the lesson a JUMP goes to, or the days of a SNOOZE; `lesson` is the lesson MOVE and
    RESEND name. Without its course (no longer loaded), only the events that end a
    subscription are decided."""
    if event not in ACCEPTS.get(facts.state, frozenset()):
        return None
    if event in (Event.MOVE, Event.RESEND):
        return None if course is None else _move(facts, event, now, course, lesson)
    if event is Event.RETRY_NOW:  # only a lesson that was deferred: never one early
        return Change(facts.state, now) if facts.retry_attempts > 0 else None
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
    if course is None:
        return None
    if event in PACE:
        return _pace(facts, event, now, course, target)
    return _lesson_schedule(facts, event, now, course)


# Events that end a subscription, whatever it is doing, to the state they end it in.
ENDINGS = {
    Event.UNSUBSCRIBE: State.UNSUBSCRIBED,
    Event.REPORTED_BOUNCE: State.BOUNCED,
    Event.BOUNCED: State.BOUNCED,
    Event.COMPLETE: State.COMPLETED,
}


def _lesson_schedule(facts: Facts, event: Event, now: datetime, course: Course) -> Change:
    """Resume, reschedule or a sent lesson: when the next lesson is due, by the course."""
    if event is not Event.SENT:
        return Change(State.ACTIVE, _resumed(facts, now, course, facts.snoozed_until))
    if facts.current_day + 1 >= course.total_days:
        return Change(State.COMPLETED, None, ended_at=now, retry_attempts=0)
    send_time = facts.send_time or course.send_time
    due = _next_lesson_due(
        now, facts.timezone, send_time, course.interval_days, _days(facts, course)
    )
    return Change(State.ACTIVE, due, retry_attempts=0)


def _days(facts: Facts, course: Course) -> Cadence:
    return course.cadence.narrowed(facts.cadence)


def _resumed(facts: Facts, now: datetime, course: Course, floor: datetime | None) -> datetime:
    """The next send time, never earlier than the schedule allows nor than `floor` (a snooze)."""
    due = resume_due(now, zone(facts.timezone), facts.send_time or course.send_time,
                     course.interval_days, facts.last_sent_at, _days(facts, course))  # fmt: skip
    return max(due, floor or due)


def _pace(facts: Facts, event: Event, now: datetime, course: Course, target: int) -> Change | None:
    """A learner's pace action; None when it makes no sense where the learner is (no next
    lesson, a lesson outside the course, a snooze outside 1..MAX_SNOOZE_DAYS)."""
    if event is Event.NEXT_NOW and facts.current_day < course.total_days:
        return Change(State.ACTIVE, now, retry_attempts=0, clear_snooze=True)
    if event is Event.RESTART or (event is Event.JUMP and 1 <= target <= course.total_days):
        lesson = 1 if event is Event.RESTART else target
        return Change(State.ACTIVE, now, retry_attempts=0, current_day=lesson - 1,
                      clear_snooze=True, rewalk=True)  # fmt: skip
    if event is Event.SNOOZE and 1 <= target <= MAX_SNOOZE_DAYS:
        send_time = facts.send_time or course.send_time
        until = snooze_until(now, zone(facts.timezone), send_time, target, _days(facts, course))
        return Change(State.ACTIVE, _resumed(facts, now, course, until), snoozed_until=until)
    return None


def _move(
    facts: Facts, event: Event, now: datetime, course: Course, lesson: int | None
) -> Change | None:
    """MOVE: lesson N is next, due as on a resume (at once if none was sent yet; else at a send
    time, a day after the last); a paused one stays paused. RESEND: lesson N (by default the
    last one sent) is due now. No lesson outside the course."""
    default = facts.current_day + 1 if event is Event.MOVE else max(facts.current_day, 1)
    day = default if lesson is None else lesson
    if not 1 <= day <= course.total_days:
        return None
    moved = Change(State.ACTIVE, now, retry_attempts=0, current_day=day - 1, rewalk=True)
    if event is Event.RESEND:  # rewalk: a lesson received already goes out again
        return moved
    if facts.state is State.PAUSED:
        return replace(moved, state=State.PAUSED, next_due_at=None)
    return replace(moved, next_due_at=_resumed(facts, now, course, facts.snoozed_until))


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
def _next_lesson_due(
    sent_at: datetime, timezone: str, send_time: time, interval: int, cadence: Cadence
) -> datetime:
    """Everyone in one zone sent a lesson at the same `now` is next due at the same instant."""
    return next_lesson_due(sent_at, zone(timezone), send_time, interval, cadence)


def forecast(sub: Subscription, course: Course, count: int = 5) -> list[tuple[int, datetime]]:
    """(lesson, due time) of an active subscription's next `count` lessons, if each goes out
    when due: its cadence, send time and any pause applied (they are in next_due_at)."""
    if sub.state is not State.ACTIVE or sub.next_due_at is None:
        return []
    left = min(count, course.total_days - sub.current_day)
    times = upcoming(sub.next_due_at, zone(sub.timezone), sub.send_time or course.send_time,
                     course.interval_days, _days(sub, course), left)  # fmt: skip
    return [(sub.current_day + 1 + n, due) for n, due in enumerate(times)]


def apply(
    subscription: Subscription, event: Event | str, course: Course | None, now: datetime, *,
    by: str = "", lesson: int | None = None, target: int = 0,
) -> bool:  # fmt: skip
    """Decide and write one subscription's transition, with a log line, its webhook messages
    and, when its state changes, a row of its history naming `by` (who asked); False if
    nothing changes."""
    change = decide(subscription, Event(event), now, course, lesson=lesson, target=target)
    if change is None:
        return False
    previous = subscription.state
    for column, value in change.columns().items():
        setattr(subscription, column, value)
    if previous is not change.state or change.current_day is not None:
        row = StateChange(at=now, previous=str(previous), state=str(change.state),
                          event=str(event), by=by[:320])  # fmt: skip
        subscription.changes.add(row)
    if previous is not change.state:
        log_transition(subscription.id, subscription.course_slug, previous, change.state)
    announce(subscription, event, previous, now)  # webhooks, in the same transaction
    return True


def reschedule(
    subscription: Subscription, course: Course, timezone: str, send_time: time, now: datetime,
    cadence: str | None = None,
) -> None:  # fmt: skip
    """A new time zone, time of day and cadence (a key of schedule.CADENCES, None: the
    course's days); an active subscription's next lesson moves with them."""
    subscription.timezone = check_timezone(timezone)
    subscription.send_time, subscription.cadence = send_time, cadence
    apply(subscription, Event.RESCHEDULE, course, now)


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
