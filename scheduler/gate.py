"""Between the claim and the send: which relay a batch goes through, and the tokens it takes
from the budgets every worker on every machine shares (budgets.py).

1. Domains: claims to a domain with a budget (DRIP_DOMAIN_RATES) take that domain's tokens;
   the ones not granted are released, still due in their order, for a later batch.
2. Relay: the next one by weight among those not resting (smooth weighted round robin). The
   batch takes that relay's tokens in one UPDATE. A take reserves: the bucket may go up to
   AHEAD_SECONDS of its rate below empty, and the batch is sent when the refill covers its
   last token (Admission.at), not when it was taken. So the time a message reaches the relay
   follows the bucket, however long the batch took to build or its worker waited, and
   workers do not poll the bucket. A relay at its day's allowance (daily cap or warm-up plan,
   paced over the day) grants what is left and the rest of the batch is released: it waits
   for a later pass, in due order, never skipped. While a relay is capped so, claims are
   taken round robin across time zones (scheduler/fair.py).
3. After the send: a relay that refused the connection or answered 4xx to most of the batch
   rests (DRIP_RELAY_REST_SECONDS, doubled with each rest in a row, at most an hour) and its
   share moves to the others. A batch belongs to one relay: no lesson goes through two.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from .. import budgets
from ..models import writer
from ..models_budgets import Budget
from ..send import SendResult, SendStatus, Transport
from .queries import Claim

log = logging.getLogger("drip.dispatch")
# A bucket holds this many seconds of its rate (at least one message): after an idle time no
# 10-second window gets more than 1.01 x the rate.
BURST_SECONDS = 0.1
BATCH_SECONDS = 0.2  # a claim is at most this many seconds of the slowest relay's rate
AHEAD_SECONDS = 2.0  # how far ahead of the refill tokens may be reserved
PACE_SECONDS = 0.02  # a batch goes out in slices of this many seconds of its relay's rate
LONGEST_REST = 3600.0


@dataclass
class Route:
    """One relay as the dispatcher sees it: its transport and its budget."""

    relay: str  # host:port, or "outbox"
    transport: Transport
    weight: int = 1
    rate: float = 0.0  # messages/second for every worker together; 0: no limit
    daily: int | None = None
    warmup: tuple[int, ...] = ()
    current: int = 0  # smooth weighted round robin
    resting_until: float = 0.0
    first_day: int | None = None  # the day its warm-up plan started

    @property
    def key(self) -> str:
        return f"relay:{self.relay}"

    @property
    def bucket(self) -> budgets.Bucket:
        rate = self.rate or 1e9  # a daily cap or a rest alone still needs the row
        return budgets.Bucket(self.key, rate, max(1.0, rate * BURST_SECONDS))


def allowance(route: Route, at: float, start_day: int) -> int:
    """What the relay may have taken by `at` (seconds since the epoch) on that UTC day: its
    warm-up plan's figure for the day (the last one once the plan is over, or the daily cap),
    released hour by hour (a 24th at midnight, then a 24th more each hour), so the first time
    zone's morning wave cannot spend the day before the later zones' waves are due."""
    day = int(at // budgets.DAY) - start_day
    caps = [c for c in (route.daily,) if c] + ([route.warmup[min(day, len(route.warmup) - 1)]]
                                               if route.warmup else [])  # fmt: skip
    if not caps:
        return budgets.UNLIMITED
    cap = min(caps)
    hours = math.floor((at % budgets.DAY) / 3600) + 1
    return max(1, cap * hours // 24)


def domain_of(claim: Claim) -> str:
    return claim.recipient.email.rpartition("@")[2].casefold()


@dataclass
class Admission:
    """What a budget lets through: the relay (None: every one rests or is at its allowance),
    the claims it may send, and when, on the gate's clock (Gate.clock)."""

    route: Route | None
    claims: list[Claim]
    at: float


