"""The console's POSTs: sign-in and sign-out, a subscription's pause, resume, unsubscribe,
move to lesson N and resend of a lesson, and the retry of a deferred or failed delivery.

Each checks the session and the form's CSRF token first (403, nothing changed, otherwise),
changes the subscription through subscriptions.apply (the one place that decides a state), and
writes a line of the audit log naming the operator in the same transaction. A subscription
being sent at this moment (leased by a worker) is not moved or retried under it: 409."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ... import operators, subscriptions
from ...models import Delivery, DeliveryState, Subscription, SubscriptionState
from ...runtime import Runtime
from ...subscriptions import Event
from ..body import read_fields
from .auth import Auth, Refused, safe_next
from .pages import Pages, _id

EVENTS = {"pause": Event.PAUSE, "resume": Event.RESUME, "unsubscribe": Event.UNSUBSCRIBE,
          "move": Event.MOVE, "resend": Event.RESEND}  # fmt: skip
UNDER_WAY = {Event.MOVE, Event.RESEND, Event.RETRY_NOW, Event.RETRY}


class Actions:
    def __init__(self, runtime: Runtime, auth: Auth, pages: Pages) -> None:
        self.rt, self.auth, self.pages = runtime, auth, pages

    def login_form(self, request: Request) -> Response:
        """The sign-in form, with a CSRF token of a session that names no one yet (someone
        already signed in goes on to the console instead, still signed in)."""
        now = self.rt.clock()
        with self.rt.sessions() as db:
            if self.auth.operator(db, self.auth.session(request, now)) is not None:
                return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        session = self.auth.signer.new(now)
        page = self.pages.render(request, "login.html", csrf=session.csrf, error="",
                                 next=safe_next(request.query_params.get("next")))  # fmt: skip
        return self.auth.with_cookie(page, session)

    async def login(self, request: Request) -> Response:
        fields = (await read_fields(request))[1]
        return await run_in_threadpool(self._login, request, fields)

    def _login(self, request: Request, fields: dict[str, str]) -> Response:
        now = self.rt.clock()
        session = self.auth.check_post(request, fields, now)
        email, password = fields.get("email", ""), fields.get("password", "")
        with self.rt.write_sessions() as db, db.begin():
            allowed = self.auth.allowed(db, request, email, now)
        if not allowed:
            return self._refused_sign_in(request, session.csrf, 429,
                                         "Too many attempts: try again in 15 minutes.")  # fmt: skip
        with self.rt.write_sessions() as db, db.begin():
            operator = self.auth.sign_in(db, email, password, now)
            generation = operators.generation(operator) if operator else ""
            operator_id = operator.id if operator else 0
        if not operator_id:
            return self._refused_sign_in(request, session.csrf, 401,
                                         "That address and password do not match.")  # fmt: skip
        signed_in = self.auth.signer.new(now, operator_id, generation)
        target = safe_next(fields.get("next"))
        return self.auth.with_cookie(RedirectResponse(target, status_code=303), signed_in)

    def _refused_sign_in(self, request: Request, csrf: str, status: int, error: str) -> Response:
        return self.pages.render(request, "login.html", status, csrf=csrf, error=error,
                                 next="/admin")  # fmt: skip

    async def logout(self, request: Request) -> Response:
        fields = (await read_fields(request))[1]
        return await run_in_threadpool(self._logout, request, fields)

    def _logout(self, request: Request, fields: dict[str, str]) -> Response:
        self.as_operator(request, fields, lambda db, who, now: ("sign-out", None))
        return self.auth.signed_out(RedirectResponse("/admin/login", status_code=303))

    async def subscription(self, request: Request) -> Response:
        sub_id = _id(request.path_params["id"])
        fields = (await read_fields(request))[1]
        event = EVENTS.get(fields.get("action", ""))
        if event is None:
            raise HTTPException(400, "Unknown action.")
        lesson = _lesson(fields.get("lesson", "")) if event in (Event.MOVE, Event.RESEND) else None

        def act(db: Session, who: str, now: datetime) -> tuple[str, int]:
            self._apply(_subscription(db, sub_id), event, who, now, lesson)
            return fields["action"], sub_id

        done, _ = await run_in_threadpool(self.as_operator, request, fields, act)
        return RedirectResponse(f"/admin/subscriptions/{sub_id}?done={done}", status_code=303)

    async def retry(self, request: Request) -> Response:
        delivery_id = _id(request.path_params["id"])
        fields = (await read_fields(request))[1]

        def act(db: Session, who: str, now: datetime) -> tuple[str, int]:
            delivery = db.get(Delivery, delivery_id)
            if delivery is None:
                raise HTTPException(404)
            sub = _subscription(db, delivery.subscription_id)
            self._apply(sub, _retry_event(delivery, sub), who, now, None)
            return "retry", sub.id

        _, sub_id = await run_in_threadpool(self.as_operator, request, fields, act)
        return RedirectResponse(f"/admin/subscriptions/{sub_id}?done=retry", status_code=303)

    def _apply(
        self, sub: Subscription, event: Event, who: str, now: datetime, lesson: int | None
    ) -> None:
        """One transition asked for by an operator, or a 409 saying why it does not apply."""
        if event in UNDER_WAY and sub.leased_until is not None and sub.leased_until > now:
            raise HTTPException(409, "This subscription is being sent right now: try again.")
        course = self.rt.courses.get(sub.course_slug)
        if course is None and event is not Event.UNSUBSCRIBE:
            raise HTTPException(409, f"The course {sub.course_slug!r} is not loaded.")
        if lesson is not None and course is not None and not 1 <= lesson <= course.total_days:
            raise HTTPException(400, f"The course has lessons 1 to {course.total_days}.")
        if not subscriptions.apply(sub, event, course, now, by=who, lesson=lesson):
            raise HTTPException(409, f"A {sub.state} subscription cannot {event} (now).")

    def as_operator(
        self, request: Request, fields: dict[str, str],
        act: Callable[[Session, str, datetime], tuple[str, int | None]],
    ) -> tuple[str, int | None]:  # fmt: skip
        """Run `act` for the signed-in operator whose form this is, in one transaction with
        its line of the audit log; the scheduler is woken for anything now due."""
        now = self.rt.clock()
        session = self.auth.check_post(request, fields, now)
        with self.rt.write_sessions() as db, db.begin():
            operator = self.auth.operator(db, session)
            if operator is None:
                raise Refused("Sign in again: this session has ended.")
            done, sub_id = act(db, operator.email, now)
            lesson = fields.get("lesson") if done in ("move", "resend") else None
            operators.record(db, operator.email, done, now, subscription_id=sub_id,
                             detail=f"lesson {lesson}" if lesson else "")  # fmt: skip
        self.rt.wake()
        return done, sub_id


def _subscription(db: Session, sub_id: int) -> Subscription:
    """The subscription, its row locked (PostgreSQL) until the action's transaction ends: a
    worker's claim of it either came first (and its lease shows) or waits for the change."""
    sub = db.get(Subscription, sub_id, with_for_update=True)
    if sub is None:
        raise HTTPException(404)
    return sub


def _retry_event(delivery: Delivery, sub: Subscription) -> Event:
    """RETRY_NOW for the deferred delivery a subscription is waiting on, RETRY for the failed
    lesson of a failed subscription; anything else has nothing to retry (409)."""
    waiting_on = 0 if sub.state is SubscriptionState.PENDING else sub.current_day + 1
    if delivery.day == waiting_on:
        if delivery.state is DeliveryState.DEFERRED:
            return Event.RETRY_NOW
        if delivery.state is DeliveryState.FAILED and sub.state is SubscriptionState.FAILED:
            return Event.RETRY
    raise HTTPException(409, "This delivery is not waiting to be retried.")


def _lesson(text: str) -> int:
    """A lesson number from a form: digits, or 400."""
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise HTTPException(400, "Give the lesson as a number.")
    return int(text)
