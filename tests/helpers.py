"""Helpers the integration tests share: three subscribers in three zones, and reads of what
the database holds."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select

from drip import subscriptions
from drip.models import Delivery, Subscription
from drip.runtime import Runtime

from conftest import T0

ALICE, BOB, CAROL = "alice@example.com", "bob@example.net", "carol@example.org"
ZONES = {ALICE: "America/New_York", BOB: "Asia/Tokyo", CAROL: "Europe/Berlin"}


def subscribe(rt: Runtime, email: str, now: datetime = T0, confirmed: bool = True) -> int:
    with rt.sessions() as session, session.begin():
        sub = subscriptions.subscribe(
            session, rt.course("bone-health"), email, now=now, name=email.split("@")[0].title(),
            timezone=ZONES[email], confirmed=confirmed,
        )  # fmt: skip
        return sub.id


def subscription(rt: Runtime, sub_id: int) -> Subscription:
    with rt.sessions() as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        return sub


def deliveries(rt: Runtime, sub_id: int) -> list[Delivery]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(Delivery).where(Delivery.subscription_id == sub_id).order_by(Delivery.day)
            )
        )


def lesson_day(rt: Runtime, subject: str) -> int:
    course = rt.course("bone-health")
    return next(lesson.day for lesson in course.lessons if lesson.subject == subject)


def link(message, path: str) -> str:
    """The path of the `path` link (confirm, preferences, ...) in a received email's text."""
    text = message.message.get_body(("plain",)).get_content()
    found = re.search(rf"https://drip\.example\.org(/{path}/[A-Za-z0-9_-]+)", text)
    assert found, text
    return found[1]