@dataclass
class Gate:
    engine: Engine
    routes: list[Route]
    domain_rates: dict[str, float] = field(default_factory=dict)
    warmup_start: date | None = None
    rest_seconds: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    base: tuple[float, float] = (0.0, 0.0)  # (the pass's now, monotonic then)

    def start(self, now: datetime) -> None:
        """Budgets count time from the pass's `now` on, so `--now` holds for them too."""
        self.base = (now.timestamp(), self.monotonic())

    def clock(self) -> float:
        return self.base[0] + self.monotonic() - self.base[1]

    @property
    def budgeted(self) -> bool:
        return (
            bool(self.domain_rates)
            or len(self.routes) > 1
            or any(r.rate or r.daily or r.warmup for r in self.routes)
        )

    @property
    def capped(self) -> bool:
        """A relay's daily cap or warm-up plan may hold lessons over to later hours: then the
        claim is fair across time zones (scheduler/fair.py), so no zone's wave starves."""
        return any(r.daily or r.warmup for r in self.routes)

    def claim_limit(self, batch_size: int) -> int:
        """Claim at most BATCH_SECONDS of the slowest relay: more would only wait, leased."""
        rates = [r.rate for r in self.routes if r.rate]
        most = min((max(1.0, rate * BATCH_SECONDS) for rate in rates), default=batch_size)
        return max(1, min(batch_size, int(most)))

    def domains(self, claims: list[Claim]) -> Admission:
        """The claims their domains' budgets admit, in their order (the others are to be
        released), and when the last of their tokens is refilled."""
        if not self.domain_rates:
            return Admission(self.routes[0], claims, 0.0)
        by_domain: dict[str, list[Claim]] = {}
        for claim in claims:
            by_domain.setdefault(domain_of(claim), []).append(claim)
        kept = [c for d, group in by_domain.items() if d not in self.domain_rates for c in group]
        at = 0.0
        for domain, group in by_domain.items():
            if domain in self.domain_rates:
                granted, ready = self._domain_tokens(domain, len(group))
                kept += group[:granted]
                at = max(at, ready) if granted else at
        if not kept:  # every claim waits for its domain: give the buckets time to refill
            self.sleep(min(1.0, 1 / min(self.domain_rates.values())))
        order = {id(c): n for n, c in enumerate(claims)}
        return Admission(self.routes[0], sorted(kept, key=lambda c: order[id(c)]), at)

    def admit(self, claims: list[Claim], after: float = 0.0) -> Admission:
        """The relay for these claims, the ones it may send (the others are to be released)
        and when: at the time its tokens are refilled, and not before `after` (the domains').
        No relay when every one rests or has used its allowance."""
        if not self.budgeted or not claims:
            return Admission(self.routes[0], claims, after)
        for route in self._by_weight():
            granted, at = self._relay_tokens(route, len(claims))
            if granted:
                return Admission(route, claims[:granted], max(at, after))
        return Admission(None, [], after)

    def slices(self, route: Route, count: int, at: float) -> list[tuple[int, float]]:
        """A batch of `count` reserved to go at `at`, in slices of PACE_SECONDS of the relay's
        rate: where each slice ends, and when its last token is refilled (the batch's last at
        `at`). So a batch reaches the relay at its rate, not in one burst."""
        rate = route.bucket.rate
        size = max(1, int(rate * PACE_SECONDS))
        ends = [*range(size, count, size), count]
        return [(end, at - (count - end) / rate) for end in ends]

    def wait_until(self, at: float) -> None:
        """Sleep until `at` on the gate's clock: the time a batch's tokens are refilled."""
        if at > self.clock():
            self.sleep(at - self.clock())

    def _run(self, step: Callable[[Session], budgets.Grant]) -> budgets.Grant:
        """A take in a transaction of its own (budgets.takes)."""
        with budgets.takes(self.engine) as session:
            return step(session)

    def _domain_tokens(self, domain: str, want: int) -> tuple[int, float]:
        """Tokens of the domain's bucket, reserved up to AHEAD_SECONDS ahead (the claims over
        that are released), and when the last is refilled."""
        rate = self.domain_rates[domain]
        bucket = budgets.Bucket(f"domain:{domain}", rate, max(1.0, rate * BURST_SECONDS))
        at = self.clock()
        ahead = rate * AHEAD_SECONDS
        grant = self._run(lambda s: budgets.take(s, bucket, want, at, ahead=ahead))
        return grant.granted, at + max(0.0, -grant.tokens) / rate

    def _by_weight(self) -> list[Route]:
        """Routes not resting, the next by smooth weighted round robin first."""
        ready = [r for r in self.routes if r.resting_until <= self.clock()]
        if not ready:
            return []
        total = sum(r.weight for r in ready)
        for route in ready:
            route.current += route.weight
        chosen = max(ready, key=lambda r: r.current)
        chosen.current -= total
        return [chosen] + [r for r in ready if r is not chosen]

    def _relay_tokens(self, route: Route, want: int) -> tuple[int, float]:
        """Tokens for `want` messages from the relay's bucket, waiting for room while more
        than AHEAD_SECONDS are reserved, unless the relay rests or is at its allowance; how
        many were granted, and when the last of them is refilled."""
        have, at, left, rate = 0, self.clock(), 0.0, route.bucket.rate
        while have < want:
            at = self.clock()
            grant = self._run(lambda s: self._take(s, route, want - have, at))  # noqa: B023
            have, left = have + grant.granted, grant.tokens
            if grant.rested_until > at:
                route.resting_until = grant.rested_until
                return have, at
            room = grant.tokens + self.ahead(route)
            if have < want and grant.granted == 0 and room >= 1:
                log.info("relay %s has used its allowance for now; lessons wait", route.relay)
                return have, at
            if have < want:  # AHEAD_SECONDS are reserved: wait until the refill makes room
                self.sleep(max(0.002, (want - have - room) / rate))
        return have, at + max(0.0, -left) / rate

    @staticmethod
    def ahead(route: Route) -> float:
        """How many tokens below empty the relay's bucket may go: reserved for batches that
        wait for their time; none for a relay without a rate (its bucket stands for a cap)."""
        return route.rate * AHEAD_SECONDS

    def _take(self, session: Session, route: Route, want: int, at: float) -> budgets.Grant:
        if (route.daily or route.warmup) and route.first_day is None:
            route.first_day = budgets.ensure(session, route.bucket, at)
        start = self.warmup_start
        first = (start - date(1970, 1, 1)).days if start else (route.first_day or 0)
        return budgets.take(session, route.bucket, want, at, ahead=self.ahead(route),
                            allowance=allowance(route, at, first))  # fmt: skip

    def give_back(self, route: Route, count: int, *, tokens: bool = True) -> None:
        """Tokens of claims that went unsent (stopped before the send) return to the bucket."""
        if count and self.budgeted:
            with Session(writer(self.engine)) as session, session.begin():
                budgets.give_back(session, route.key, count, tokens=tokens)

    def on_time(self, route: Route, claims: Sequence[Claim], at: float) -> float:
        """When the last of `claims` (what is left of a batch) is to go: at `at` as reserved,
        unless their first slice missed its time by more than a bucket holds (the worker or
        the relay stalled). Their tokens then stood for time that has passed, and sending now
        would give the relay what two windows allow in one; they take their tokens again
        (counted once in the day's allowance, whatever the relay's rests: they are started)
        and go when those are refilled."""
        late = self.clock() - self.slices(route, len(claims), at)[0][1]
        if late <= BURST_SECONDS or not (route.rate or self.domain_rates):
            return at  # on time, or no rate to keep (a relay's daily cap alone)
        log.info("%d messages missed their time by %.2f s; they take their tokens again",
                 len(claims), late)  # fmt: skip
        groups = Counter(domain_of(c) for c in claims if domain_of(c) in self.domain_rates)
        times = [self._reserve(f"domain:{d}", self.domain_rates[d], n) for d, n in groups.items()]
        if route.rate:
            times.append(self._reserve(route.key, route.bucket.rate, len(claims)))
            self.give_back(route, len(claims), tokens=False)
        return max(times, default=at)

    def _reserve(self, key: str, rate: float, want: int) -> float:
        """All `want` tokens of the bucket, waiting for room when AHEAD_SECONDS are reserved;
        when the last is refilled."""
        bucket = budgets.Bucket(key, rate, max(1.0, rate * BURST_SECONDS))
        have, at, left = 0, self.clock(), 0.0
        while have < want:
            at = self.clock()
            grant = self._run(lambda s: budgets.take(s, bucket, want - have, at,  # noqa: B023
                                                     ahead=rate * AHEAD_SECONDS))  # fmt: skip
            have, left = have + grant.granted, grant.tokens
            if have < want:
                self.sleep(max(0.002, (want - have - left - rate * AHEAD_SECONDS) / rate))
        return at + max(0.0, -left) / rate

    def settle(self, route: Route, results: Sequence[SendResult]) -> None:
        """Rest a relay that failed most of the batch; clear its rests once it takes one."""
        if not results or not self.budgeted:
            return
        failed = sum(r.status is SendStatus.TEMPORARY for r in results)
        with Session(writer(self.engine)) as session, session.begin():
            if failed * 2 <= len(results):
                budgets.recovered(session, route.key)
                return
            row = session.get(Budget, route.key)
            rests = row.failures if row is not None else 0
            pause = min(LONGEST_REST, self.rest_seconds * 2**rests)
            route.resting_until = self.clock() + pause
            budgets.rest(session, route.key, route.resting_until)
        log.warning("relay %s failed %d of %d messages (%s); resting it for %.0f s",
                    route.relay, failed, len(results), results[0].reply[:200], pause)  # fmt: skip
