"""The long-running clock: APScheduler calls one dispatch pass every few seconds, and sooner
when woken (a confirmation email was just queued).

APScheduler only decides when this process looks; what is due, and who sends it, is decided by
the database, so any number of runners (and `drip tick` by hand) can share one database.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .dispatch import Dispatcher

log = logging.getLogger("drip.runner")
Clock = Callable[[], datetime]
Observe = Callable[[float, datetime | None], None]  # seconds, and when it ended if it succeeded


class Wakeable(Protocol):
    def wake(self) -> None: ...


class Waker:
    """Brings the next pass forward. A wake during a pass makes that pass run once more at its
    end, so nothing queued meanwhile waits for the next tick."""

    def __init__(self) -> None:
        self.job: Job | None = None
        self._lock = threading.Lock()
        self._running = False
        self._again = False

    def wake(self) -> None:
        with self._lock:
            if self._running:
                self._again = True
                return
        if self.job is not None:
            self.job.modify(next_run_time=datetime.now(UTC))

    def begin(self) -> None:
        with self._lock:
            self._running, self._again = True, False

    def end_or_again(self) -> bool:
        """True when a wake came during the pass: run another one at once."""
        with self._lock:
            again, self._again = self._again, False
            self._running = again
            return again


def guarded_pass(dispatcher: Dispatcher, clock: Clock, observe: Observe, waker: Waker) -> None:
    """Passes until no wake came during the last; an error (the database or relay gone) is
    logged and the next tick tries again. Claims it held stay leased until their deadline, then
    any worker takes them over."""
    waker.begin()
    while True:
        started, finished = time.perf_counter(), None
        try:
            dispatcher.run_pass(clock())
            finished = clock()
        except Exception:
            log.exception("dispatch pass failed; trying again at the next tick")
        finally:
            observe(time.perf_counter() - started, finished)
        if not waker.end_or_again():
            return


def start_scheduler(
    dispatcher: Dispatcher, interval_seconds: float, clock: Clock, observe: Observe,
    waker: Waker | None = None,
) -> BackgroundScheduler:  # fmt: skip
    """A started APScheduler running a dispatch pass at once and then every `interval_seconds`
    (coalesced, never two at a time). `clock` gives each pass its `now`; APScheduler's own
    timing is real time."""
    waker = waker or Waker()
    scheduler = BackgroundScheduler(timezone=UTC)
    waker.job = scheduler.add_job(
        guarded_pass,
        IntervalTrigger(seconds=interval_seconds),
        args=(dispatcher, clock, observe, waker),
        id="dispatch",
        name="dispatch pass",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    log.info("scheduler running: a dispatch pass every %gs", interval_seconds)
    return scheduler


def add_periodic(
    scheduler: BackgroundScheduler, name: str, job: Callable[[], object], interval_seconds: float
) -> None:
    """Another job beside the dispatch pass (the webhook deliveries), at once and then every
    `interval_seconds`, in a thread of its own: however long it takes, passes go on."""

    def guarded() -> None:
        try:
            job()
        except Exception:
            log.exception("%s failed; trying again at the next tick", name)

    scheduler.add_job(guarded, IntervalTrigger(seconds=interval_seconds), id=name, name=name,
                      coalesce=True, max_instances=1, misfire_grace_time=None,
                      next_run_time=datetime.now(UTC))  # fmt: skip


Periodic = tuple[str, Callable[[], object], float]  # name, job, interval in seconds


def run_forever(
    dispatcher: Dispatcher,
    interval_seconds: float,
    *,
    stop: threading.Event | None = None,
    clock: Clock,
    observe: Observe,
    also: tuple[Periodic, ...] = (),
) -> None:
    """Run dispatch passes (and the jobs `also` names) until SIGINT/SIGTERM (or `stop` is
    set); the batch under way is sent and recorded before returning, and the pass ends there
    (what is still due waits for the next worker's pass)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    scheduler = start_scheduler(dispatcher, interval_seconds, clock, observe)
    for name, job, seconds in also:
        add_periodic(scheduler, name, job, seconds)
    stop.wait()
    log.info("stopping: finishing the batch under way")
    dispatcher.stopping.set()
    scheduler.shutdown(wait=True)
