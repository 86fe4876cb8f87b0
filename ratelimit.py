"""A sending rate shared by every worker process of one machine: a token bucket kept in a small
file and updated under an exclusive fcntl lock.

A relay limits a sender, not a process, so the bucket is keyed by the relay (host:port) and lives
in the temporary folder; any number of `drip run` and `drip tick` processes draw from it. No
database is involved, so it works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_STATE = struct.Struct("<dd")  # tokens, wall-clock time of the last refill
_EPSILON = 1e-9  # float rounding must not leave a token at 0.99999... forever


class RateLimiter:
    """At most `rate` acquisitions per second across processes, with bursts up to `burst`."""

    def __init__(
        self,
        rate: float,
        path: Path,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate, self.path = rate, Path(path)
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock, self.sleep = clock, sleep

    @classmethod
    def for_relay(cls, rate: float, host: str, port: int) -> RateLimiter:
        """The machine-wide bucket of one relay."""
        key = hashlib.sha256(f"{host}:{port}".encode()).hexdigest()[:16]
        return cls(rate, Path(tempfile.gettempdir()) / f"drip-send-rate-{key}")

    def acquire(self) -> None:
        """Take one token, waiting (outside the lock) until one is there."""
        while (wait := self._try_take()) > 0:
            self.sleep(wait)

    def _try_take(self) -> float:
        """Take a token and return 0, or return how long until one is free. A fresh file
        descriptor each time, because flock is per open file and threads share descriptors."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, _STATE.size, 0)
            now = self.clock()
            tokens, last = _STATE.unpack(raw) if len(raw) == _STATE.size else (self.burst, now)
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1 - _EPSILON:
                os.pwrite(fd, _STATE.pack(max(0.0, tokens - 1), now), 0)
                return 0.0
            os.pwrite(fd, _STATE.pack(tokens, now), 0)
            return (1 - tokens) / self.rate
        finally:
            os.close(fd)  # closing releases the lock
