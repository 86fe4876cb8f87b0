"""Operators of the console: accounts with argon2id password hashes, and the log of what each
one did. The caller commits; nothing here knows about HTTP."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import InvalidInput
from .models import Operator, OperatorAction, Subscriber
from .subscriptions import normalize_email

log = logging.getLogger("drip.admin")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is only a way to burn CPU
HASHER = PasswordHasher()  # argon2id, the library's defaults (RFC 9106's second choice)
# Checked against when no operator has the address, so an unknown address takes as long.
_DUMMY = HASHER.hash("drip: no operator has this address")


def check_password(password: str) -> str:
    """`password` if it may be an operator's: 12 to 1024 characters, no NUL."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or "\x00" in password:
        raise InvalidInput(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def find(session: Session, email: str) -> Operator | None:
    return session.scalar(select(Operator).where(Operator.email_key == Subscriber.key_for(email)))


def add(session: Session, email: str, password: str, now: datetime) -> Operator:
    """A new operator; InvalidInput if the address is not one or already has an account."""
    address = normalize_email(email)
    if find(session, address) is not None:
        raise InvalidInput(f"{address} is already an operator: `drip admin passwd` changes it")
    operator = Operator(
        email=address, email_key=Subscriber.key_for(address), created_at=now,
        password_hash=HASHER.hash(check_password(password)), password_changed_at=now,
    )  # fmt: skip
    session.add(operator)
    session.flush()
    return operator


def set_password(session: Session, email: str, password: str, now: datetime) -> Operator:
    """A new password; every session signed in with the old one ends (see `generation`)."""
    operator = find(session, email)
    if operator is None:
        raise InvalidInput(f"{email} is not an operator: `drip admin add` makes one")
    operator.password_hash = HASHER.hash(check_password(password))
    operator.password_changed_at = now
    return operator


def verify(session: Session, email: str, password: str) -> Operator | None:
    """The operator whose address and password these are, or None (in about the same time)."""
    if len(password) > MAX_PASSWORD or len(email) > 320:
        return None
    operator = find(session, email)
    try:
        HASHER.verify(operator.password_hash if operator else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    return operator


def generation(operator: Operator) -> str:
    """A short digest of the password hash, carried by a session: a new password ends them."""
    return hashlib.sha256(operator.password_hash.encode()).hexdigest()[:16]


def record(
    session: Session, operator: str, action: str, now: datetime, *,
    subscription_id: int | None = None, detail: str = "",
) -> None:  # fmt: skip
    """One line of the audit log, in the caller's transaction, and the same as a log line."""
    detail = " ".join(detail.split())[:500]
    session.add(OperatorAction(operator=operator[:320], action=action[:40], at=now,
                               subscription_id=subscription_id, detail=detail))  # fmt: skip
    log.info("operator %s: %s%s%s", operator, action,
             f" subscription {subscription_id}" if subscription_id else "",
             f" ({detail})" if detail else "",
             extra={"event": "admin", "operator": operator, "action": action,
                    "subscription_id": subscription_id})  # fmt: skip


def recent(
    session: Session, subscription_id: int | None = None, limit: int = 50
) -> list[OperatorAction]:
    """The latest actions, of one subscription or all."""
    query = select(OperatorAction).order_by(OperatorAction.at.desc(), OperatorAction.id.desc())
    if subscription_id is not None:
        query = query.where(OperatorAction.subscription_id == subscription_id)
    return list(session.scalars(query.limit(limit)))
