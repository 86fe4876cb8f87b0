"""The `drip` command: the parser and the one handler that turns DripError into a one-line
message and an exit code (2 for bad input, 1 for anything else). The commands themselves live in
commands/, one module per group."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .commands import Handler
from .commands import course as course_commands
from .commands import dns as dns_commands
from .commands import service as service_commands
from .commands import subscribers as subscriber_commands
from .config import Settings
from .errors import ConfigError, CourseError, DripError, InvalidInput, UnknownCourse
from .logs import setup_logging
from .runtime import Runtime

GROUPS = (course_commands, subscriber_commands, service_commands, dns_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drip", description="Email drip courses.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, description=help)
        parser.set_defaults(handler=handler)
        return parser

    for group in GROUPS:
        group.register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load()
    except ConfigError as exc:
        print(f"drip: {exc}", file=sys.stderr)
        return 2
    handler = setup_logging(args.verbose, settings.log_format)
    runtime: Runtime | None = None
    try:
        runtime = Runtime(settings)
        return int(args.handler(args, runtime))
    except (InvalidInput, UnknownCourse, ConfigError) as exc:
        print(f"drip: {exc}", file=sys.stderr)
        return 2
    except CourseError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    except DripError as exc:
        print(f"drip: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.close()
        logging.getLogger().removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
