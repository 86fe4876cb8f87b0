"""Starlette routes over the subscription lifecycle in subscriptions.py.

Every page is a Jinja2 template with autoescaping; tokens in the URL are the only credentials,
looked up through subscriptions.by_token (constant-time compare). A bad or expired token gets
the same friendly 404 page, whatever was wrong with it. Handlers that touch the database, the
file system or SMTP are plain functions, which Starlette runs in its thread pool: the event loop
only reads request bodies, so a slow relay or a busy database never holds up other requests.
Transactions that write take SQLite's write lock at BEGIN (`Runtime.write_sessions`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .. import pace, privacy, subscriptions
from ..config import Settings
from ..course import Course
from ..emails import Recipient
from ..emails.i18n import N_, html_gettext_for, when
from ..errors import InvalidInput, RenderError, UnknownCourse
from ..models import LIVE_STATES, Subscription, SubscriptionState
from ..runtime import Runtime, settle_heap
from ..scheduler.schedule import CADENCES, next_lesson_due, zone
from ..stats import database_answers
from . import admin, webhooks
from .api import create_api
from .api.app import error as api_error
from .body import BodyLimit, read_fields
from .headers import EMAIL_PAGE_POLICY, HEADERS, SecurityHeaders
from .pace import PacePages
from .signup import ZONES, SignupForm
from .throttle import client_address, trusted_proxies

log = logging.getLogger("drip.web")
HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg"}
STATES = (
    N_("pending"),
    N_("active"),
    N_("paused"),
    N_("completed"),
    N_("unsubscribed"),
    N_("bounced"),
    N_("failed"),
)  # the states the pages name, marked for the catalogs


class NotFound(HTTPException):
    def __init__(self) -> None:
        super().__init__(404)


def create_app(runtime: Runtime) -> Starlette:
    """The web app on `runtime`'s database and courses; its clock is read per request."""
    pages = Pages(runtime, runtime.clock)
    paces = PacePages(runtime, pages.render, pages.find_subscription)
    form = SignupForm(runtime, pages.render, pages.client)
    routes = [
        Route("/", pages.index),
        Route("/subscribe", form.subscribe, methods=["POST"]),
        Route("/confirm/{token}", pages.confirm, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", pages.preferences, methods=["GET", "POST"]),
        Route("/lessons/{token}/{day}", pages.lesson),
        Route("/pace/{token}/{action}/{lesson}", paces.page, methods=["GET", "POST"]),
        Route("/courses/{slug}/{path:path}", pages.course_file),
        Route("/healthz", pages.healthz),
        Route("/metrics", pages.metrics),
        *admin.routes(runtime),
        *webhooks.routes(runtime),
        Mount("/api/v1", app=create_api(runtime)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Any] = {404: pages.not_found, 500: pages.server_error,
                                DBAPIError: pages.database_down}  # fmt: skip
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            BodyLimit,
            limit=runtime.settings.max_body_bytes,
            wider=webhooks.body_limits(runtime.settings),
        ),
    ]
    return Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)


def app_from_env() -> Starlette:
    """For a production server: `uvicorn --factory drip.web:app_from_env`."""
    app = create_app(Runtime(Settings.load()))
    settle_heap()
    return app


