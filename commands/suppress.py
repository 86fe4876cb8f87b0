"""`drip suppress add|remove|list|import|export`: the addresses drip never sends to."""

from __future__ import annotations

import argparse
import sys

from .. import subscriptions, suppressions
from ..errors import InvalidInput
from ..models import SuppressionReason
from ..runtime import Runtime
from . import AddParser, add_now, now_of, out


def cmd_suppress(args: argparse.Namespace, rt: Runtime) -> int:
    return int(ACTIONS[args.action](args, rt))


def _add(args: argparse.Namespace, rt: Runtime) -> int:
    address = subscriptions.normalize_email(_one(args))
    with rt.sessions() as session, session.begin():
        added = suppressions.suppress(session, address, SuppressionReason(args.reason),
                                      args.detail or "", now_of(args, rt), rt.courses)  # fmt: skip
    out(f"{address}: suppressed" if added else f"{address}: already suppressed")
    return 0


def _remove(args: argparse.Namespace, rt: Runtime) -> int:
    address = _one(args)
    with rt.sessions() as session, session.begin():
        if not suppressions.remove(session, address):
            raise InvalidInput(f"{address} is not suppressed")
    out(f"{address}: no longer suppressed")
    return 0


def _list(args: argparse.Namespace, rt: Runtime) -> int:
    out("email\treason\tsince\tdetail")
    with rt.sessions() as session:
        for row in suppressions.listing(session):
            out(f"{row.email}\t{row.reason}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.detail}")
    return 0


def _import(args: argparse.Namespace, rt: Runtime) -> int:
    path = _one(args)
    now = now_of(args, rt)
    with (
        open(path, encoding="utf-8-sig", newline="") as file,
        rt.sessions() as session,
        session.begin(),
    ):
        added, problems = suppressions.import_rows(session, file, now, rt.courses, path)
    for problem in problems:
        print(problem, file=sys.stderr)
    out(f"suppressed {added} new, bad {len(problems)}")
    return 1 if problems else 0


def _export(args: argparse.Namespace, rt: Runtime) -> int:
    with rt.sessions() as session:
        suppressions.export_rows(session, sys.stdout)
    return 0


def _one(args: argparse.Namespace) -> str:
    if not args.value:
        raise InvalidInput(f"drip suppress {args.action} needs an argument")
    return str(args.value)


ACTIONS = {"add": _add, "remove": _remove, "list": _list, "import": _import, "export": _export}


def register(add: AddParser) -> None:
    p = add("suppress", "the addresses never sent to: add, remove, list, import, export",
            cmd_suppress)  # fmt: skip
    p.add_argument("action", choices=sorted(ACTIONS))
    p.add_argument("value", nargs="?", help="an address (add, remove) or a CSV file (import)")
    p.add_argument("--reason", choices=[r.value for r in SuppressionReason],
                   default=SuppressionReason.MANUAL.value)  # fmt: skip
    p.add_argument("--detail", help="a note kept with the entry")
    add_now(p)
