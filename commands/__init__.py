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


EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant; without an offset it is taken as UTC. Bounded, so that the schedule
    math (a lesson days later) never runs off the end of the calendar."""
    try:
        value = datetime.fromisoformat(text)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"--now {text!r} is not an ISO-8601 date and time") from exc
    if not EARLIEST <= value < LATEST:
        raise InvalidInput(f"--now {text!r} is not between {EARLIEST:%Y} and {LATEST:%Y}")
    return value


def now_of(args: argparse.Namespace, rt: Runtime) -> datetime:
    """The instant a command acts at: --now when given, the runtime's clock otherwise."""
    given = getattr(args, "now", None)
    return parse_instant(given) if given else rt.clock()


def add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", help="act at this ISO-8601 instant (UTC if no offset)")
