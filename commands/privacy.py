"""`drip subscriber export|erase EMAIL`: a person's data, as JSON, or removed."""

from __future__ import annotations

import argparse
import json

from .. import privacy
from ..errors import InvalidInput
from ..runtime import Runtime
from . import AddParser, add_now, now_of, out


def cmd_subscriber(args: argparse.Namespace, rt: Runtime) -> int:
    if args.action == "export":
        with rt.sessions() as session:
            data = privacy.export(session, args.email)
        if data is None:
            raise InvalidInput(f"{args.email} is not a subscriber")
        out(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    if not args.now:
        raise InvalidInput("drip subscriber erase cannot be undone: give --now (e.g. --now "
                           "2026-11-26T09:00) to say when it happens")  # fmt: skip
    with rt.write_sessions() as session, session.begin():
        erased = privacy.erase(session, args.email, now_of(args, rt), rt.courses)
    if erased is None:
        raise InvalidInput(f"{args.email} is not a subscriber")
    out(f"subscriber {erased.subscriber_id} erased: {erased.ended} subscription(s) ended, "
        f"{erased.kept} kept without personal data")  # fmt: skip
    return 0


def register(add: AddParser) -> None:
    p = add("subscriber", "one person's data: export (JSON) or erase (--now)", cmd_subscriber)
    p.add_argument("action", choices=["export", "erase"])
    p.add_argument("email")
    add_now(p)
