"""`drip api-key create|list|revoke`: the keys of the HTTP API (/api/v1)."""

from __future__ import annotations

import argparse

from .. import apikeys
from ..errors import InvalidInput
from ..runtime import Runtime
from . import AddParser, add_now, now_of, out


def cmd_api_key(args: argparse.Namespace, rt: Runtime) -> int:
    if args.action == "create":
        with rt.write_sessions() as session, session.begin():
            row, key = apikeys.create(session, args.scope, args.name or "", now_of(args, rt))
            key_id = row.id
        out(f"key {key_id} ({args.scope}): {key}")
        out("keep the key now: only its digest is stored, and it is not shown again")
        return 0
    if args.action == "revoke":
        text = args.id or ""
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise InvalidInput(f"{text[:40]!r} is not a key id (see drip api-key list)")
        with rt.write_sessions() as session, session.begin():
            revoked = apikeys.revoke(session, int(text), now_of(args, rt))
        if not revoked:
            raise InvalidInput(f"no live API key {text}")
        out(f"key {text} revoked")
        return 0
    with rt.sessions() as session:
        out("id\tname\tscope\tkey starts\tcreated\trevoked")
        for k in apikeys.listing(session):
            revoked_at = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-"
            out(f"{k.id}\t{k.name}\t{k.scope}\t{k.prefix}\t{k.created_at:%Y-%m-%d %H:%M}\t"
                f"{revoked_at}")  # fmt: skip
    return 0


def register(add: AddParser) -> None:
    p = add("api-key", "keys of the HTTP API: create --scope read|write, list, revoke ID",
            cmd_api_key)  # fmt: skip
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("id", nargs="?", help="revoke: the key's id")
    p.add_argument("--scope", choices=["read", "write"], default="read")
    p.add_argument("--name", help="create: what the key is for")
    add_now(p)
