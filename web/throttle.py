"""Sliding-window limits for the signup form, so it cannot be used to flood an inbox.

Kept in the process: `drip run` and `drip serve` are one process each, and a limit per process
is still a limit per client. Behind a proxy, the client address is read from X-Forwarded-For
only when the direct peer is one of DRIP_TRUSTED_PROXIES; anyone else could reset their limit
by sending a new address in that header.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta


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
    """At most `limit` events per key within `window`; `allow` records the event if it fits."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit, self.window = limit, window
        self._events: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: datetime) -> bool:
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            if len(self._events) > 100_000:  # forget idle keys rather than grow without end
                self._events = {k: v for k, v in self._events.items() if v}
            return True
