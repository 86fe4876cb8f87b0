"""The `drip` subcommands, one module per group. Each command is a thin call into the library;
each group module has `register(add)` to declare its arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime

from ..errors import InvalidInput
from ..runtime import Runtime

Handler = Callable[[argparse.Namespace, Runtime], int]
AddParser = Callable[[str, str, Handler], argparse.ArgumentParser]


def out(text: str) -> None:
    print(text, flush=True)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant; without an offset it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"--now {text!r} is not an ISO-8601 date and time") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_of(args: argparse.Namespace, rt: Runtime) -> datetime:
    """The instant a command acts at: --now when given, the runtime's clock otherwise."""
    given = getattr(args, "now", None)
    return parse_instant(given) if given else rt.clock()


def add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", help="act at this ISO-8601 instant (UTC if no offset)")
