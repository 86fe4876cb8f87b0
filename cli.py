"""The `drip` command: the parser and the one handler that turns an error into a one-line
message (secrets masked) and an exit status (errors.EXIT_*: 2 for bad input or a bad setting, 4
for a database that cannot be used, 1 for anything else). The commands themselves live in
commands/, one module per group."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import ArgumentError, DatabaseError, InterfaceError, OperationalError

from . import __version__
from .commands import Handler
from .commands import admin as admin_commands
from .commands import apikeys as apikey_commands
from .commands import bounces as bounce_commands
from .commands import course as course_commands
from .commands import dns as dns_commands
from .commands import hooks as hook_commands
from .commands import privacy as privacy_commands
from .commands import schedule as schedule_commands
from .commands import service as service_commands
from .commands import subscribers as subscriber_commands
from .commands import suppress as suppress_commands
from .config import Settings
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_DATABASE,
    EXIT_ERROR,
    CourseError,
    DripError,
    mask_secrets,
)
from .logs import setup_logging
from .runtime import Runtime

GROUPS = (
    course_commands, subscriber_commands, suppress_commands, service_commands, dns_commands,
    bounce_commands, schedule_commands, admin_commands, apikey_commands,
    hook_commands, privacy_commands,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drip", description="Email drip courses.")
    parser.add_argument("--version", action="version", version=f"drip {__version__}")
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
    """Run one command and return its exit status. A reader that stops reading (`drip
    subscribers | head -1`) ends the command quietly, as it would end `seq` or `cat`."""
    try:
        try:
            args = build_parser().parse_args(argv)
        finally:
            sys.stdout.flush()  # --help and --version write, then exit
        status = _run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load()
    except DripError as exc:
        return _refuse(str(exc), exc.exit_code)
    handler = setup_logging(args.verbose, settings.log_format)
    runtime: Runtime | None = None
    try:
        runtime = Runtime(settings)
        return int(args.handler(args, runtime))
    except CourseError as exc:
        print(mask_secrets("\n".join(exc.problems)), file=sys.stderr)
        return exc.exit_code
    except DripError as exc:
        return _refuse(str(exc), exc.exit_code)
    except (OperationalError, InterfaceError, DatabaseError) as exc:  # e.g. not a database file
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return _refuse(f"cannot use the database at {settings.database_url}: {reason}",
                       EXIT_DATABASE)  # fmt: skip
    except ArgumentError as exc:  # an unknown database dialect or driver in the URL
        return _refuse(f"setting database_url (DRIP_DATABASE_URL): {exc}", EXIT_BAD_INPUT)
    except BrokenPipeError:
        raise
    except OSError as exc:  # a file or folder that cannot be read or written
        return _refuse(str(exc), EXIT_ERROR)
    finally:
        if runtime is not None:
            runtime.close()
        logging.getLogger().removeHandler(handler)


def _refuse(message: str, status: int) -> int:
    print(f"drip: {mask_secrets(message)}", file=sys.stderr)
    return status


def _discard_stdout() -> None:
    """Python's advice for SIGPIPE (the signal module's documentation): point standard output at
    devnull, so the interpreter's last flush has nowhere to fail and prints nothing."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file: a test's capture
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
