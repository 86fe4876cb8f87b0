"""The API's handlers: each reads its checked fields, does one thing in one transaction, and
answers JSON (app.py checks the key first and turns errors into the one error shape)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ... import lookup, privacy, stats, subscriptions, suppressions
from ...errors import InvalidInput
from ...models import LIVE_STATES, Subscriber, Subscription, SubscriptionState
from ...runtime import Runtime
from .fields import (
    ApiError,
    after_cursor,
    check_encodable,
    course_json,
    cursor_of,
    fields_of,
    invalid,
    query_limit,
    query_state,
    send_time,
    subscription_id,
    subscription_json,
)

ENROLL = {"email": str, "course": str, "name": str, "timezone": str, "confirmed": bool,
          "consent_ip": str, "consent_user_agent": str, "consent_wording": str}  # fmt: skip
UPDATE = {"name": str, "timezone": str, "send_time": str}
ADDRESS = {"email": str}
# What each action's route ends in, when it has nothing to do.
TARGETS = {"pause": SubscriptionState.PAUSED, "resume": SubscriptionState.ACTIVE,
           "unsubscribe": SubscriptionState.UNSUBSCRIBED}  # fmt: skip


def required(data: dict[str, Any], *names: str) -> None:
    for name in names:
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise invalid(f"{name} is required")


def email_key(email: str | None) -> str | None:
    """The address filter of a listing: a query problem (400), like the others."""
    if email is None:
        return None
    try:
        return Subscriber.key_for(subscriptions.normalize_email(check_encodable(email, "email")))
    except (InvalidInput, ApiError) as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


class Routes:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def courses(self, request: Request, data: dict[str, Any]) -> Response:
        found = sorted(self.rt.courses.values(), key=lambda c: c.slug)
        return JSONResponse({"data": [course_json(c) for c in found]})

    def stats(self, request: Request, data: dict[str, Any]) -> Response:
        course = self._course_filter(request)
        with self.rt.sessions() as session:
            figures = stats.collect(session, self.rt.clock(), course)
        return JSONResponse({"course": course, "by_state": figures.by_state,
                             "due_now": figures.due_now, "due_next_hour": figures.due_next_hour,
                             "due_next_day": figures.due_next_day})  # fmt: skip

    def _course_filter(self, request: Request) -> str | None:
        course = request.query_params.get("course")
        if course is not None and course not in self.rt.courses:
            raise ApiError(400, "bad_request", f"unknown course {course[:60]!r}")
        return course

    def listing(self, request: Request, data: dict[str, Any]) -> Response:
        query = request.query_params
        limit, after = query_limit(query.get("limit")), after_cursor(query.get("cursor"))
        course, state = self._course_filter(request), query_state(query.get("state"))
        key = email_key(query.get("email"))
        with self.rt.sessions() as session:
            found = lookup.page(session, after=after, limit=limit + 1, course=course,
                                state=state, email_key=key)  # fmt: skip
            shown = [subscription_json(sub) for sub in found[:limit]]
        more = cursor_of(shown[-1]["id"]) if len(found) > limit else None
        return JSONResponse({"data": shown, "next_cursor": more})

    def one(self, request: Request, data: dict[str, Any]) -> Response:
        with self.rt.sessions() as session:
            return JSONResponse(subscription_json(self._find(session, request)))

    def _find(self, session: Session, request: Request) -> Subscription:
        found = lookup.one(session, subscription_id(request.path_params["id"]))
        if found is None:
            raise ApiError(404, "not_found", "no such subscription")
        return found

    def enroll(self, request: Request, data: dict[str, Any]) -> Response:
        """A new subscription (201), or the live one the address already has (200); pending
        (a confirmation email goes out) unless `confirmed`, for a signup made elsewhere."""
        fields = fields_of(data, ENROLL)
        required(fields, "email", "course")
        course = self.rt.course(fields["course"])
        now = self.rt.clock()
        with self.rt.write_sessions() as session, session.begin():
            address = subscriptions.normalize_email(check_encodable(fields["email"], "email"))
            if suppressions.is_suppressed(session, address):
                raise ApiError(409, "suppressed", f"{address} is on the suppression list")
            known = subscriptions.find_live(session, address, course.slug)
            sub = subscriptions.subscribe(
                session, course, address, now=now, name=check_encodable(fields.get("name", ""),
                "name"), timezone=fields.get("timezone") or None,
                confirmed=bool(fields.get("confirmed")), then=subscriptions.Event.REQUEST,
            )  # fmt: skip
            if sub.confirmed_at == now and sub.state is SubscriptionState.ACTIVE and not known:
                privacy.record_consent(session, sub, course, now, source="api",
                                       ip=fields.get("consent_ip", ""),
                                       user_agent=fields.get("consent_user_agent", ""),
                                       agreed=fields.get("consent_wording") or None)  # fmt: skip
            pending, answer = sub.state is SubscriptionState.PENDING, subscription_json(sub)
        if pending and not known:
            self.rt.wake()  # its confirmation email goes out now
        return JSONResponse(answer, status_code=200 if known else 201)

    def update(self, request: Request, data: dict[str, Any]) -> Response:
        fields = fields_of(data, UPDATE)
        with self.rt.write_sessions() as session, session.begin():
            sub = self._find(session, request)
            if sub.state not in LIVE_STATES:
                raise ApiError(409, "conflict", f"the subscription has ended ({sub.state})")
            if "name" in fields:
                name = check_encodable(fields["name"], "name")
                sub.subscriber.name = subscriptions.check_name(name)
            if "timezone" in fields or "send_time" in fields:
                course = self.rt.course(sub.course_slug)
                when = send_time(fields["send_time"]) if "send_time" in fields else None
                subscriptions.reschedule(sub, course, fields.get("timezone", sub.timezone),
                                         when or sub.send_time or course.send_time,
                                         self.rt.clock())  # fmt: skip
            return JSONResponse(subscription_json(sub))

    def action(self, name: str) -> Any:
        """Pause, resume or unsubscribe: 200 once the subscription is in that state (also when
        it already was), 409 when its state does not allow it."""

        def act(request: Request, data: dict[str, Any]) -> Response:
            fields_of(data, {})
            with self.rt.write_sessions() as session, session.begin():
                sub = self._find(session, request)
                course = self.rt.courses.get(sub.course_slug)
                subscriptions.apply(sub, name, course, self.rt.clock())
                if sub.state is not TARGETS[name]:
                    raise ApiError(409, "conflict", f"a subscription {sub.state} cannot {name}")
                return JSONResponse(subscription_json(sub))

        return act

    def export(self, request: Request, data: dict[str, Any]) -> Response:
        fields = fields_of(data, ADDRESS)
        required(fields, "email")
        with self.rt.sessions() as session:
            found = privacy.export(session, check_encodable(fields["email"], "email"))
        if found is None:
            raise ApiError(404, "not_found", "no subscriber has that address")
        return JSONResponse(found)

    def erase(self, request: Request, data: dict[str, Any]) -> Response:
        fields = fields_of(data, ADDRESS)
        required(fields, "email")
        with self.rt.write_sessions() as session, session.begin():
            done = privacy.erase(session, check_encodable(fields["email"], "email"),
                                 self.rt.clock(), self.rt.courses)  # fmt: skip
        if done is None:
            raise ApiError(404, "not_found", "no subscriber has that address")
        return JSONResponse({"erased": True, "subscriber_id": done.subscriber_id,
                             "ended": done.ended, "kept": done.kept})  # fmt: skip
