"""Step 5 of a dispatch pass: the results of a sent batch, written in one transaction.

What each result means for its subscription is decided by subscriptions.decide; this module
only turns results into events, logs them, and writes the decisions in bulk.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..hooks import HookEvent, enqueue, listening
from ..models import DeliveryState, SubscriptionState
from ..send import SendResult, SendStatus
from ..subscriptions import Event, decide, log_transition
from .queries import DELIVERIES, SUBSCRIPTIONS, Claim, add_state_changes, update_rows
from .schedule import RetryPolicy

log = logging.getLogger("drip.dispatch")


@dataclass
class PassResult:
    """What one pass did, for `drip tick` to print and the runner to log."""

    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    skipped: int = 0  # claimed, then found unsubscribed or paused before the send
    failed: int = 0  # temporary failures retried for too long, or a message that cannot go
    confirmations: int = 0  # confirmation emails sent (the other counts include their failures)

    def add(self, other: PassResult) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in COUNTERS)


COUNTERS = ("sent", "deferred", "bounced", "skipped", "failed", "confirmations")


# What a send result does: the subscription event, the delivery state, the pass counter.
OUTCOMES = {
    Event.SENT: (DeliveryState.SENT, "sent"),
    Event.DEFERRED: (DeliveryState.DEFERRED, "deferred"),
    Event.GAVE_UP: (DeliveryState.FAILED, "failed"),
    Event.BOUNCED: (DeliveryState.BOUNCED, "bounced"),
}


def event_of(sent: SendResult, attempt: int, retry: RetryPolicy) -> Event:
    """The retry decision: a temporary failure is retried until the backoff is used up."""
    if sent.status is SendStatus.SENT:
        return Event.SENT
    if sent.status is SendStatus.TEMPORARY:
        return Event.GAVE_UP if retry.exhausted(attempt) else Event.DEFERRED
    if sent.status is SendStatus.UNSENDABLE:
        return Event.GAVE_UP
    return Event.BOUNCED


def record_outcomes(
    session: Session, outcomes: list[tuple[Claim, SendResult]], now: datetime, retry: RetryPolicy
) -> PassResult:
    """Write each result: its delivery, its subscription's progress (always: the lesson went out
    or was tried) and its state and due time (only while still active)."""
    result = PassResult()
    deliveries: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    states: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    history: list[dict[str, Any]] = []  # the changes of state, for the console's timeline
    hooks: list[HookEvent] = []
    told = listening(session)  # any webhook endpoint: else no event is built
    for claim, sent in outcomes:
        attempt = claim.retry_attempts + 1
        event = event_of(sent, attempt, retry)
        retry_at = now + retry.delay(attempt) if event is Event.DEFERRED else None
        change = decide(claim, event, now, claim.course, attempt=attempt, retry_at=retry_at)
        assert change is not None  # active and pending take every send event
        delivery_state, counter = OUTCOMES[event]
        if claim.is_confirmation and event is Event.SENT:
            counter = "confirmations"
        setattr(result, counter, getattr(result, counter) + 1)
        deliveries.append({"row_id": claim.delivery_id, "state": delivery_state,
                           "smtp_reply": sent.reply[:500], "updated_at": now,
                           "sent_at": now if event is Event.SENT else None})  # fmt: skip
        columns = change.columns()
        progress.append(_progress(claim, event, columns.pop("retry_attempts", None), now))
        states[(claim.state, *columns)].append({"row_id": claim.subscription_id, **columns})
        _log(event, claim, sent, attempt)
        if change.state is not claim.state:
            history.append(_transition(claim, change.state, event, now))
        hooks.extend(hook_events(claim, event, change.state, sent) if told else ())
    update_rows(session, DELIVERIES, deliveries)
    add_state_changes(session, history)
    update_rows(session, SUBSCRIPTIONS, progress)
    for (state, *_), rows in states.items():
        update_rows(session, SUBSCRIPTIONS, rows, only_in=state)
    enqueue(session, hooks, now)  # one INSERT for the whole batch, in its transaction
    return result


def _progress(claim: Claim, event: Event, attempts: int | None, now: datetime) -> dict[str, Any]:
    """What every result writes, whatever the state: the lease ends, the attempts so far, and
    the lesson reached when one went out."""
    done: dict[str, Any] = {"row_id": claim.subscription_id, "leased_until": None,
            "retry_attempts": claim.retry_attempts if attempts is None else attempts}  # fmt: skip
    if event is Event.SENT and not claim.is_confirmation:
        done.update(current_day=claim.day, last_sent_at=now)
    return done


def _transition(
    claim: Claim, state: SubscriptionState, event: Event, now: datetime
) -> dict[str, Any]:
    """The log line of a change of state, and its row in the history."""
    log_transition(claim.subscription_id, claim.course.slug, claim.state, state)
    return {"subscription_id": claim.subscription_id, "at": now, "by": "",
            "previous": str(claim.state), "state": str(state), "event": str(event)}  # fmt: skip


# The webhook events of a send result: lessons (not confirmation emails) sent or given up on.
LESSON_EVENTS = {Event.SENT: "lesson.sent", Event.GAVE_UP: "lesson.failed"}


def hook_events(
    claim: Claim, event: Event, state: SubscriptionState, sent: SendResult
) -> list[HookEvent]:
    """What other systems are told of one result (see hooks.EVENT_TYPES)."""
    done = claim.day if event is Event.SENT else claim.current_day
    data = {"subscription_id": claim.subscription_id, "email": claim.recipient.email,
            "course": claim.course.slug, "state": str(state),
            "current_day": max(0, done)}  # fmt: skip
    found = []
    if event in LESSON_EVENTS and not claim.is_confirmation:
        lesson = {"day": claim.day, "message_id": claim.message_id, "smtp_reply": sent.reply}
        found.append((LESSON_EVENTS[event], {**data, **lesson}))
    if event is Event.SENT and state is SubscriptionState.COMPLETED:
        found.append(("course.completed", data))
    if event is Event.BOUNCED:
        found.append(("subscriber.bounced", {**data, "smtp_reply": sent.reply}))
    return [HookEvent(kind, body, claim.subscription_id) for kind, body in found]


def _log(event: Event, claim: Claim, sent: SendResult, attempt: int) -> None:
    fields = {"event": str(event).replace("gave up", "failed"),
              "subscription_id": claim.subscription_id, "message_id": claim.message_id,
              "day": claim.day, "course": claim.course.slug, "smtp_reply": sent.reply}  # fmt: skip
    what = "the confirmation" if claim.is_confirmation else f"day {claim.day}"
    where = f"{what} of subscription {claim.subscription_id}"
    if event is Event.SENT:
        log.info("sent %s (%s): %s", where, claim.message_id, sent.reply, extra=fields)
    elif event is Event.DEFERRED:
        log.warning("deferred %s (attempt %d): %s", where, attempt, sent.reply, extra=fields)
    elif event is Event.GAVE_UP:
        log.error("gave up on %s after %d attempts: %s (`drip retry` makes it due again)",
                  where, attempt, sent.reply, extra=fields)  # fmt: skip
    else:
        log.warning("bounced %s: %s", where, sent.reply, extra=fields)
