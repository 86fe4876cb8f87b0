"""`drip schedule EMAIL`: when a subscriber's next lessons arrive, in their zone and the
operator's, with their cadence, time of day and any pause applied."""

from __future__ import annotations

import argparse

from .. import subscriptions
from ..errors import InvalidInput
from ..models import Subscription
from ..runtime import Runtime
from ..scheduler.schedule import zone
from . import AddParser, out

SHOWN = 5  # lessons listed per subscription


def cmd_schedule(args: argparse.Namespace, rt: Runtime) -> int:
    if args.course:
        rt.course(args.course)
    operator = zone(subscriptions.check_timezone(args.tz))
    with rt.sessions() as session:
        found = subscriptions.find_live(session, args.email, args.course)
        if not found:
            raise InvalidInput(f"{args.email} has no live subscription" + (
                f" to {args.course}" if args.course else ""))  # fmt: skip
        for sub in found:
            course = rt.course(sub.course_slug)
            out(_heading(sub, course.send_time.strftime("%H:%M")))
            lessons = subscriptions.forecast(sub, course, SHOWN)
            for lesson, due in lessons:
                local, there = due.astimezone(zone(sub.timezone)), due.astimezone(operator)
                out(f"  lesson {lesson}: {local:%a %Y-%m-%d %H:%M} ({sub.timezone})"
                    f"  = {there:%a %Y-%m-%d %H:%M} ({args.tz})")  # fmt: skip
            if not lessons:
                out(f"  nothing is due while it is {sub.state}")
    return 0


def _heading(sub: Subscription, course_time: str) -> str:
    when = sub.send_time.strftime("%H:%M") if sub.send_time else f"{course_time} (the course's)"
    days = sub.cadence or "the course's days"
    paused = f", paused until {sub.snoozed_until:%Y-%m-%d %H:%M} UTC" if sub.snoozed_until else ""
    return (f"{sub.subscriber.email} in {sub.course_slug}: {sub.state}, {sub.current_day} "
            f"received; {when} {sub.timezone}, {days}{paused}")  # fmt: skip


def register(add: AddParser) -> None:
    p = add("schedule", "when a subscriber's next lessons arrive", cmd_schedule)
    p.add_argument("email")
    p.add_argument("--course")
    p.add_argument("--tz", default="UTC", help="the operator's time zone (default: UTC)")
