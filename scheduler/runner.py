"""The long-running clock: APScheduler calls one dispatch pass every few seconds.

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

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .dispatch import Dispatcher

log = logging.getLogger("drip.runner")
Clock = Callable[[], datetime]
Observe = Callable[[float], None]


def guarded_pass(dispatcher: Dispatcher, clock: Clock, observe: Observe) -> None:
    """One pass; an error (the database or relay gone) is logged and the next tick tries again.
    Claims it held stay leased until their deadline, then any worker takes them over."""
    started = time.perf_counter()
    try:
        dispatcher.run_pass(clock())
    except Exception:
        log.exception("dispatch pass failed; trying again at the next tick")
    finally:
        observe(time.perf_counter() - started)


def start_scheduler(
    dispatcher: Dispatcher, interval_seconds: float, clock: Clock, observe: Observe
) -> BackgroundScheduler:
    """A started APScheduler running a dispatch pass at once and then every `interval_seconds`
    (coalesced, never two at a time). `clock` gives each pass its `now`."""
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        guarded_pass,
        IntervalTrigger(seconds=interval_seconds),
        args=(dispatcher, clock, observe),
        id="dispatch",
        name="dispatch pass",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(
            UTC
        ),  # APScheduler's timing is real time; `clock` is each pass's
    )
    scheduler.start()
    log.info("scheduler running: a dispatch pass every %gs", interval_seconds)
    return scheduler


def run_forever(
    dispatcher: Dispatcher,
    interval_seconds: float,
    *,
    stop: threading.Event | None = None,
    clock: Clock,
    observe: Observe,
) -> None:
    """Run dispatch passes until SIGINT/SIGTERM (or `stop` is set); a pass under way is
    finished before returning."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    scheduler = start_scheduler(dispatcher, interval_seconds, clock, observe)
    stop.wait()
    log.info("stopping: finishing the pass under way")
    scheduler.shutdown(wait=True)
