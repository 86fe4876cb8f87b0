"""The webhook outbox: endpoints, the messages written for them in the transaction of what they
report, and the statements of a delivery pass (claim under a lease, record the answers).

An event becomes one row per endpoint that asked for its type, all of a batch in one INSERT;
the endpoints are read once per session (a session is one transaction here), so a pass of the
dispatcher costs one small SELECT and one INSERT, and nothing at all without endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..models_api import WebhookAttempt, WebhookEndpoint, WebhookMessage
from .signature import new_secret, new_webhook_id

EVENT_TYPES = (
    "subscriber.confirmed",
    "lesson.sent",
    "lesson.failed",
    "subscriber.bounced",
    "subscriber.unsubscribed",
    "course.completed",
)
MESSAGES: Table = WebhookMessage.__table__  # type: ignore[assignment]
ATTEMPTS: Table = WebhookAttempt.__table__  # type: ignore[assignment]
_CACHE = "drip_webhook_endpoints"  # session.info key: [(endpoint id, its event types)]


@dataclass(frozen=True)
class HookEvent:
    """Something another system may want to hear of: its type and what it says."""

    type: str
    data: dict[str, Any]
    subscription_id: int | None = None


def check_events(names: Sequence[str]) -> list[str]:
    """The event types named (all of them for none), or InvalidInput naming the unknown one."""
    chosen = [n.strip() for n in names if n.strip()] or list(EVENT_TYPES)
    for name in chosen:
        if name not in EVENT_TYPES:
            raise InvalidInput(f"unknown event {name[:60]!r} (events: {', '.join(EVENT_TYPES)})")
    return list(dict.fromkeys(chosen))


def check_url(url: str) -> str:
    """An http(s) URL with a host, or InvalidInput."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        valid = False
    if not valid or len(url) > 2000 or any(c.isspace() for c in url):
        raise InvalidInput(f"{url[:100]!r} is not an http:// or https:// URL")
    return url


def add_endpoint(
    session: Session, url: str, events: Sequence[str], now: datetime
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows it once)."""
    endpoint = WebhookEndpoint(url=check_url(url), events=",".join(check_events(events)),
                               secret=new_secret(), created_at=now)  # fmt: skip
    session.add(endpoint)
    session.flush()
    return endpoint


def endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def remove_endpoint(session: Session, endpoint_id: int) -> bool:
    """Remove an endpoint and its undelivered messages; False if there is none of that id."""
    session.execute(delete(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id))
    result = session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _subscribed(session: Session) -> list[tuple[int, frozenset[str]]]:
    if _CACHE not in session.info:
        rows = session.execute(select(WebhookEndpoint.id, WebhookEndpoint.events)).all()
        session.info[_CACHE] = [(i, frozenset(events.split(","))) for i, events in rows]
    cached: list[tuple[int, frozenset[str]]] = session.info[_CACHE]
    return cached


def listening(session: Session, event_type: str | None = None) -> bool:
    """Whether any endpoint wants `event_type` (any event, for None): else nothing is built."""
    return any(event_type is None or event_type in types for _, types in _subscribed(session))


def enqueue(session: Session, events: Sequence[HookEvent], now: datetime) -> int:
    """Write a message per event and endpoint that wants it, in the caller's transaction."""
    wanted = _subscribed(session) if events else []
    stamp = now.isoformat().replace("+00:00", "Z")
    rows = [
        {"endpoint_id": endpoint_id, "webhook_id": new_webhook_id(), "event_type": event.type,
         "subscription_id": event.subscription_id, "payload": body(event, stamp),
         "created_at": now, "next_attempt_at": now, "attempts": 0}
        for event in events
        for endpoint_id, types in wanted
        if event.type in types
    ]  # fmt: skip
    if rows:
        session.execute(insert(MESSAGES), rows)
    return len(rows)


def body(event: HookEvent, stamp: str) -> str:
    """The JSON body: the event's type, when it happened (ISO 8601, UTC), and its data."""
    return json.dumps({"type": event.type, "timestamp": stamp, "data": event.data},
                      separators=(",", ":"), ensure_ascii=False)  # fmt: skip


@dataclass
class Claimed:
    """A message leased for one attempt, with what signing and sending it needs."""

    id: int
    endpoint_id: int
    url: str
    secret: str
    webhook_id: str
    payload: str
    attempts: int


