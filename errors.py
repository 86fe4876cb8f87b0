"""The errors drip shows to people: one base class, so the CLI can show any as a message."""

from pathlib import Path


class DripError(Exception):
    """A problem the user can fix; its message is shown as is, without a traceback."""


class ConfigError(DripError):
    """A DRIP_* setting or drip.toml value is malformed."""


class CourseError(DripError):
    """A course folder cannot be loaded; `problems` lists each one with file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UnknownCourse(DripError):
    """A course slug that no loaded course has."""


class InvalidInput(DripError):
    """An address, name, timezone or other value given by a person is not acceptable."""


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
