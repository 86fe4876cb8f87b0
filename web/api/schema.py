"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json. It is written by hand
beside the routes, and tests/integration/test_api_schema.py runs schemathesis against a live
server to hold the two together."""

from __future__ import annotations

from functools import cache
from typing import Any

from ...models import SubscriptionState

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
COUNT = {"type": "integer", "minimum": 0}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {400: "Bad query or body", 401: "No live API key", 403: "The key's scope is read",
             404: "Not found", 409: "Not allowed in the subscription's state",
             413: "Body too large", 422: "A field's value is refused"}  # fmt: skip
    found = {str(s): _json(_ref("Error"), words[s]) for s in (401, 400, *statuses)}
    if 413 in statuses:  # refused before the API reads the body, by the web app's size limit
        found["413"] = {"description": words[413], "content": {"text/plain": {"schema": STRING}}}
    return found


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}  # fmt: skip


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


ID = {"name": "id", "in": "path", "required": True,
      "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}  # fmt: skip
COURSE_QUERY = {"name": "course", "in": "query", "required": False, "schema": STRING}
ADDRESS_BODY = _body(_object({"email": STRING}, ("email",)))


def _operation(summary: str, ok: dict[str, Any], *errors: int, write: bool = False,
               **more: Any) -> dict[str, Any]:  # fmt: skip
    responses = {**ok, **_errors(*errors, *((403, 413) if write else ()))}
    return {"summary": summary, "responses": responses, **more}


def _action(name: str) -> dict[str, Any]:
    return {"post": _operation(f"{name.capitalize()} a subscription",
                               {"200": _json(_ref("Subscription"), "Done")}, 404, 409, 422,
                               write=True, parameters=[ID])}  # fmt: skip


def _schemas() -> dict[str, Any]:
    iso = {"type": ["string", "null"], "format": "date-time"}
    subscription = _object({
        "id": {"type": "integer"}, "email": STRING, "name": STRING, "course": STRING,
        "state": {"enum": [s.value for s in SubscriptionState]}, "current_day": COUNT,
        "timezone": STRING, "send_time": NULLABLE_STRING, "next_due_at": iso,
        "created_at": {"type": "string", "format": "date-time"}, "confirmed_at": iso,
        "ended_at": iso,
    }, ("id", "email", "name", "course", "state", "current_day", "timezone", "send_time",
        "next_due_at", "created_at", "confirmed_at", "ended_at"))  # fmt: skip
    course = _object(
        {
            "slug": STRING,
            "title": STRING,
            "lessons": COUNT,
            "interval_days": COUNT,
            "send_time": STRING,
            "timezone": STRING,
        },
        ("slug", "title", "lessons", "interval_days", "send_time", "timezone"),
    )
    error = _object({"error": _object({"code": STRING, "message": STRING}, ("code", "message"))},
                    ("error",))  # fmt: skip
    return {"Subscription": subscription, "Course": course, "Error": error}


PAGE = _object({"data": {"type": "array", "items": _ref("Subscription")},
                "next_cursor": NULLABLE_STRING}, ("data", "next_cursor"))  # fmt: skip
ENROLL = _object({"email": STRING, "course": STRING, "name": STRING, "timezone": STRING,
                  "confirmed": {"type": "boolean"}, "consent_ip": STRING,
                  "consent_user_agent": STRING, "consent_wording": STRING},
                 ("email", "course"))  # fmt: skip
UPDATE = _object({"name": STRING, "timezone": STRING, "send_time": STRING})
FIGURES = _object(
    {
        "course": NULLABLE_STRING,
        "by_state": {"type": "object", "additionalProperties": COUNT},
        "due_now": COUNT,
        "due_next_hour": COUNT,
        "due_next_day": COUNT,
    },
    ("course", "by_state", "due_now", "due_next_hour", "due_next_day"),
)
ERASED = _object(
    {
        "erased": {"type": "boolean"},
        "subscriber_id": {"type": "integer"},
        "ended": COUNT,
        "kept": COUNT,
    },
    ("erased", "subscriber_id", "ended", "kept"),
)
LISTING_QUERY = [
    COURSE_QUERY,
    {"name": "state", "in": "query", "schema": {"enum": [s.value for s in SubscriptionState]}},
    {"name": "email", "in": "query", "schema": STRING},
    {"name": "cursor", "in": "query", "schema": STRING},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                  "maximum": 200}},
]  # fmt: skip


def _paths() -> dict[str, Any]:
    subscription = _json(_ref("Subscription"), "The subscription")
    return {
        "/courses": {"get": _operation("The courses", {"200": _json(_object(
            {"data": {"type": "array", "items": _ref("Course")}}, ("data",)), "Courses")})},
        "/stats": {"get": _operation("Subscriptions by state and lessons due",
                                     {"200": _json(FIGURES, "Figures")}, 400,
                                     parameters=[COURSE_QUERY])},
        "/subscriptions": {
            "get": _operation("Subscriptions, a page at a time", {"200": _json(PAGE, "A page")},
                              parameters=LISTING_QUERY),
            "post": _operation("Enroll an address in a course",
                               {"200": _json(_ref("Subscription"), "Already enrolled"),
                                "201": _json(_ref("Subscription"), "Enrolled")},
                               409, 422, write=True, requestBody=_body(ENROLL)),
        },
        "/subscriptions/{id}": {
            "get": _operation("One subscription", {"200": subscription}, 404, parameters=[ID]),
            "patch": _operation("Change the name, time zone or send time",
                                {"200": subscription}, 404, 409, 422, write=True,
                                parameters=[ID], requestBody=_body(UPDATE)),
        },
        **{f"/subscriptions/{{id}}/{name}": _action(name)
           for name in ("pause", "resume", "unsubscribe")},
        "/subscribers/export": {"post": _operation(
            "Everything held about an address", {"200": _json({"type": "object"}, "Its data")},
            404, 422, 413, requestBody=ADDRESS_BODY)},
        "/subscribers/erase": {"post": _operation(
            "Remove an address's personal data (its counts stay)",
            {"200": _json(ERASED, "Erased")}, 404, 422, write=True, requestBody=ADDRESS_BODY)},
    }  # fmt: skip


@cache
def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "drip API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "paths": _paths(),
    }
