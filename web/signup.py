"""POST /subscribe: a signup from the form or a JSON client.

Checked on the event loop (in memory, no I/O), then written with the other signups that arrive
meanwhile (web/batches.py): the limits per client and per address (kept in the database, so
they hold across web processes) are taken for the whole batch just before it is written. The
answer is the same for every address, known, new or suppressed, so it tells no one who is
subscribed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import budgets, signups, subscriptions
from ..course import Course
from ..errors import InvalidInput, UnknownCourse
from ..runtime import Runtime
from ..signups import Signup
from .batches import Batcher
from .body import read_fields
from .throttle import Throttle

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


@dataclass
class Pending:
    """A signup waiting in a batch, and what the limits said of it once taken."""

    client: str
    signup: Signup
    checked: bool = False
    limited: str | None = None  # "form" or "email": the limit that refused it


class SignupForm:
    def __init__(
        self, runtime: Runtime, render: Callable[..., Response], client: Callable[[Request], str]
    ) -> None:
        self.rt, self.render, self.client = runtime, render, client
        hour = timedelta(hours=1)
        self.per_client = Throttle("signup-client:", runtime.settings.signup_limit_per_client, hour)
        self.per_address = Throttle("signup-address:", runtime.settings.signup_limit_per_address,
                                    hour)  # fmt: skip
        self.batches = Batcher(self._write, alone_on=(IntegrityError,))

    async def subscribe(self, request: Request) -> Response:
        """Checked on the event loop (no I/O), then written with the other signups that arrive
        meanwhile (web/batches.py), the limits taken for the batch; the answer is the same for
        every address."""
        wants_json, fields = await read_fields(request)
        errors, course, address = self._check(fields)
        if errors or course is None:
            return self.answer(request, wants_json, 422, errors=errors, values=fields)
        signup = Signup(course, address, fields.get("name", ""), fields.get("timezone") or None)
        limited = await self.batches.submit(Pending(self.client(request), signup))
        if limited is not None:
            return self.answer(request, wants_json, 429, errors={limited: "Too many requests."})
        return self.answer(request, wants_json, 200, course=course)

    def _write(self, batch: Sequence[Pending]) -> list[str | None]:
        """Each signup's limit that refused it ("form": its client's, "email": its address's),
        or None: written, its confirmation queued when one is due. The limits are taken first
        (budgets.takes: on PostgreSQL in statements of their own, so one client's busy bucket
        is never held locked while a batch is written); a batch written again (one by one,
        after a conflict) keeps what its limits said the first time."""
        now = self.rt.clock()
        with self.rt.write_sessions() as session, session.begin():
            self._take_limits([pending for pending in batch if not pending.checked], now, session)
            admitted = [pending.signup for pending in batch if pending.limited is None]
            due = signups.write(session, admitted, now)
        if any(due):
            self.rt.wake()
        return [pending.limited for pending in batch]

    def _take_limits(self, batch: Sequence[Pending], now: datetime, write: Session) -> None:
        """One statement per limit for the whole batch: its client's first, then its address's
        for those its client's let through."""
        if not batch:
            return
        with budgets.takes(self.rt.engine, beside=write) as session:
            by_client = self.per_client.allow_all(session, [p.client for p in batch], now)
            passed = [p for p, ok in zip(batch, by_client, strict=True) if ok]
            by_address = self.per_address.allow_all(
                session, [p.signup.address.casefold() for p in passed], now
            )
        for pending, ok in zip(batch, by_client, strict=True):
            pending.checked, pending.limited = True, None if ok else "form"
        for pending, ok in zip(passed, by_address, strict=True):
            pending.limited = None if ok else "email"

    def _check(self, fields: dict[str, str]) -> tuple[dict[str, str], Course | None, str]:
        errors: dict[str, str] = {}
        course = address = None
        try:
            course = self.rt.course(fields.get("course", ""))
        except UnknownCourse:
            errors["course"] = "Choose one of the courses on this page."
        try:
            address = subscriptions.normalize_email(fields.get("email", ""))
        except InvalidInput:
            errors["email"] = "That does not look like an email address."
        try:
            subscriptions.check_name(fields.get("name", ""))
        except InvalidInput as exc:
            errors["name"] = str(exc).capitalize() + "."
        if fields.get("timezone"):
            try:
                subscriptions.check_timezone(fields["timezone"])
            except InvalidInput:
                errors["timezone"] = "Choose a time zone from the list."
        return errors, course, address or ""

    def answer(self, request: Request, wants_json: bool, status: int, **context: Any) -> Response:
        errors = context.get("errors", {})
        if wants_json:
            body = {"errors": errors} if errors else {"status": "check your inbox"}
            return JSONResponse(body, status_code=status)
        if status == 200:
            return self.render(request, "check_inbox.html", course=context.get("course"))
        values = context.get("values", {})
        return self.render(request, "index.html", status, zones=ZONES, values=values, errors=errors)
