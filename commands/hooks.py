"""`drip webhooks add|list|remove|deliver|attempts`: where events are sent, and their outbox."""

from __future__ import annotations

import argparse

from ..errors import InvalidInput
from ..hooks import EVENT_TYPES, outbox
from ..runtime import Runtime
from . import AddParser, add_now, now_of, out


def cmd_webhooks(args: argparse.Namespace, rt: Runtime) -> int:
    return ACTIONS[args.action](args, rt)


def _add(args: argparse.Namespace, rt: Runtime) -> int:
    if not args.target:
        raise InvalidInput("drip webhooks add needs the endpoint's URL")
    events = (args.events or "").split(",")
    with rt.write_sessions() as session, session.begin():
        endpoint = outbox.add_endpoint(session, args.target, events, now_of(args, rt))
        shown = (endpoint.id, endpoint.url, endpoint.events, endpoint.secret)
    out(f"endpoint {shown[0]}: {shown[1]} ({shown[2]})")
    out(f"secret: {shown[3]}")
    out("keep the secret now: it signs every message and is not shown again")
    return 0


def _list(args: argparse.Namespace, rt: Runtime) -> int:
    with rt.sessions() as session:
        out("id\turl\tevents\tcreated")
        for e in outbox.endpoints(session):
            out(f"{e.id}\t{e.url}\t{e.events}\t{e.created_at:%Y-%m-%d %H:%M}")
    return 0


def _remove(args: argparse.Namespace, rt: Runtime) -> int:
    endpoint_id = endpoint_number(args.target)
    with rt.write_sessions() as session, session.begin():
        removed = outbox.remove_endpoint(session, endpoint_id)
    if not removed:
        raise InvalidInput(f"no webhook endpoint {endpoint_id}")
    out(f"endpoint {endpoint_id} removed, with its undelivered messages")
    return 0


def _deliver(args: argparse.Namespace, rt: Runtime) -> int:
    rt.sessions  # noqa: B018 -- refuse at once a database `drip init` has not set up
    result = rt.webhooks.run_pass(now_of(args, rt))
    out(f"webhooks: {result.delivered} delivered, {result.retried + result.held} to retry, "
        f"{result.failed} given up")  # fmt: skip
    return 0


def _attempts(args: argparse.Namespace, rt: Runtime) -> int:
    endpoint_id = endpoint_number(args.target) if args.target else None
    with rt.sessions() as session:
        found = outbox.recent_attempts(session, args.limit, endpoint_id)
    out("time\tendpoint\tevent\twebhook-id\tstatus\terror")
    for a in found:
        out(f"{a.attempted_at:%Y-%m-%d %H:%M:%S}\t{a.endpoint_id}\t{a.event_type}\t"
            f"{a.webhook_id}\t{a.status or '-'}\t{a.error}")  # fmt: skip
    return 0


def endpoint_number(text: str | None) -> int:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidInput(f"{(text or '')[:40]!r} is not an endpoint id (see drip webhooks list)")
    return int(text)


ACTIONS = {"add": _add, "list": _list, "remove": _remove, "deliver": _deliver,
           "attempts": _attempts}  # fmt: skip


def register(add: AddParser) -> None:
    for name in ("webhooks", "webhook"):
        p = add(name, "outgoing webhooks: add URL, list, remove ID, deliver, attempts [ID]"
                + ("" if name == "webhooks" else " (as drip webhooks)"), cmd_webhooks)  # fmt: skip
        p.add_argument("action", choices=list(ACTIONS))
        p.add_argument("target", nargs="?", metavar="URL|ID", help="add: the URL; remove: the id")
        p.add_argument("--events", help="add: comma-separated, of " + ", ".join(EVENT_TYPES)
                       + " (default: all)")  # fmt: skip
        p.add_argument("--limit", type=int, default=50, help="attempts: how many (newest first)")
        add_now(p)
