"""Sliding-window limits for the signup form, so it cannot be used to flood an inbox.

Kept in the process: `drip run` and `drip serve` are one process each, and a limit per process
is still a limit per client. Behind a proxy, the client address is the proxy's unless uvicorn
is told to trust forwarded headers (--forwarded-allow-ips).
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta


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
