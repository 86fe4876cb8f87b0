"""What the API reads and writes: request fields checked one by one (a wrong type, an unknown
field or a bad value is a 4xx naming the field), and subscriptions as JSON."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime, time
from typing import Any

from ...course import Course
from ...models import Subscription, SubscriptionState

MAX_LIMIT = 200
MAX_ID = 2**31 - 1


class ApiError(Exception):
    """An answer other than 2xx: its status, a stable code, and a message for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid", message)


def fields_of(data: Mapping[str, Any], allowed: Mapping[str, type]) -> dict[str, Any]:
    """The fields of a JSON body, each of the type `allowed` gives it; another field is an error."""
    for name, value in data.items():
        if name not in allowed:
            raise invalid(f"unknown field {name[:40]!r} (fields: {', '.join(allowed)})")
        wanted = allowed[name]
        if not isinstance(value, wanted) or (wanted is not bool and isinstance(value, bool)):
            raise invalid(f"{name} must be a {'boolean' if wanted is bool else 'string'}")
        if isinstance(value, str) and ("\x00" in value or len(value) > 10_000):
            raise invalid(f"{name} holds a NUL character or is too long")
    return dict(data)


def check_encodable(value: str, name: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{name} is not valid text") from None
    return value


def subscription_id(text: str) -> int:
    """The id in a path; anything but a plain number in range is a subscription not found."""
    if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_ID:
        return int(text)
    raise ApiError(404, "not_found", "no such subscription")


def query_limit(text: str | None) -> int:
    if text is None:
        return 50
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_LIMIT):
        raise ApiError(400, "bad_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def query_state(text: str | None) -> SubscriptionState | None:
    if text is None:
        return None
    try:
        return SubscriptionState(text)
    except ValueError:
        states = ", ".join(s.value for s in SubscriptionState)
        raise ApiError(400, "bad_request", f"state must be one of {states}") from None


def cursor_of(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def after_cursor(text: str | None) -> int:
    """The id a cursor (from next_cursor) points after; 0 without one."""
    if text is None:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        decoded = ""
    number = decoded.removeprefix("after:")
    if not (len(text) <= 40 and decoded.startswith("after:") and number.isdigit()
            and int(number) <= MAX_ID):  # fmt: skip
        raise ApiError(400, "bad_request", "the cursor is not one this API gave")
    return int(number)


def send_time(text: str) -> time:
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise invalid("send_time must be HH:MM, e.g. 07:30") from None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def subscription_json(sub: Subscription) -> dict[str, Any]:
    """A subscription as the API shows it (the schema's Subscription)."""
    return {
        "id": sub.id, "email": sub.subscriber.email, "name": sub.subscriber.name,
        "course": sub.course_slug, "state": str(sub.state), "current_day": sub.current_day,
        "timezone": sub.timezone,
        "send_time": sub.send_time.strftime("%H:%M") if sub.send_time else None,
        "next_due_at": _iso(sub.next_due_at), "created_at": _iso(sub.created_at),
        "confirmed_at": _iso(sub.confirmed_at), "ended_at": _iso(sub.ended_at),
    }  # fmt: skip


def course_json(course: Course) -> dict[str, Any]:
    return {"slug": course.slug, "title": course.title, "lessons": course.total_days,
            "interval_days": course.interval_days, "send_time": course.send_time.strftime("%H:%M"),
            "timezone": course.timezone}  # fmt: skip