def claim_due(session: Session, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Lease up to `limit` messages due at `now` whose lease is free (a dead worker's ran out),
    oldest first; other workers skip the rows locked here (PostgreSQL)."""
    rows = session.execute(
        select(WebhookMessage.id, WebhookMessage.endpoint_id, WebhookEndpoint.url,
               WebhookEndpoint.secret, WebhookMessage.webhook_id, WebhookMessage.payload,
               WebhookMessage.attempts)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookMessage.endpoint_id)
        .where(WebhookMessage.delivered_at.is_(None), WebhookMessage.failed_at.is_(None),
               WebhookMessage.next_attempt_at <= now,
               or_(WebhookMessage.leased_until.is_(None), WebhookMessage.leased_until <= now))
        .order_by(WebhookMessage.id).limit(limit)
        .with_for_update(skip_locked=True, of=WebhookMessage)
    ).all()  # fmt: skip
    if rows:
        session.execute(update(WebhookMessage).where(WebhookMessage.id.in_([r.id for r in rows]))
                        .values(leased_until=now + lease))  # fmt: skip
    return [Claimed(*row) for row in rows]


@dataclass
class Answers:
    """What a delivery pass writes back: messages delivered, retried later, given up on, held
    (not tried: their endpoint failed just before), and every attempt made."""

    delivered: list[int] = field(default_factory=list)
    retry: list[tuple[int, int, datetime]] = field(default_factory=list)  # id, attempts, when
    failed: list[tuple[int, int]] = field(default_factory=list)  # id, attempts
    held: list[tuple[int, datetime]] = field(default_factory=list)  # id, when
    attempts: list[dict[str, Any]] = field(default_factory=list)


def record(session: Session, answers: Answers, now: datetime) -> None:
    """Write a pass's answers in one transaction; every lease taken is given back."""
    changes: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
        ([{"row": i} for i in answers.delivered],
         {"delivered_at": now, "attempts": MESSAGES.c.attempts + 1}),
        ([{"row": i, "n": n, "at": at} for i, n, at in answers.retry],
         {"attempts": bindparam("n"), "next_attempt_at": bindparam("at")}),
        ([{"row": i, "n": n} for i, n in answers.failed],
         {"attempts": bindparam("n"), "failed_at": now}),
        ([{"row": i, "at": at} for i, at in answers.held], {"next_attempt_at": bindparam("at")}),
    ]  # fmt: skip
    for rows, values in changes:
        if rows:
            session.execute(update(MESSAGES).where(MESSAGES.c.id == bindparam("row"))
                            .values(leased_until=None, **values), rows)  # fmt: skip
    if answers.attempts:
        session.execute(insert(ATTEMPTS), answers.attempts)


def prune(session: Session, before: datetime) -> int:
    """Forget messages delivered or given up on before `before`, with their attempts: the
    outbox does not grow for ever, nor keep what it told about people."""
    removed = 0
    for column in (WebhookMessage.delivered_at, WebhookMessage.failed_at):
        result = session.execute(delete(WebhookMessage).where(column < before))
        removed += int(result.rowcount)  # type: ignore[attr-defined]
    return removed


@dataclass(frozen=True)
class AttemptView:
    """One attempt, as an operator reads it."""

    attempted_at: datetime
    endpoint_id: int
    url: str
    event_type: str
    webhook_id: str
    status: int
    error: str


def recent_attempts(
    session: Session, limit: int = 50, endpoint_id: int | None = None
) -> list[AttemptView]:
    """The latest attempts, newest first (of one endpoint, if given)."""
    query = (
        select(WebhookAttempt.attempted_at, WebhookAttempt.endpoint_id, WebhookEndpoint.url,
               WebhookMessage.event_type, WebhookMessage.webhook_id, WebhookAttempt.status,
               WebhookAttempt.error)
        .join(WebhookMessage, WebhookMessage.id == WebhookAttempt.message_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookAttempt.endpoint_id)
        .order_by(WebhookAttempt.id.desc()).limit(limit)
    )  # fmt: skip
    if endpoint_id is not None:
        query = query.where(WebhookAttempt.endpoint_id == endpoint_id)
    return [AttemptView(*row) for row in session.execute(query)]


def pending_count(session: Session) -> int:
    """Messages not yet delivered nor given up on."""
    query = (
        select(func.count())
        .select_from(WebhookMessage)
        .where(WebhookMessage.delivered_at.is_(None), WebhookMessage.failed_at.is_(None))
    )
    return int(session.scalar(query) or 0)
