"""`drip course diff PATH`: what deploying an edited course folder will do to the subscribers
of the course of the same slug, as the database has them (scheduler/reorder.py)."""

from __future__ import annotations

import argparse

from ..course import Course, load_course
from ..errors import CourseError
from ..runtime import Runtime
from ..scheduler.reorder import plan
from . import out


def cmd_course_diff(args: argparse.Namespace, rt: Runtime) -> int:
    try:
        new = load_course(args.path)
    except CourseError as exc:
        for problem in exc.problems:
            out(problem)
        return 1
    old = rt.course(new.slug)
    with rt.sessions() as session:
        found = plan(session, old, new)
    out(f"{new.slug}: {new.total_days} lessons (deployed: {old.total_days}); "
        f"{len(found.inserted)} inserted, {len(found.removed)} removed")  # fmt: skip
    for key, (get, never) in found.inserted.items():
        out(f"inserted {key} (day {new.position(key)}): {get} live subscriber(s) will get it, "
            f"{never} ended will never see it")  # fmt: skip
    for key in found.removed:
        out(f"removed {key}: nobody gets it any more; its deliveries stay as history")
    out(f"live subscribers whose next lesson changes: {found.moved}")
    for key, count in sorted(found.next_lessons.items(), key=lambda item: _day(new, item[0])):
        out(f"  next lesson {key}: {count}")
    for key, was, now in found.teasers:
        out(f"teaser at the end of {key} now announces {now} (was {was})")
    return 0


def _day(course: Course, key: str) -> int:
    """Where a lesson is in the course; the end for "(complete)"."""
    position = course.position(key)
    return position if position is not None else course.total_days + 1
