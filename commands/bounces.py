"""`drip bounces serve|fetch`: take returned mail (bounces, complaints) in."""

from __future__ import annotations

import argparse
import signal
import threading

from ..endpoints import parse_imap_url, parse_listen
from ..errors import ConfigError
from ..receiver import Intake, ReturnedMailServer
from ..receiver.imap import fetch
from ..runtime import Runtime
from . import AddParser, add_now, now_of, out

DEFAULT_LISTEN = "127.0.0.1:2525"


def cmd_bounces(args: argparse.Namespace, rt: Runtime) -> int:
    if args.action == "fetch":
        return _fetch(args, rt)
    return _serve(args, rt)


def receiver(
    rt: Runtime, host: str | None = None, port: int | None = None, lmtp: bool = False
) -> ReturnedMailServer:
    """The returned-mail listener of `rt`'s settings (DRIP_BOUNCE_LISTEN, DRIP_BOUNCE_LMTP), or
    host, port and LMTP as told."""
    default_host, default_port = parse_listen(rt.settings.bounce_listen or DEFAULT_LISTEN)
    return ReturnedMailServer(Intake(rt), host or default_host, port or default_port,
                              rt.settings.bounce_max_bytes,
                              lmtp=lmtp or rt.settings.bounce_lmtp)  # fmt: skip


def _serve(args: argparse.Namespace, rt: Runtime) -> int:
    rt.write_sessions  # noqa: B018 -- refuse at once a database `drip init` has not set up
    server = receiver(rt, args.host, args.port, args.lmtp)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


def _fetch(args: argparse.Namespace, rt: Runtime) -> int:
    settings = rt.settings
    if not settings.bounce_imap_url:
        raise ConfigError("drip bounces fetch needs DRIP_BOUNCE_IMAP_URL "
                          "(imaps://user:password@host:993/INBOX)")  # fmt: skip
    now = now_of(args, rt)
    intake = Intake(rt, clock=lambda: now)
    result = fetch(intake, parse_imap_url(settings.bounce_imap_url), settings.bounce_imap_done,
                   settings.bounce_imap_unread)  # fmt: skip
    out(f"{result.done} message(s) processed ({result.reports} new report(s)), "
        f"{result.unread} moved to {settings.bounce_imap_unread} unread")  # fmt: skip
    return 0


def register(add: AddParser) -> None:
    p = add("bounces", "take returned mail in: serve (an SMTP listener) or fetch (IMAP)",
            cmd_bounces)  # fmt: skip
    p.add_argument("action", choices=["serve", "fetch"])
    p.add_argument("--host", help="serve: address to listen on (default: from "
                   f"DRIP_BOUNCE_LISTEN, else {DEFAULT_LISTEN})")  # fmt: skip
    p.add_argument("--port", type=int, help="serve: port to listen on")
    p.add_argument("--lmtp", action="store_true",
                   help="serve: speak LMTP (a reply per recipient) instead of SMTP "
                   "(default: from DRIP_BOUNCE_LMTP)")  # fmt: skip
    add_now(p)
