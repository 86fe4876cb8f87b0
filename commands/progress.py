"""Progress of a long command: a bar with the rate and time left at a terminal, log lines
otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import ProgressColumn

log = logging.getLogger("drip.cli")


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A step(n) callback: a progress bar at a terminal, a log line every 1,000 otherwise."""
    if not sys.stdout.isatty():
        yield _logging_steps(total, label)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (BarColumn(), MofNCompleteColumn(), _rate_column(), TimeRemainingColumn())
    with Progress(TextColumn("{task.description}"), *columns) as bar:
        task = bar.add_task(label, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def _logging_steps(total: int, label: str) -> Callable[[int], None]:
    done = [0]

    def step(n: int = 1) -> None:
        before, done[0] = done[0], done[0] + n
        if before // 1000 != done[0] // 1000:
            log.info("%s: %d of %d", label, done[0], total)

    return step


def _rate_column() -> ProgressColumn:
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed or 0:,.0f}/s")

    return Rate()