class Pages:
    def __init__(self, runtime: Runtime, clock: Callable[[], datetime]) -> None:
        self.rt, self.clock = runtime, clock
        self.trusted_proxies = trusted_proxies(runtime.settings.trusted_proxies)

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """A page in the language of the one course it is about (the list of all: English)."""
        context.setdefault("courses", sorted(self.rt.courses.values(), key=lambda c: c.title))
        course = context.get("course") if name != "index.html" else None
        lang = course.language if isinstance(course, Course) else "en"
        context.update(lang=lang, _=html_gettext_for(lang), when=lambda moment: when(moment, lang))
        return TEMPLATES.TemplateResponse(request, name, context, status_code=status)

    def index(self, request: Request) -> Response:
        return self.render(request, "index.html", zones=ZONES, values={}, errors={})

    def client(self, request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        forwarded = request.headers.get("x-forwarded-for", "")
        return client_address(peer, forwarded, self.trusted_proxies)

    def confirm(self, request: Request) -> Response:
        """GET shows one button and changes nothing (mail scanners open links); POST confirms."""
        now = self.clock()
        posted = request.method == "POST"
        with (self.rt.write_sessions if posted else self.rt.sessions)() as session, session.begin():
            sub = self.find_subscription(session, "confirm_token", request)
            expiry = timedelta(seconds=self.rt.settings.pending_expiry_seconds)
            if sub.state is SubscriptionState.PENDING and sub.created_at + expiry < now:
                raise NotFound
            course = self.rt.course(sub.course_slug)
            if not posted and sub.state is SubscriptionState.PENDING:
                return self.render(request, "confirm.html", course=course, sub=sub,
                                   wording=privacy.wording(course))  # fmt: skip
            confirmed = posted and subscriptions.apply(sub, "confirm", course, now)
            if confirmed:
                browser = request.headers.get("user-agent", "")
                privacy.record_consent(session, sub, course, now, source="web",
                                       ip=self.client(request), user_agent=browser)  # fmt: skip
            local = zone(sub.timezone)
            second = None
            if sub.state is SubscriptionState.ACTIVE and course.total_days > 1:
                sent = sub.last_sent_at or sub.next_due_at or now
                second = next_lesson_due(sent, local, _send_time(sub, course), course.interval_days,
                                         course.cadence.narrowed(sub.cadence))  # fmt: skip
            page = self.render(
                request, "confirmed.html", course=course, sub=sub,
                second=second.astimezone(local) if second else None,
            )  # fmt: skip
        if confirmed:
            self.rt.wake()  # lesson 1 is due at once: the running scheduler sends it now
        return page

    def unsubscribe(self, request: Request) -> Response:
        posted = request.method == "POST"
        with (self.rt.write_sessions if posted else self.rt.sessions)() as session, session.begin():
            sub = self.find_subscription(session, "unsubscribe_token", request)
            course = self.rt.course(sub.course_slug)
            if posted:  # a person's button, or a mailbox's RFC 8058 one-click
                subscriptions.apply(sub, subscriptions.Event.UNSUBSCRIBE, course, self.clock())
                log.info("subscription %d unsubscribed on the web", sub.id)
            return self.render(request, "unsubscribe.html", course=course, sub=sub)

    async def preferences(self, request: Request) -> Response:
        fields = (await read_fields(request))[1] if request.method == "POST" else None
        return await run_in_threadpool(self._preferences, request, fields)

    def _preferences(self, request: Request, fields: dict[str, str] | None) -> Response:
        now = self.clock()
        sessions = self.rt.sessions if fields is None else self.rt.write_sessions
        with sessions() as session, session.begin():
            sub = self.find_subscription(session, "manage_token", request)
            course = self.rt.course(sub.course_slug)
            error = ""
            if fields is not None:
                try:
                    moved = self._change(session, sub, course, fields, now)
                except InvalidInput as exc:
                    error = str(exc)
                else:
                    if moved is not None:
                        url = request.url_for("preferences", token=moved.manage_token)
                        return RedirectResponse(str(url), status_code=303)
            return self.render(
                request, "preferences.html", 422 if error else 200, course=course, sub=sub,
                error=error, zones=ZONES, send_time=_send_time(sub, course).strftime("%H:%M"),
                received=pace.received(session, sub.id), stamp=pace.stamp(sub),
                snooze_days=pace.SNOOZE_DAYS, upcoming=_upcoming(sub, course),
            )  # fmt: skip

    def _change(
        self, session: Session, sub: Subscription, course: Course, fields: dict[str, str],
        now: datetime,
    ) -> Subscription | None:  # fmt: skip
        """Apply one preferences action; the new subscription when the course was switched."""
        action = fields.get("action", "")
        if sub.state not in LIVE_STATES:
            ended = N_("This subscription has ended; subscribe again from the course page.")
            raise InvalidInput(ended)
        if action in ("pause", "resume", "unsubscribe"):
            subscriptions.apply(sub, action, course, now)
        elif action == "schedule":
            send_time = _parse_send_time(fields.get("send_time", ""))
            cadence = _parse_cadence(fields.get("cadence", ""))
            subscriptions.reschedule(sub, course, fields.get("timezone", ""), send_time, now,
                                     cadence)  # fmt: skip
        elif action == "switch":
            try:
                other = self.rt.course(fields.get("course", ""))
            except UnknownCourse as exc:
                raise InvalidInput(N_("Choose one of the courses in the list.")) from exc
            if other.slug == course.slug:
                return None
            subscriptions.apply(sub, subscriptions.Event.UNSUBSCRIBE, course, now)
            session.flush()
            return subscriptions.subscribe(
                session, other, sub.subscriber.email, now=now, timezone=sub.timezone,
                confirmed=True,
            )  # fmt: skip
        else:
            raise InvalidInput(N_("Unknown action."))
        return None

    def lesson(self, request: Request) -> Response:
        text = request.path_params["day"]
        with self.rt.sessions() as session:
            sub = self.find_subscription(session, "manage_token", request)
            course = self.rt.course(sub.course_slug)
            # bounded before any query: a day past the course would overflow an INTEGER column
            day = int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else 0
            if not 1 <= day <= course.total_days:
                raise NotFound
            if not pace.has_received(session, sub.id, day):
                raise NotFound
            recipient = Recipient(sub.subscriber.email, sub.subscriber.name,
                                  sub.unsubscribe_token, sub.manage_token, sub.cadence)  # fmt: skip
        try:
            page = self.rt.renderer.page(course, day, recipient)
        except RenderError:  # logged as the lesson's problem; `drip check` names it
            log.exception("lesson %d of %s cannot be shown", day, course.slug)
            raise NotFound from None
        return Response(page, media_type="text/html",
                        headers={"Content-Security-Policy": EMAIL_PAGE_POLICY})  # fmt: skip

    def course_file(self, request: Request) -> Response:
        """An image from a course folder, and nothing outside it."""
        try:
            course = self.rt.course(request.path_params["slug"])
        except UnknownCourse:
            raise NotFound from None
        folder = course.path.resolve()
        try:  # a NUL or a name too long for the file system is just a file that is not there
            path = (folder / request.path_params["path"]).resolve()
            found = path.is_relative_to(folder) and path.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            raise NotFound
        if path.suffix.lower() not in IMAGE_TYPES:
            raise NotFound
        return FileResponse(path)

    def healthz(self, request: Request) -> Response:
        database_answers(self.rt.engine)
        return JSONResponse({"status": "ok", "courses": sorted(self.rt.courses)})

    def metrics(self, request: Request) -> Response:
        """Only with DRIP_METRICS_TOKEN, as a bearer token: the figures are not the public's
        (DRIP_METRICS_LISTEN serves them on an address of their own)."""
        token = self.rt.settings.metrics_token
        if not token:
            raise NotFound
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            return Response("A bearer token is needed.", 401, {"WWW-Authenticate": "Bearer"})
        body, content_type = self.rt.metrics.text(self.rt.sessions, self.clock)
        return Response(body, media_type=content_type)

    async def database_down(self, request: Request, exc: Exception) -> Response:
        """The database failed under a request: 503, said plainly, and the cause in the log."""
        log.error("the database failed on %s: %s", request.url.path,
                  " ".join(str(exc).split())[:300])  # fmt: skip
        page = self.render(request, "message.html", 503, title="Please try again shortly",
                           message="The service cannot reach its database just now.")  # fmt: skip
        page.headers.update(HEADERS)  # this handler runs outside the middleware
        return page

    async def not_found(self, request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):  # one the API's mount could not match (a newline)
            return api_error(404, "not_found", "there is no such path in the API")
        return self.render(
            request, "message.html", 404, title="This link does not work",
            message="It may have expired, or been copied only in part. If you meant to "
            "subscribe, start again from the course page.",
        )  # fmt: skip

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.exception("error on %s", request.url.path, exc_info=exc)
        page = self.render(request, "message.html", 500, title="Something went wrong",
                           message="Please try again in a minute.")  # fmt: skip
        page.headers.update(HEADERS)  # this handler runs outside the middleware
        return page

    def find_subscription(self, session: Session, column: str, request: Request) -> Subscription:
        sub = subscriptions.by_token(session, column, request.path_params["token"])
        if sub is None or sub.course_slug not in self.rt.courses:
            raise NotFound
        return sub


def _send_time(sub: Subscription, course: Course) -> time:
    return sub.send_time or course.send_time


def _upcoming(sub: Subscription, course: Course) -> list[tuple[int, datetime]]:
    """The next lessons and their local times, for the preferences page."""
    local = zone(sub.timezone)
    return [(n, due.astimezone(local)) for n, due in subscriptions.forecast(sub, course)]


def _parse_cadence(value: str) -> str | None:
    """A learner's days (schedule.CADENCES), or None for the course's own."""
    if value and value not in CADENCES:
        raise InvalidInput(N_("Choose how often lessons come from the list."))
    return value or None


def _parse_send_time(value: str) -> time:
    try:
        parsed = datetime.strptime(value, "%H:%M").time()
    except ValueError:
        raise InvalidInput(N_("Give the send time as HH:MM, e.g. 07:30.")) from None
    return parsed
