"""API keys: made at random, shown once, kept only as a SHA-256 digest, revocable.

A key is 256 random bits, so a fast hash is as safe as a slow one here: nothing can be guessed
from a digest, and a request costs one indexed lookup. A key's scope says what it may do
(models_api.ApiScope): read, or write (which includes read).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .errors import InvalidInput
from .models_api import ApiKey, ApiScope

KEY_PREFIX = "drip_"
MAX_KEY_LENGTH = 100


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create(session: Session, scope: str, name: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key of `scope`: its row, and the key itself (shown once, never stored)."""
    try:
        chosen = ApiScope(scope)
    except ValueError:
        raise InvalidInput(f"unknown scope {scope[:40]!r} (scopes: read, write)") from None
    if len(name) > 100 or any(not c.isprintable() for c in name):
        raise InvalidInput("the name must be printable and at most 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, scope=chosen, key_hash=digest(key), prefix=key[:12], created_at=now)
    session.add(row)
    session.flush()
    return row, key


def listing(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(session: Session, key_id: int, now: datetime) -> bool:
    """Revoke a key at once; False if no key has that id or it was revoked already."""
    result = session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )  # fmt: skip
    return bool(result.rowcount)  # type: ignore[attr-defined]


def authenticate(session: Session, presented: str) -> ApiKey | None:
    """The live key `presented` is, or None (unknown, malformed or revoked)."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_LENGTH:
        return None
    found = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest(presented)))
    return found if found is not None and found.revoked_at is None else None


def allows(key: ApiKey, scope: ApiScope) -> bool:
    """Whether `key` may act in `scope`: write includes read."""
    return key.scope is ApiScope.WRITE or scope is ApiScope.READ
