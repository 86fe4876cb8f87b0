"""The console's pages (GET): courses with their `drip check` warnings, one course's dashboard,
subscribers found by address, course and state, one subscription's timeline, the suppression
list. They read only; the forms on them post to actions.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from ... import console, operators, privacy, stats, suppressions
from ...course import lint
from ...hooks import outbox
from ...models import Subscription, SubscriptionState
from ...runtime import Runtime
from ..body import check_text
from .auth import Auth, to_sign_in

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))
NOTICES = {  # ?done=... after an action: fixed texts, never the query's own words
    "pause": "Paused.", "resume": "Resumed.", "unsubscribe": "Unsubscribed.",
    "move": "Moved: the chosen lesson is next.", "resend": "The lesson is due again now.",
    "retry": "The delivery is due again now.",
    "erase": "Erased: the address, name and replies are gone; the subscriptions stay, anonymous.",
}  # fmt: skip
STATES = [state.value for state in SubscriptionState]
MAX_SEARCH = 100


class Pages:
    def __init__(self, runtime: Runtime, auth: Auth) -> None:
        self.rt, self.auth = runtime, auth

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("courses", sorted(self.rt.courses.values(), key=lambda c: c.title))
        response = TEMPLATES.TemplateResponse(request, f"admin/{name}", context, status_code=status)
        response.headers["Cache-Control"] = "no-store"  # personal data: never kept by a cache
        return response

    def _page(self, request: Request, name: str, read: Any) -> Response:
        """`name` rendered with what `read(db)` returns, for a signed-in operator only."""
        now = self.rt.clock()
        session = self.auth.session(request, now)
        with self.rt.sessions() as db:
            operator = self.auth.operator(db, session)
            if operator is None:
                return to_sign_in(request)
            assert session is not None
            context = read(db, now)
        notice = NOTICES.get(request.query_params.get("done", ""))
        return self.render(request, name, operator=operator.email, csrf=session.csrf, now=now,
                           notice=notice, **context)  # fmt: skip

    def index(self, request: Request) -> Response:
        def read(db: Any, now: Any) -> dict[str, Any]:
            counts = {slug: stats.state_counts(db, slug) for slug in self.rt.courses}
            warnings = {slug: lint.warnings(c) for slug, c in self.rt.courses.items()}
            return {"counts": counts, "warnings": warnings, "actions": operators.recent(db),
                    "attempts": outbox.recent_attempts(db, limit=20),
                    "pending": outbox.pending_count(db)}  # fmt: skip

        return self._page(request, "index.html", read)

    def course(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        if slug not in self.rt.courses:
            raise HTTPException(404)
        course = self.rt.courses[slug]

        def read(db: Any, now: Any) -> dict[str, Any]:
            return {"course": course, "funnel": console.funnel(db, slug, course.total_days, now),
                    "stuck": stats.stuck(db, slug)}  # fmt: skip

        return self._page(request, "course.html", read)

    def subscribers(self, request: Request) -> Response:
        params = request.query_params
        search = _search(request)
        course = params.get("course", "") if params.get("course", "") in self.rt.courses else ""
        state = params.get("state", "") if params.get("state", "") in STATES else ""

        def read(db: Any, now: Any) -> dict[str, Any]:
            found = console.subscriber_list(db, course=course or None, state=state or None,
                                            search=search, limit=console.LIST_LIMIT)  # fmt: skip
            return {"found": found, "q": search, "course_filter": course, "state": state,
                    "states": STATES, "limit": console.LIST_LIMIT}  # fmt: skip

        return self._page(request, "subscribers.html", read)

    def subscription(self, request: Request) -> Response:
        sub_id = _id(request.path_params["id"])

        def read(db: Any, now: Any) -> dict[str, Any]:
            sub = db.get(Subscription, sub_id)
            if sub is None:
                raise HTTPException(404)
            course = self.rt.courses.get(sub.course_slug)
            return {"sub": sub, "email": sub.subscriber.email, "course": course,
                    "subscriber_name": sub.subscriber.name,
                    "erased": privacy.is_erased(sub.subscriber.email),
                    "consents": privacy.consents(db, [sub_id]),
                    "moments": console.timeline(db, sub_id)}  # fmt: skip

        return self._page(request, "subscription.html", read)

    def suppressions(self, request: Request) -> Response:
        search = _search(request).casefold()

        def read(db: Any, now: Any) -> dict[str, Any]:
            rows = suppressions.listing(db, search, limit=console.LIST_LIMIT + 1)
            return {"rows": rows[: console.LIST_LIMIT], "more": len(rows) > console.LIST_LIMIT,
                    "q": search}  # fmt: skip

        return self._page(request, "suppressions.html", read)


def _search(request: Request) -> str:
    """The search box's text: at most MAX_SEARCH characters, and none a database cannot compare
    (a NUL from a hand-made URL gets 422, not a database error)."""
    return check_text(request.query_params.get("q", "").strip()[:MAX_SEARCH])


def _id(text: str) -> int:
    """A row id from the path: digits that fit a database INTEGER, or 404."""
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise HTTPException(404)
    return int(text)
