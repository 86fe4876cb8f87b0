"""Addresses in any script on the wire, against the real aiosmtpd: domains as A-labels in the
envelope, a UTF-8 local part only to a relay that offers SMTPUTF8, and one unsendable message
failing alone, in a transport's batch and in a dispatch pass."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drip import subscriptions
from drip.course import Course, load_course
from drip.emails import LessonRenderer, Links, Outgoing, Recipient
from drip.models import DeliveryState, SubscriptionState
from drip.runtime import Runtime
from drip.send import (
    ConsoleTransport,
    MemoryTransport,
    OutboxTransport,
    SendStatus,
    SMTPTransport,
)

from conftest import COURSE_TOML, T0, make_runtime, write_course
from helpers import addr_spec, check_header_lines, deliveries, parse_strictly, subscription

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
JOSE, JOSE_WIRE = "josé@bücher.example", "josé@xn--bcher-kva.example"
IDN, IDN_WIRE = "user@bücher.example", "user@xn--bcher-kva.example"
SENDER_WIRE = "kurs@xn--bcher-kva.example"
NO_SMTPUTF8 = f"the relay does not offer SMTPUTF8, needed for {JOSE_WIRE}"


@pytest.fixture
def course(tmp_path: Path) -> Course:
    toml = COURSE_TOML.replace("lessons@tiny.example", "kurs@bücher.example").replace(
        'sender_name = "Tiny Sender"', 'sender_name = "Día a día"'
    )
    return load_course(write_course(tmp_path / "tiny", toml=toml))


def lessons(course: Course, *addresses: str) -> list[Outgoing]:
    renderer = LessonRenderer(Links("https://drip.example.org"))
    people = [
        Recipient(address, "Jürgen 山田", f"u{n}", f"m{n}") for n, address in enumerate(addresses)
    ]
    return [
        renderer.render(course, 1, person, message_id=f"<{n}@xn--bcher-kva.example>", now=NOW)
        for n, person in enumerate(people)
    ]


def send(server, messages: list[Outgoing]) -> list[SendStatus]:
    with SMTPTransport(server.host, server.port, timeout=5) as smtp:
        return [result.status for result in smtp.send_messages(messages)]


def test_a_relay_with_smtputf8_gets_the_utf8_local_part(smtputf8_server, course) -> None:
    assert send(smtputf8_server, lessons(course, JOSE, IDN)) == [SendStatus.SENT] * 2
    jose, idn = smtputf8_server.messages
    assert (jose.envelope_from, jose.envelope_recipients) == (SENDER_WIRE, [JOSE_WIRE])
    assert "SMTPUTF8" in jose.mail_options
    assert (idn.envelope_from, idn.envelope_recipients) == (SENDER_WIRE, [IDN_WIRE])
    assert "SMTPUTF8" not in idn.mail_options, "an A-label domain needs no SMTPUTF8"
    check_header_lines(jose.data, utf8=frozenset({"To"}))
    check_header_lines(idn.data)
    message = parse_strictly(jose.data)
    assert addr_spec(message, "To") == JOSE_WIRE
    assert message["To"].addresses[0].display_name == "Jürgen 山田"
    assert message["From"].addresses[0].display_name == "Día a día"
    assert addr_spec(message, "From") == SENDER_WIRE


def test_a_relay_without_smtputf8_refuses_only_that_message(smtp_server, course) -> None:
    batch = lessons(course, "ana@example.com", JOSE, IDN, "bo@example.com")
    with SMTPTransport(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        results = smtp.send_messages(batch)
    assert [r.status for r in results] == [
        SendStatus.SENT, SendStatus.PERMANENT, SendStatus.SENT, SendStatus.SENT
    ]  # fmt: skip
    assert results[1].reply == NO_SMTPUTF8
    assert [m.envelope_recipients for m in smtp_server.messages] == [
        ["ana@example.com"], [IDN_WIRE], ["bo@example.com"]
    ]  # fmt: skip
    assert all(m.envelope_from == SENDER_WIRE for m in smtp_server.messages)
    assert all(not m.mail_options for m in smtp_server.messages)
    assert smtp_server.connections == 1


@pytest.mark.parametrize(
    ("bad_recipient", "expected_reason"),
    [
        ("\udce9@example.com", "UnicodeEncodeError: 'utf-8' codec can't encode"),
        ("a@example.com>\r\nRCPT TO:<victim@example.com", "ValueError: command and arguments"),
    ],
    ids=["cannot-be-encoded", "line-break"],
)
def test_an_exception_while_sending_fails_that_message_alone(
    smtputf8_server, course, bad_recipient: str, expected_reason: str
) -> None:
    first, bad, last = lessons(course, "ana@example.com", "x@example.com", JOSE)
    batch = [first, replace(bad, recipient=bad_recipient), last]
    with SMTPTransport(smtputf8_server.host, smtputf8_server.port, timeout=5) as smtp:
        results = smtp.send_messages(batch)
    assert [r.status for r in results] == [SendStatus.SENT, SendStatus.UNSENDABLE, SendStatus.SENT]
    assert results[1].reply.startswith(expected_reason)
    received = [m.envelope_recipients for m in smtputf8_server.messages]
    assert received == [["ana@example.com"], [JOSE_WIRE]]


def test_the_other_transports_take_utf8_messages(tmp_path: Path, course) -> None:
    batch = lessons(course, JOSE, IDN)
    outbox = OutboxTransport(tmp_path / "outbox")
    assert [r.status for r in outbox.send_messages(batch)] == [SendStatus.SENT] * 2
    assert sorted(p.read_bytes() for p in (tmp_path / "outbox").glob("*.eml")) == sorted(
        m.data for m in batch
    )
    latin1 = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    assert [r.status for r in ConsoleTransport(latin1).send_messages(batch)] == [
        SendStatus.SENT
    ] * 2
    latin1.seek(0)
    assert "josé@xn--bcher-kva.example" in latin1.read()
    memory = MemoryTransport()
    memory.send_messages(batch)
    assert [m.recipient for m in memory.outbox] == [JOSE_WIRE, IDN_WIRE]


def test_an_outbox_that_cannot_be_written_fails_each_message_for_now(tmp_path: Path, course):
    (tmp_path / "outbox").write_text("a file where the folder should be")
    results = OutboxTransport(tmp_path / "outbox").send_messages(lessons(course, JOSE, IDN))
    assert [r.status for r in results] == [SendStatus.TEMPORARY] * 2


def subscribe_all(rt: Runtime, *addresses: str) -> list[int]:
    with rt.sessions() as session, session.begin():
        return [
            subscriptions.subscribe(
                session, rt.course("bone-health"), address, now=T0, name="Ana", confirmed=True
            ).id
            for address in addresses
        ]


def test_dispatch_bounces_the_address_the_relay_cannot_take(runtime: Runtime, smtp_server) -> None:
    alice, jose, idn = subscribe_all(runtime, "alice@example.com", JOSE, IDN)
    result = runtime.dispatcher.run_pass(T0)
    assert (result.sent, result.bounced) == (2, 1)
    assert sorted(m.envelope_recipients[0] for m in smtp_server.messages) == [
        "alice@example.com", IDN_WIRE
    ]  # fmt: skip
    (delivery,) = deliveries(runtime, jose)
    assert delivery.state is DeliveryState.BOUNCED
    assert delivery.smtp_reply == NO_SMTPUTF8
    assert subscription(runtime, jose).state is SubscriptionState.BOUNCED
    for sent in (alice, idn):
        assert subscription(runtime, sent).current_day == 1
        assert [d.state for d in deliveries(runtime, sent)] == [DeliveryState.SENT]


def test_dispatch_sends_to_a_utf8_address_over_smtputf8(
    database_url: str, tmp_path: Path, smtputf8_server
) -> None:
    rt = make_runtime(database_url, tmp_path, smtp_url=smtputf8_server.url)
    try:
        (jose,) = subscribe_all(rt, JOSE)
        assert rt.dispatcher.run_pass(T0).sent == 1
        (received,) = smtputf8_server.messages
        assert received.envelope_recipients == [JOSE_WIRE] and "SMTPUTF8" in received.mail_options
        assert addr_spec(parse_strictly(received.data), "To") == JOSE_WIRE
        assert subscription(rt, jose).current_day == 1
    finally:
        rt.close()
