"""Helpers the tests share: three subscribers in three zones, reads of what the database
holds, and strict checks of an email's bytes."""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from drip import subscriptions
from drip.models import Delivery, Subscription, SubscriptionState
from drip.runtime import Runtime

from conftest import T0

ALICE, BOB, CAROL = "alice@example.com", "bob@example.net", "carol@example.org"
ZONES = {ALICE: "America/New_York", BOB: "Asia/Tokyo", CAROL: "Europe/Berlin"}


DECIDE_NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, 09:00 in New York


@dataclass(frozen=True)
class Facts:
    """What subscriptions.decide reads, without a database."""

    state: SubscriptionState
    current_day: int = 2
    timezone: str = "America/New_York"
    send_time: time | None = None
    last_sent_at: datetime | None = DECIDE_NOW - timedelta(days=1)
    snoozed_until: datetime | None = None
    cadence: str | None = None
    retry_attempts: int = 1


def subscribe(rt: Runtime, email: str, now: datetime = T0, confirmed: bool = True) -> int:
    with rt.sessions() as session, session.begin():
        sub = subscriptions.subscribe(
            session, rt.course("bone-health"), email, now=now, name=email.split("@")[0].title(),
            timezone=ZONES.get(email, ZONES[ALICE]), confirmed=confirmed,
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


STRICT = policy.default.clone(raise_on_defect=True)
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def parse_strictly(data: bytes) -> EmailMessage:
    """The standard library's parser, raising on any defect it finds."""
    message = message_from_bytes(data, policy=STRICT)
    assert isinstance(message, EmailMessage)
    return message


def check_header_lines(data: bytes, utf8: frozenset[str] = frozenset()) -> None:
    """Every physical header line at most 998 characters and ASCII (but the headers in `utf8`,
    which carry an address whose local part is not: RFC 6532), every encoded word at most 75."""
    head = data.split(b"\r\n\r\n", 1)[0]
    name = ""
    for line in head.split(b"\r\n"):
        if not line[:1].isspace():
            name = line.split(b":", 1)[0].decode("ascii")
        assert len(line) <= 998, (name, len(line))
        assert line.isascii() or name in utf8, line
        for word in ENCODED_WORD.findall(line):
            assert len(word) <= 75, word


def raw_header(data: bytes, name: str) -> str:
    """A header's value as sent: unfolded, UTF-8."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8").replace("\r\n ", " ")
    (value,) = [
        line.split(": ", 1)[1] for line in head.split("\r\n") if line.startswith(name + ":")
    ]
    return value


def rfc2047_display_name(data: bytes, name: str) -> str:
    """The display name of header `name`, its encoded words decoded as RFC 2047 says (the
    space between two adjacent words dropped; the parser of some Python versions keeps it
    inside a display name: CPython gh-128110)."""
    label = raw_header(data, name).rpartition(" <")[0]
    return str(make_header(decode_header(label)))


def addr_spec(message: EmailMessage, name: str) -> str:
    """The address in header `name`, a UTF-8 local part read back as text."""
    address = message[name].addresses[0]
    return address.addr_spec.encode("utf-8", "surrogateescape").decode("utf-8")


def link(message, path: str) -> str:
    """The path of the `path` link (confirm, preferences, ...) in a received email's text."""
    text = message.message.get_body(("plain",)).get_content()
    found = re.search(rf"https://drip\.example\.org(/{path}/[A-Za-z0-9_-]+)", text)
    assert found, text
    return found[1]


def confirm_path(smtp_server, count: int = 1) -> str:
    """The confirm link of the `count`th message, once the service has sent it."""
    text = smtp_server.wait_for(count)[count - 1].message.get_body(("plain",)).get_content()
    found = re.search(r"http://127\.0\.0\.1:\d+(/confirm/[A-Za-z0-9_-]+)", text)
    assert found, text
    return found[1]


def pace_link(message, action: str) -> str:
    """The path (and query) of a pace link (next, snooze, restart) in a received lesson."""
    text = message.message.get_body(("plain",)).get_content()
    found = re.search(
        rf"https?://[^/\s]+(/pace/[A-Za-z0-9_-]+/{action}/[0-9]+(\?days=[0-9]+)?)", text
    )
    assert found, text
    return found[1]


def stamp_of(page: str) -> str:
    """The stamp a pace page's button carries (the subscription as the page showed it)."""
    return hidden_fields(page)["at"]


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden fields of a page's forms (the last of each name), as its button posts them."""
    found = dict(re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)">', page))
    assert "at" in found, page
    return found


RETURNED_SAMPLES = Path(__file__).resolve().parent / "samples" / "returned"
SAMPLE_VERP = re.compile(rb"bounces\+[0-9]+-[0-9]+-[a-z2-7]{16}@[A-Za-z0-9.-]+")
SAMPLE_MESSAGE_ID = re.compile(rb"<drip\.[^>\s]+@[^>\s]+>")


def returned_sample(name: str, verp: str, message_id: str) -> bytes:
    """A sample of tests/samples/returned/, re-addressed to a real delivery: its VERP return
    path and its Message-ID put where the sample has its own."""
    data = (RETURNED_SAMPLES / name).read_bytes()
    data = SAMPLE_VERP.sub(verp.encode(), data)
    return SAMPLE_MESSAGE_ID.sub(message_id.encode(), data)


def send_returned(port: int, data: bytes, recipient: str) -> tuple[int, str]:
    """Hand one returned message to a receiver on loopback as an MTA does (MAIL FROM:<>);
    the receiver's reply to DATA (or to the command that refused it)."""
    data = re.sub(rb"\r?\n", b"\r\n", data)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("mx.example.org")
        code, text = smtp.mail("", [f"SIZE={len(data)}"])
        if code < 400:
            code, text = smtp.rcpt(recipient)
        if code < 400:
            code, text = smtp.data(data)
        return code, text.decode()


OPERATOR, PASSWORD = "ana@example.com", "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_operator(rt: Runtime, email: str = OPERATOR, password: str = PASSWORD) -> None:
    from drip import operators

    with rt.sessions() as session, session.begin():
        operators.add(session, email, password, T0)


def csrf_of(page: str) -> str:
    """The CSRF token a console page's forms carry."""
    found = CSRF.search(page)
    assert found, page[:500]
    return found[1]


def sign_in(client, email: str = OPERATOR, password: str = PASSWORD) -> str:
    """Sign a test client in to the console; the CSRF token of its session."""
    token = csrf_of(client.get("/admin/login").text)
    form = {"csrf": token, "email": email, "password": password}
    answer = client.post("/admin/login", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]
    return csrf_of(client.get("/admin").text)


def forged(token: str) -> str:
    """`token` with its first character changed, never to the one it had (the last character
    of unpadded base64 may carry bits a decoder ignores, so changing it may change nothing)."""
    return ("y" if token.startswith("x") else "x") + token[1:]
