"""One dispatch pass at `now`: claim -> render -> start -> send -> record, a batch at a time.

1. Claim: in one write transaction, take up to `batch_size` subscriptions due at `now` whose
   lease is free (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: BEGIN IMMEDIATE), lease them until
   now + lease, and read the delivery each one's next lesson already has (a retry keeps its
   Message-ID).
2. Render each lesson email (the renderer does the per-lesson work once).
3. Start: in one write transaction, re-read which claimed subscriptions are still active (an
   unsubscribe takes effect at once), record a 'sending' delivery for those only, and release
   the others.
4. Send the started messages as one batch through the transport.
5. Record every result in one transaction and release the leases; what each result does to its
   subscription is decided by subscriptions.decide (sent -> advance or complete; temporary
   failure -> deferred, or failed once the backoff has used up the give-up time; permanent ->
   bounced). Steps 3 and 5 retry once on a lost database connection: what the relay accepted must
   be recorded, or the lease would expire and the lesson go out twice.
Between 1 and 3, the gate (scheduler/gate.py) picks the batch's relay and takes its tokens from
the budgets shared by every worker (after step 2, so building the messages does not delay a
batch past its tokens' time); claims over a budget are released, still due, and the batch
is sent at the time its tokens are refilled. After 5, a
course whose complaint or bounce rate passed its limits is held (breaker.py): held courses
are not claimed. Batches repeat until nothing is due, so memory follows the batch size, not the
subscriber count; while one batch is being sent, the next is claimed, rendered and started.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from .. import breaker
from ..bounces import verp_address
from ..course.model import Course
from ..emails import LessonRenderer, Links, Outgoing, domain_of, render_confirmation
from ..errors import RenderError
from ..models import writer
from ..send import SendResult, SendStatus, Transport
from ..suppressions import end_suppressed_due
from .gate import Gate, Route
from .queries import ALL_KINDS, Claim, claim_due, reconnecting, release, start_deliveries
from .record import PassResult, record_outcomes
from .reorder import reconcile
from .schedule import RetryPolicy

log = logging.getLogger("drip.dispatch")
__all__ = ["Claim", "Dispatcher", "PassResult", "RetryPolicy"]


@dataclass
class Batch:
    """Claims on their way: rendered, started, being sent, then recorded."""

    to_send: list[Claim]
    dropped: list[Claim]  # unsubscribed or paused between the claim and the send
    messages: list[Outgoing] = field(default_factory=list)
    unsendable: list[tuple[Claim, SendResult]] = field(default_factory=list)
    claimed_at: float = field(default_factory=time.monotonic)  # for the lease, in real time
    sending: Future[list[SendResult]] | None = None
    results: list[SendResult] = field(default_factory=list)
    route: Route | None = None  # the relay it goes through, and no other
    send_at: float = 0.0  # when its tokens are refilled, on the gate's clock


@dataclass
class Dispatcher:
    """Everything a pass needs, built once per process; `run_pass(now)` is the whole job."""

    engine: Engine
    courses: Mapping[str, Course]
    transport: Transport
    renderer: LessonRenderer
    links: Links
    kinds: frozenset[str] = ALL_KINDS  # lessons and/or confirmation emails
    batch_size: int = 200
    lease: timedelta = timedelta(minutes=5)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: Callable[[PassResult], None] | None = None  # told of each recorded batch
    sleep: Callable[[float], None] = time.sleep  # between attempts to reach the database
    # VERP: each message's envelope sender names its delivery, keyed by this secret, so what
    # comes back is matched to it (None: the envelope sender is the course's sender address).
    verp_secret: str | None = None
    bounce_domain: str | None = None  # the VERP addresses' domain; None: the course sender's
    reconciled: bool = False  # the courses' edits have been applied to the database
    gate: Gate | None = None  # relays and budgets; None: `transport` alone, unlimited
    limits: breaker.Limits | None = None  # the courses' circuit breaker; None: none
    weighed: dict[str, int] = field(default_factory=dict)  # sends per course since weighed
    # Set when the process is asked to stop: the pass ends after the batch under way (the rest
    # stays due for the next pass of any worker), so a deploy never waits for a whole backlog.
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.gate is None:
            self.gate = Gate(self.engine, [Route("default", self.transport)], sleep=self.sleep)

    def run_pass(self, now: datetime) -> PassResult:
        """Send every lesson due at `now`, batch after batch, until none is left (or the
        process is stopping).

        While one batch is on the wire (a thread that waits for the batch's time, then on the
        socket), the next is claimed, so the SMTP server is never idle waiting for the
        database. The next batch takes its tokens once the one on the wire is sent: a worker
        holds one reservation at a time, and its batch goes at the reserved time."""
        assert self.gate is not None
        self.gate.start(now)
        result = PassResult()
        in_flight: Batch | None = None
        if not self.reconciled and "lessons" in self.kinds:
            self.reconcile(now)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drip-send") as wire:
                while not self.stopping.is_set() and (claims := self.claim(now)):
                    if in_flight is not None:
                        result.add(self.record(in_flight, now))
                        in_flight = None
                    batch = self.admit(claims, now)
                    if batch is None:
                        break
                    if batch.route is None:
                        continue
                    batch.sending = wire.submit(self._send_on_time, batch)
                    in_flight = batch
        finally:
            if in_flight is not None:  # a claim failed meanwhile: what went out is still recorded
                result.add(self.record(in_flight, now))
            for each in self.gate.routes:  # an idle SMTP connection would time out meanwhile
                each.transport.close()
        return result

    def admit(self, claims: list[Claim], now: datetime) -> Batch | None:
        """The claims the budgets let through, built and started, with their relay and time;
        the others are released, still due. A batch without a route has nothing to send (its
        claims all wait for their domains); None when every relay rests or is at its
        allowance. Messages are built before the relay's tokens are taken, so the time from
        the take to the send is the start's one transaction."""
        assert self.gate is not None
        domains = self.gate.domains(claims)
        built = {c.subscription_id: self._build(c, now) for c in domains.claims}
        relay = self.gate.admit(domains.claims, after=domains.at)
        taken = {id(c) for c in relay.claims}
        self._release([c for c in claims if id(c) not in taken])
        if relay.route is None:
            log.warning("every relay rests or has used its allowance; %d claimed lessons wait "
                        "for a later pass", len(claims))  # fmt: skip
            return None
        if not relay.claims:
            return Batch(to_send=[], dropped=[])
        batch = self.prepare(relay.claims, now, built)
        batch.route, batch.send_at = relay.route, relay.at
        self.gate.give_back(relay.route, len(batch.dropped))
        return batch

    def reconcile(self, now: datetime) -> None:
        """Once per process: deliveries and subscribers of a course edited since they were
        sent move to the course as it is now (reorder.py)."""
        for course in self.courses.values():
            with Session(writer(self.engine)) as session, session.begin():
                reconcile(session, course, now)
        self.reconciled = True

    def _release(self, claims: list[Claim]) -> None:
        """Give back claims the budgets did not admit: still due, in their order."""
        if claims:
            with Session(writer(self.engine)) as session, session.begin():
                release(session, [c.subscription_id for c in claims])

    def deliver(self, claims: list[Claim], now: datetime) -> PassResult:
        """Render, send and record one claimed batch, in this thread."""
        batch = self.prepare(claims, now)
        batch.results = self._send(batch.messages, self.transport)
        return self.record(batch, now)

    def claim(self, now: datetime) -> list[Claim]:
        """Claim what is due of the courses not held, at most a batch (or one budget burst)."""
        assert self.gate is not None
        limit = self.gate.claim_limit(self.batch_size)
        with Session(writer(self.engine)) as session, session.begin():
            end_suppressed_due(session, now, dict(self.courses))
            held = breaker.held(session) if self.limits is not None else set()
            courses = {slug: c for slug, c in self.courses.items() if slug not in held}
            if not courses:
                return []
            return claim_due(session, now, limit, courses, self.lease, _message_id,
                             self.kinds, fair=self.gate.capped)  # fmt: skip

    def prepare(
        self, claims: list[Claim], now: datetime, built: dict[int, Outgoing | str] | None = None
    ) -> Batch:
        """Build each claimed message (unless `built` has it), then start the ones still live
        and release the rest. A message that cannot be built fails alone, with its reason; the
        batch goes on."""
        built = built if built is not None else {c.subscription_id: self._build(c, now)
                                                 for c in claims}  # fmt: skip
        live = reconnecting(lambda: self._start(claims, now))
        batch = Batch(to_send=[], dropped=[c for c in claims if c.subscription_id not in live])
        for claim in claims:
            message = built[claim.subscription_id]
            if claim.subscription_id not in live:
                continue
            if isinstance(message, Outgoing):
                batch.to_send.append(claim)
                batch.messages.append(message)
            else:
                batch.unsendable.append((claim, SendResult(SendStatus.UNSENDABLE, message)))
        return batch

    def _build(self, claim: Claim, now: datetime) -> Outgoing | str:
        """The claim's message, or why it cannot be built (logged with the subscription)."""
        try:
            return self._with_return_path(claim, self._render(claim, now))
        except RenderError as exc:  # the course's or this subscriber's: said in one line
            log.error("cannot build the message of subscription %d: %s", claim.subscription_id,
                      exc)  # fmt: skip
            return f"cannot build the message: {exc}"[:500]
        except Exception as exc:
            log.exception("cannot build the message of subscription %d", claim.subscription_id)
            return " ".join(f"cannot build the message: {type(exc).__name__}: {exc}".split())

    def _render(self, claim: Claim, now: datetime) -> Outgoing:
        if claim.is_confirmation:
            return render_confirmation(
                claim.course, claim.recipient.email, claim.recipient.name,
                self.links.confirm(claim.confirm_token), message_id=claim.message_id, now=now,
            )  # fmt: skip
        return self.renderer.render(
            claim.course, claim.day, claim.recipient, message_id=claim.message_id, now=now
        )

    def _with_return_path(self, claim: Claim, outgoing: Outgoing) -> Outgoing:
        """The message with its delivery's VERP envelope sender (MAIL FROM); From and
        Reply-To stay as the course sets them, and the receiving MTA adds Return-Path."""
        if self.verp_secret is None:
            return outgoing
        domain = self.bounce_domain or outgoing.sender.rpartition("@")[2]
        sender = verp_address(claim.subscription_id, claim.day, domain, self.verp_secret)
        return dataclasses.replace(outgoing, sender=sender)

    def _send_on_time(self, batch: Batch) -> list[SendResult]:
        """The batch sent slice by slice as its tokens are refilled (in the wire thread, which
        waits for them); what is left after a stall takes its tokens again (Gate.on_time)."""
        gate, route = self.gate, batch.route
        assert gate is not None and route is not None
        results: list[SendResult] = []
        at = batch.send_at
        while True:
            sent = len(results)
            at = gate.on_time(route, batch.to_send[sent:], at)
            size, when = gate.slices(route, len(batch.messages) - sent, at)[0]
            gate.wait_until(when)
            results += self._send(batch.messages[sent : sent + size], route.transport)
            if len(results) >= len(batch.messages):
                return results

    def _send(self, messages: list[Outgoing], transport: Transport) -> list[SendResult]:
        """The transport's results; an error of the transport itself fails the batch for now
        (retried), and leaves nothing in 'sending'."""
        try:
            return transport.send_messages(messages)
        except Exception as exc:
            log.exception("the transport failed on a batch of %d", len(messages))
            reason = " ".join(f"transport error: {type(exc).__name__}: {exc}".split())[:500]
            return [SendResult(SendStatus.TEMPORARY, reason) for _ in messages]

    def _start(self, claims: list[Claim], now: datetime) -> set[int]:
        with Session(writer(self.engine)) as session, session.begin():
            live = start_deliveries(session, claims, now)
            release(session, [c.subscription_id for c in claims if c.subscription_id not in live])
            return live

    def record(self, batch: Batch, now: datetime) -> PassResult:
        if batch.sending is not None:
            batch.results = batch.sending.result()
        outcomes = [*zip(batch.to_send, batch.results, strict=True), *batch.unsendable]

        def write() -> PassResult:
            with Session(writer(self.engine)) as session, session.begin():
                return record_outcomes(session, outcomes, now, self.retry)

        # What the relay accepted must be recorded before the lease ends, or it goes out twice.
        patience = batch.claimed_at + self.lease.total_seconds() * 0.8 - time.monotonic()
        outcome = reconnecting(write, patience=max(0.0, patience), sleep=self.sleep)
        outcome.skipped += len(batch.dropped)
        if batch.route is not None and self.gate is not None:
            self.gate.settle(batch.route, batch.results)
        self._weigh([claim for claim, _ in outcomes], now, bounced=outcome.bounced > 0)
        if self.progress is not None:
            self.progress(outcome)
        log.info(
            "batch: %d sent, %d deferred, %d bounced, %d skipped, %d failed",
            outcome.sent, outcome.deferred, outcome.bounced, outcome.skipped, outcome.failed,
        )  # fmt: skip
        return outcome

    def _weigh(self, sent: list[Claim], now: datetime, *, bounced: bool) -> None:
        """Weigh each course of the batch against its breaker's limits: after a bounce, and
        every tenth of its window of sends (complaints come in between)."""
        if self.limits is None:
            return
        for claim in sent:
            self.weighed[claim.course.slug] = self.weighed.get(claim.course.slug, 0) + 1
        due = [slug for slug in {c.course.slug for c in sent}
               if bounced or self.weighed[slug] >= max(1, self.limits.sends // 10)]  # fmt: skip
        limits = self.limits
        for slug in due:
            self.weighed[slug] = 0
            with Session(writer(self.engine)) as session, session.begin():
                breaker.trip(session, slug, limits, now)


def _message_id(course: Course, subscription_id: int, day: int) -> str:
    """Unique, and it tells an operator reading a mail log whose lesson this was."""
    domain = domain_of(course.sender_email)
    return f"<drip.{course.slug}.{subscription_id}.{day}.{secrets.token_hex(6)}@{domain}>"
