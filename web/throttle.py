"""Limits for the signup form, so it cannot be used to flood an inbox.

Kept in the database, so a limit holds across every web process and machine. Behind a proxy,
the client address is read from X-Forwarded-For only when the direct peer is one of
DRIP_TRUSTED_PROXIES; anyone else could reset their limit by sending a new address in that
header.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from .. import budgets


def trusted_proxies(setting: str) -> frozenset[str]:
    """The peers named in DRIP_TRUSTED_PROXIES (comma-separated addresses)."""
    return frozenset(part.strip() for part in setting.split(",") if part.strip())


def client_address(peer: str, forwarded_for: str, trusted: frozenset[str]) -> str:
    """The client a signup counts against: the direct peer, unless it is a trusted proxy; then
    the nearest address in X-Forwarded-For that is not itself a trusted proxy."""
    if peer not in trusted:
        return peer
    hops = [hop.strip()[:64] for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer


class Throttle:
    """At most `limit` events per key within `window`, counted in the database (a token bucket
    of `limit` refilled over the window, budgets.py), so every web process on every machine
    shares one limit. Every 1,000th event also forgets the buckets idle for a whole window."""

    def __init__(self, prefix: str, limit: int, window: timedelta) -> None:
        self.prefix, self.limit, self.window = prefix, limit, window.total_seconds()
        self.events = 0

    def allow(self, session: Session, key: str, now: datetime) -> bool:
        return self.allow_all(session, [key], now)[0]

    def allow_all(self, session: Session, keys: Sequence[str], now: datetime) -> list[bool]:
        """One event for each key, in one statement for them all (a batch of signups)."""
        before, self.events = self.events, self.events + len(keys)
        if before // 1000 != self.events // 1000:
            budgets.forget_full(session, self.prefix, self.window, now.timestamp())
        return budgets.allow(session, [self.prefix + key[:300] for key in keys], self.limit,
                             self.window, now.timestamp())  # fmt: skip
