"""Request bodies, bounded: a size limit enforced before anything is read, and the posted fields
of a form or a JSON object, refused with a 4xx when they are too big, too deep or not text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_FIELDS = 20  # fields per form or JSON object
MAX_FIELD = 10_000  # characters per field; longer is refused before anything else
MAX_JSON_DEPTH = 20


class BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes the limit; answered by BodyLimit."""


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413: at once when Content-Length says so,
    and as soon as a streamed (chunked) body passes the limit, so it is never held in memory.
    The refusal closes the connection, so the server does not go on draining what is left.
    Paths under a prefix of `wider` (the providers' webhooks, whose batches are larger) have
    the limit given there."""

    def __init__(self, app: ASGIApp, limit: int, wider: Mapping[str, int] | None = None) -> None:
        self.app, self.default, self.wider = app, limit, dict(wider or {})

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.wider.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        if _declared_length(scope) > limit:
            await REFUSAL(scope, receive, send)
            return
        received, started = 0, False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await REFUSAL(scope, receive, send)


REFUSAL = PlainTextResponse(
    "The request body is too large.", status_code=413, headers={"Connection": "close"}
)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) < 20 else 0
    return 0


async def read_fields(request: Request) -> tuple[bool, dict[str, str]]:
    """The posted fields, from JSON or a form: (the client wants JSON, fields), values stripped.
    Malformed bodies get 400, oversized fields 413, NUL or unencodable text 422."""
    if request.headers.get("content-type", "").startswith("application/json"):
        data = parse_json_object(await request.body())
        fields = {k: v if isinstance(v, str) else "" for k, v in data.items()}
        wants_json = True
    else:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        wants_json = "application/json" in request.headers.get("accept", "")
    for key, value in fields.items():
        if len(value) > MAX_FIELD:
            raise HTTPException(413, "A field is too long.")
        check_text(key)
        check_text(value)
    return wants_json, {k: v.strip() for k, v in fields.items()}


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object of at most MAX_FIELDS keys nested at most MAX_JSON_DEPTH deep, or 400."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(400, "The body is not valid JSON (or is nested too deep).") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "Send a JSON object.")
    if len(data) > MAX_FIELDS or depth(data) > MAX_JSON_DEPTH:
        raise HTTPException(400, "The JSON object is too large or nested too deep.")
    return data


def depth(value: Any) -> int:
    """How deep lists and objects nest in a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def check_text(value: str) -> str:
    """`value`, if a database can store it: no NUL (PostgreSQL refuses it) and valid UTF-8."""
    if "\x00" in value:
        raise HTTPException(422, "A field contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(422, "A field is not valid text.") from None
    return value
