"""`drip admin add|passwd EMAIL`: the operators who may sign in to the console at /admin.

The password is read from standard input (its first line) when that is not a terminal, so a
script can pipe it in; at a terminal it is asked for twice, without echo. It never appears in
the arguments, where any user of the machine could read it."""

from __future__ import annotations

import argparse
import getpass
import sys

from .. import operators
from ..errors import InvalidInput
from ..runtime import Runtime
from . import AddParser, add_now, now_of, out


def cmd_admin(args: argparse.Namespace, rt: Runtime) -> int:
    now = now_of(args, rt)
    password = operators.check_password(read_password())
    with rt.sessions() as session, session.begin():
        if args.action == "add":
            operator = operators.add(session, args.email, password, now)
        else:
            operator = operators.set_password(session, args.email, password, now)
        operators.record(session, "cli", f"operator {args.action}", now, detail=operator.email)
        email = operator.email
    out(f"{email}: may sign in at /admin" if args.action == "add" else f"{email}: password set")
    return 0


def read_password() -> str:
    """The first line of standard input, or (at a terminal) a password typed twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("the two passwords differ")
    return first


def register(add: AddParser) -> None:
    p = add("admin", "operators of the console: add one, or set a password (read from stdin)",
            cmd_admin)  # fmt: skip
    p.add_argument("action", choices=["add", "passwd"])
    p.add_argument("email")
    add_now(p)
