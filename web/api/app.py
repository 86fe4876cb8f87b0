"""The HTTP API at /api/v1: JSON in and out, a key in `Authorization: Bearer <key>` on every
request but the OpenAPI document.

Every answer that is not 2xx has one shape, `{"error": {"code": ..., "message": ...}}`: 401
(no key, or not a live one), 403 (a read key on a write route), 400 (a bad query or body), 404,
405, 409 (a change the subscription's state does not allow, a suppressed address), 422 (a field
with a wrong value). Handlers run in the thread pool, each in one transaction; every change of
state goes through subscriptions.apply, so webhooks hear of it in that transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ... import apikeys
from ...errors import InvalidInput, UnknownCourse
from ...models_api import ApiScope
from ...runtime import Runtime
from ..body import parse_json_object
from .fields import ApiError
from .routes import Routes
from .schema import openapi

log = logging.getLogger("drip.api")
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid"}  # fmt: skip
Work = Callable[[Request, dict[str, Any]], Response]


def error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="drip"'} if status == 401 else None
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_api(runtime: Runtime) -> Starlette:
    """The API app, mounted by web.app at /api/v1."""
    routes = Routes(runtime)
    read, write = ApiScope.READ, ApiScope.WRITE

    def at(path: str, work: Work, scope: ApiScope, method: str = "GET") -> Route:
        return Route(path, guarded(runtime, scope, work, body=method != "GET"), methods=[method])

    table = [
        Route("/openapi.json", lambda request: JSONResponse(openapi())),
        at("/courses", routes.courses, read),
        at("/stats", routes.stats, read),
        at("/subscriptions", routes.listing, read),
        at("/subscriptions", routes.enroll, write, "POST"),
        at("/subscriptions/{id}", routes.one, read),
        at("/subscriptions/{id}", routes.update, write, "PATCH"),
        *(at(f"/subscriptions/{{id}}/{action}", routes.action(action), write, "POST")
          for action in ("pause", "resume", "unsubscribe")),
        at("/subscribers/export", routes.export, read, "POST"),
        at("/subscribers/erase", routes.erase, write, "POST"),
    ]  # fmt: skip
    handlers: dict[Any, Any] = {
        ApiError: lambda request, exc: error(exc.status, exc.code, exc.message),
        HTTPException: _http_error,
        InvalidInput: lambda request, exc: error(422, "invalid", str(exc)),
        UnknownCourse: lambda request, exc: error(422, "invalid", str(exc)),
        Exception: _server_error,
    }
    return Starlette(routes=table, exception_handlers=handlers)


def guarded(runtime: Runtime, scope: ApiScope, work: Work, *, body: bool) -> Any:
    """`work` behind the key check, with the request's JSON object (empty for a GET)."""

    async def handle(request: Request) -> Response:
        raw = await request.body() if body else b""
        return await run_in_threadpool(_authorized, runtime, request, scope, work, raw)

    return handle


def _authorized(
    runtime: Runtime, request: Request, scope: ApiScope, work: Work, raw: bytes
) -> Response:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    with runtime.sessions() as session:
        key = apikeys.authenticate(session, presented.strip()) if scheme == "Bearer" else None
    if key is None:
        raise ApiError(401, "unauthorized", "give a live API key: Authorization: Bearer drip_...")
    if not apikeys.allows(key, scope):
        raise ApiError(403, "forbidden", f"this key may only {key.scope}; this route needs {scope}")
    data = parse_json_object(raw) if raw.strip() else {}
    return work(request, data)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code if exc.status_code in CODES else 400
    message = exc.detail if isinstance(exc.detail, str) else "the request was refused"
    return error(status, CODES[status], message)


def _server_error(request: Request, exc: Exception) -> Response:
    log.error("API error on %s", request.url.path, exc_info=exc)
    return error(500, "server_error", "something went wrong; try again in a minute")
