"""Between the claim and the send: which relay a batch goes through, and the tokens it takes
from the budgets every worker on every machine shares (budgets.py).

1. Domains: claims to a domain with a budget (DRIP_DOMAIN_RATES) take that domain's tokens;
   the ones not granted are released, still due in their order, for a later batch.
2. Relay: the next one by weight among those not resting (smooth weighted round robin). The
   batch takes that relay's tokens, one UPDATE for the whole batch while the bucket holds
   enough, and waits for the rest (at most one burst is claimed at a time, so the wait is
   short). A relay at its day's allowance (daily cap or warm-up plan, paced over the day)
   grants what is left and the rest of the batch is released: it waits for a later pass, in
   due order, never skipped. While a relay is capped so, claims are taken round robin across
   time zones (scheduler/fair.py).
3. After the send: a relay that refused the connection or answered 4xx to most of the batch
   rests (DRIP_RELAY_REST_SECONDS, doubled with each rest in a row, at most an hour) and its
   share moves to the others. A batch belongs to one relay: no lesson goes through two.
"""

from __future__ import annotations

import logging
import math
import time
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
BURST_SECONDS = 0.2  # a bucket holds this many seconds of its rate (at least one message)
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
        """Claim at most one burst of the slowest relay: more would only wait, leased."""
        rates = [r.rate for r in self.routes if r.rate]
        burst = min((max(1.0, rate * BURST_SECONDS) for rate in rates), default=batch_size)
        return max(1, min(batch_size, int(burst)))

    def admit(self, claims: list[Claim]) -> tuple[Route | None, list[Claim]]:
        """The relay for this batch and the claims it may send now (the others are to be
        released); no relay when every one rests or has used its allowance."""
        if not self.budgeted:
            return self.routes[0], claims
        kept = self._domains(claims)
        if not kept:  # all wait for their domains' buckets: released, and the pass goes on
            return self.routes[0], []
        for route in self._by_weight():
            granted = self._relay_tokens(route, len(kept))
            if granted:
                return route, kept[:granted]
        return None, []

    def _run(self, step: Callable[[Session], budgets.Grant]) -> budgets.Grant:
        """A take in a transaction of its own (budgets.takes)."""
        with budgets.takes(self.engine) as session:
            return step(session)

    def _domains(self, claims: list[Claim]) -> list[Claim]:
        by_domain: dict[str, list[Claim]] = {}
        for claim in claims:
            by_domain.setdefault(claim.recipient.email.rpartition("@")[2].casefold(),
                                 []).append(claim)  # fmt: skip
        kept = [c for d, group in by_domain.items() if d not in self.domain_rates for c in group]
        for domain, group in by_domain.items():
            if domain in self.domain_rates:
                kept += group[: self._domain_tokens(domain, len(group))]
        if not kept:  # every claim waits for its domain: give the buckets time to refill
            self.sleep(min(1.0, 1 / min(self.domain_rates.values())))
        order = {id(c): n for n, c in enumerate(claims)}
        return sorted(kept, key=lambda c: order[id(c)])

    def _domain_tokens(self, domain: str, want: int) -> int:
        """Tokens of the domain's bucket, waiting a little (up to three takes) rather than
        releasing claims another worker would claim again at once."""
        rate = self.domain_rates[domain]
        bucket = budgets.Bucket(f"domain:{domain}", rate, max(1.0, rate * BURST_SECONDS))
        have = 0
        for attempt in range(3):
            grant = self._run(lambda s: budgets.take(s, bucket, want - have, self.clock()))  # noqa: B023
            have += grant.granted
            if have == want or attempt == 2:
                break
            self.sleep(max(0.002, min(BURST_SECONDS / 2, (want - have - grant.tokens) / rate)))
        return have

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

    def _relay_tokens(self, route: Route, want: int) -> int:
        """Tokens for `want` messages from the relay's bucket, waiting for them while the
        relay is neither resting nor at its allowance; how many were granted."""
        have = 0
        while have < want:
            grant = self._run(lambda s: self._take(s, route, want - have))  # noqa: B023
            have += grant.granted
            if grant.rested_until > self.clock():
                route.resting_until = grant.rested_until
                return have
            if have < want and grant.granted == 0 and grant.tokens >= 1:
                log.info("relay %s has used its allowance for now; lessons wait", route.relay)
                return have
            if have < want:  # look again halfway: a full bucket would waste its refill
                need = min(want - have, route.bucket.burst) - grant.tokens
                self.sleep(max(0.002, need / route.bucket.rate / 2))
        return have

    def _take(self, session: Session, route: Route, want: int) -> budgets.Grant:
        at = self.clock()
        if (route.daily or route.warmup) and route.first_day is None:
            route.first_day = budgets.ensure(session, route.bucket, at)
        start = self.warmup_start
        first = (start - date(1970, 1, 1)).days if start else (route.first_day or 0)
        return budgets.take(session, route.bucket, want, at,
                            allowance=allowance(route, at, first))  # fmt: skip

    def give_back(self, route: Route, count: int) -> None:
        """Tokens of claims that went unsent (stopped before the send) return to the bucket."""
        if count and self.budgeted:
            with Session(writer(self.engine)) as session, session.begin():
                budgets.give_back(session, route.key, count)

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
