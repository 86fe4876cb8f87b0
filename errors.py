"""The errors drip shows to people: one base class, so the CLI can show any as a message, each
with the exit status `drip` ends with; and the masking that keeps secrets out of every message."""

import re
from pathlib import Path

# The exit statuses of `drip` (README, "Commands"), one meaning each, for scripts and cron.
EXIT_OK = 0
EXIT_ERROR = 1  # something went wrong that is not the caller's input
EXIT_BAD_INPUT = 2  # an argument, an input file or a setting is not acceptable; nothing written
EXIT_NOTHING_SENT = 3  # `drip tick`: lessons were due but every attempt failed
EXIT_DATABASE = 4  # the database cannot be reached or refused to work
EXIT_BROKEN_PIPE = 141  # whoever read the output stopped reading (128 + SIGPIPE, as shells say)

# user:password@ in a URL's authority (the password ends at the last '@' before the path, as
# urllib reads it), and password=... in a query string or a connection string.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^/?#\s]*(@)")
_PASSWORD_PARAMETER = re.compile(r"(\bpassword=)[^&\s'\"]*", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """`text` with every URL password (SMTP, database) replaced by ***, for messages and logs."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\2", text))


class DripError(Exception):
    """A problem the user can fix; its message is shown as is, without a traceback."""

    exit_code = EXIT_ERROR


class ConfigError(DripError):
    """A DRIP_* setting or drip.toml value is malformed."""

    exit_code = EXIT_BAD_INPUT


class CourseError(DripError):
    """A course folder cannot be loaded; `problems` lists each one with file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UnknownCourse(DripError):
    """A course slug that no loaded course has."""

    exit_code = EXIT_BAD_INPUT


class InvalidInput(DripError):
    """An address, name, timezone or other value given by a person is not acceptable."""

    exit_code = EXIT_BAD_INPUT


class RenderError(DripError):
    """One message could not be built: a lesson template failed, or a value could not be
    encoded. It concerns that message only, so a batch sets it aside and goes on; the message
    is one line, 'file:line: reason' when the fault is in a course file."""

    def __init__(self, reason: str, source: Path | None = None, line: int | None = None) -> None:
        self.reason = " ".join(reason.split())
        self.source = source
        self.line = line
        where = f"{source}:{line or 1}: " if source is not None else ""
        super().__init__(where + self.reason)
