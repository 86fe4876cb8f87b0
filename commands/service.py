"""Commands that run the service or report on it: tick, run, serve, stats."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .. import stats
from ..endpoints import parse_listen
from ..errors import EXIT_NOTHING_SENT, EXIT_OK, DripError, InvalidInput
from ..runtime import Runtime, settle_heap
from ..scheduler.dispatch import Dispatcher, PassResult
from ..scheduler.runner import Periodic, Waker, add_periodic, run_forever, start_scheduler
from . import AddParser, add_now, now_of, out
from .bounces import receiver
from .progress import progress

log = logging.getLogger("drip.cli")


def cmd_tick(args: argparse.Namespace, rt: Runtime) -> int:
    now = now_of(args, rt)
    # a progress bar for a person at a terminal; otherwise the log has a line per batch
    result = _tick_with_progress(rt, now) if _at_terminal() else rt.dispatcher.run_pass(now)
    out(f"{now.isoformat()}: sent {result.sent}, deferred {result.deferred}, "
        f"bounced {result.bounced}, failed {result.failed}")  # fmt: skip
    return tick_status(result)


def tick_status(result: PassResult) -> int:
    """EXIT_NOTHING_SENT when lessons were due and every attempt failed (the relay is down or
    refusing, for cron to alert on); EXIT_OK when something went out or nothing was due."""
    attempts_failed = result.deferred + result.failed + result.bounced
    went_out = result.sent + result.confirmations
    return EXIT_NOTHING_SENT if went_out == 0 and attempts_failed > 0 else EXIT_OK


def _at_terminal() -> bool:
    return sys.stdout.isatty()


def _tick_with_progress(rt: Runtime, now: datetime) -> PassResult:
    with rt.sessions() as session:
        due = stats.due_count(session, now)
    with progress(due, "sending") as step:
        rt.dispatcher.progress = lambda batch: step(batch.total)
        return rt.dispatcher.run_pass(now)


def cmd_run(args: argparse.Namespace, rt: Runtime) -> int:
    """The scheduler and the web pages in one process (the embedded default), and the
    returned-mail receiver when DRIP_BOUNCE_LISTEN is set."""
    rt.init_database()
    returned = receiver(rt) if rt.settings.bounce_listen else None
    if returned is not None:
        returned.start()
    try:
        _run(args, rt)
    finally:
        if returned is not None:
            returned.stop()
    return 0


def _run(args: argparse.Namespace, rt: Runtime) -> None:
    with metrics_server(rt):
        _run_service(args, rt)


@contextmanager
def metrics_server(rt: Runtime) -> Iterator[None]:
    """/metrics on DRIP_METRICS_LISTEN, in a thread, while the service runs (if it is set)."""
    if not rt.settings.metrics_listen:
        yield
        return
    host, port = parse_listen(rt.settings.metrics_listen)
    stop = rt.metrics.serve(host, port, rt.sessions, rt.clock)
    log.info("metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        stop()


def _run_service(args: argparse.Namespace, rt: Runtime) -> None:
    if args.no_web:
        settle_heap()
        run_forever(rt.dispatcher, rt.settings.tick_seconds, clock=rt.clock,
                    observe=rt.metrics.observe_pass, also=(webhook_job(rt),))  # fmt: skip
        return
    _serve_beside(args, rt, rt.dispatcher)


def webhook_job(rt: Runtime) -> Periodic:
    """The webhook delivery pass, run beside the dispatcher in `drip run` and `drip serve`."""
    return ("webhook deliveries", lambda: rt.webhooks.run_pass(rt.clock()),
            rt.settings.webhook_tick_seconds)  # fmt: skip


def cmd_serve(args: argparse.Namespace, rt: Runtime) -> int:
    """The web pages, and the confirmation emails their signups queue (lessons are sent by
    `drip run` or `drip run --no-web` elsewhere)."""
    with metrics_server(rt):
        _serve_beside(args, rt, rt.confirmations)
    return 0


def _serve_beside(args: argparse.Namespace, rt: Runtime, dispatcher: Dispatcher) -> None:
    """The web pages, with a scheduler for `dispatcher` that a signup wakes."""
    rt.waker = Waker()
    scheduler = start_scheduler(dispatcher, rt.settings.tick_seconds, rt.clock,
                                rt.metrics.observe_pass, rt.waker)  # fmt: skip
    add_periodic(scheduler, *webhook_job(rt))
    try:
        _serve(args, rt)
    finally:
        log.info("stopping: finishing the batch under way")
        dispatcher.stopping.set()
        scheduler.shutdown(wait=True)


def _serve(args: argparse.Namespace, rt: Runtime) -> None:
    import uvicorn

    from ..web import create_app

    host = args.host or rt.settings.web_host
    port = args.port or rt.settings.web_port
    # uvicorn stops on SIGINT/SIGTERM, then raises the signal again for the handler it found:
    # let that be a no-op, so the caller still finishes its work and exits 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    # X-Forwarded-For is read by the app, from DRIP_TRUSTED_PROXIES only (not uvicorn's default).
    app = create_app(rt)
    settle_heap()
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def cmd_stats(args: argparse.Namespace, rt: Runtime) -> int:
    if args.course:
        rt.course(args.course)
    now = now_of(args, rt)
    with rt.sessions() as session:
        figures = stats.collect(session, now, args.course)
    for warning in figures.warnings:
        print(f"drip: warning: {warning}", file=sys.stderr)
    if args.plot:
        try:
            out(f"plot written to {stats.plot(figures, args.plot)}")
        except ImportError:
            raise DripError("--plot needs matplotlib: pip install 'drip-courses[plot]'") from None
        except ValueError as exc:  # an image format matplotlib does not know, from the suffix
            raise InvalidInput(f"--plot {args.plot}: {exc}") from None
    if args.json:
        out(json.dumps(figures.as_dict(), indent=2))
    elif not args.plot:
        from rich.console import Console

        console = Console()
        for table in stats.tables(figures):
            console.print(table)
    return 0


def register(add: AddParser) -> None:
    p = add("stats", "subscribers by state, lessons sent, stuck lessons, the next wave", cmd_stats)
    p.add_argument("--course")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="draw sends per day (matplotlib)")
    p.add_argument("--now", help=argparse.SUPPRESS)
    add_now(add("tick", "run one dispatch pass", cmd_tick))
    for handler, help in ((cmd_run, "run the scheduler and the web pages"),
                          (cmd_serve, "run the web pages")):  # fmt: skip
        p = add(handler.__name__.removeprefix("cmd_"), help, handler)
        p.add_argument("--host", help="address to listen on (default: DRIP_WEB_HOST, 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (default: DRIP_WEB_PORT, 8000)")
        if handler is cmd_run:
            p.add_argument("--no-web", action="store_true", help="the scheduler alone")
