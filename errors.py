"""The errors drip shows to people: one base class, so the CLI can show any as a message."""


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
