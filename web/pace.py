"""The pace pages: GET /pace/{token}/{action}/{lesson} shows one button and changes nothing
(mail scanners open every link); its POST acts once (pace.act) and wakes the scheduler, so a
lesson asked for now leaves within seconds where this process runs one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import pace
from ..course import Course
from ..emails.i18n import N_
from ..models import Subscription
from ..pace import Outcome
from ..runtime import Runtime
from ..scheduler.schedule import zone
from .body import read_fields

log = logging.getLogger("drip.web")
STATUS = {Outcome.DONE: 200, Outcome.MOVED_ON: 200, Outcome.BUSY: 409, Outcome.REFUSED: 409}
MAX_NUMBER = 6  # digits of a lesson or day count: more would overflow an INTEGER column


class BadRequest(Exception):
    """A parameter that is not a number in range: answered 422 with this message (its words
    marked for the catalogs, its `values` filled in after translation)."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message)
        self.values = values


class PacePages:
    def __init__(self, runtime: Runtime, render: Callable[..., Response],
                 find: Callable[..., Subscription]) -> None:  # fmt: skip
        self.rt, self.render, self.find = runtime, render, find

    async def page(self, request: Request) -> Response:
        """GET: the button; POST: the action."""
        fields = (await read_fields(request))[1] if request.method == "POST" else None
        return await run_in_threadpool(self._page, request, fields)

    def _page(self, request: Request, fields: dict[str, str] | None) -> Response:
        now = self.rt.clock()
        sessions = self.rt.sessions if fields is None else self.rt.write_sessions
        with sessions() as session, session.begin():
            sub = self.find(session, "manage_token", request)
            course = self.rt.course(sub.course_slug)
            try:
                action, lesson, target = _parameters(request, fields, course)
            except BadRequest as exc:
                return self._answer(request, 422, course, sub, title=N_("This link does not work"),
                                    message=str(exc), values=exc.values)  # fmt: skip
            context = {"action": action, "lesson": lesson, "target": target}
            if fields is None:
                return self._offer(request, session, course, sub, **context)
            outcome = pace.act(session, sub, course, action, lesson=lesson, target=target,
                               given_stamp=fields.get("at", ""), now=now)  # fmt: skip
            page = self._answer(request, STATUS[outcome], course, sub, outcome=outcome, **context)
        if outcome is Outcome.DONE:
            self.rt.wake()
        return page

    def _offer(self, request: Request, session: Any, course: Course, sub: Subscription,
               **context: Any) -> Response:  # fmt: skip
        """The one-button page, or what stands in the way of the action."""
        offered = self._blocked(session, course, sub, now=self.rt.clock(), **context)
        if offered is not None:
            return self._answer(request, 200 if offered is Outcome.MOVED_ON else 409, course,
                                sub, outcome=offered, **context)  # fmt: skip
        return self._answer(request, 200, course, sub, stamp=pace.stamp(sub), **context)

    def _blocked(self, session: Any, course: Course, sub: Subscription, *, now: datetime,
                 action: str, lesson: int, target: int) -> Outcome | None:  # fmt: skip
        if sub.current_day != lesson:
            return Outcome.MOVED_ON
        if not pace.applies(sub, course, action, target, now):
            return Outcome.REFUSED
        if action == "jump" and not pace.has_received(session, sub.id, target):
            return Outcome.REFUSED
        return None

    def _answer(self, request: Request, status: int, course: Course, sub: Subscription,
                **context: Any) -> Response:  # fmt: skip
        local = zone(sub.timezone)
        due = sub.next_due_at.astimezone(local) if sub.next_due_at else None
        return self.render(request, "pace.html", status, course=course, sub=sub, due=due,
                           snooze_days=pace.SNOOZE_DAYS, **context)  # fmt: skip


def _parameters(
    request: Request, fields: dict[str, str] | None, course: Course
) -> tuple[str, int, int]:
    """(action, lesson the link was made after, target: the lesson of a jump or the days of a
    snooze), from the path and the query (GET) or the form (POST)."""
    action = request.path_params["action"]
    if action not in pace.ACTIONS:
        raise BadRequest(N_("There is no such action."))
    lesson = _number(request.path_params["lesson"], "lesson")
    values = fields if fields is not None else dict(request.query_params)
    target = 0
    if action == "snooze":
        target = _number(values.get("days", ""), "days")
        if target not in pace.SNOOZE_DAYS:
            days = ", ".join(map(str, pace.SNOOZE_DAYS))
            raise BadRequest(N_("A pause lasts %(days)s days."), days=days)
    elif action == "jump":
        target = _number(values.get("to", ""), "to")
    if lesson > course.total_days or target > max(course.total_days, max(pace.SNOOZE_DAYS)):
        raise BadRequest(N_("This course has no such lesson."))
    return action, lesson, target


def _number(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_NUMBER):
        raise BadRequest(N_("The link's %(name)s is not a number."), name=name)
    return int(text)
