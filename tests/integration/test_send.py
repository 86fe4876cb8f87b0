"""Transports against a real SMTP server on loopback: replies classified, connections reused."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest

from drip.emails import Outgoing
from drip.errors import ConfigError
from drip.send import (
    ConsoleTransport,
    MemoryTransport,
    OutboxTransport,
    SendStatus,
    SMTPTransport,
    transport_from_url,
)


def outgoing(n: int, to: str | None = None) -> Outgoing:
    msg = EmailMessage()
    msg["From"] = "Course <lessons@example.com>"
    msg["To"] = to or f"reader{n}@example.com"
    msg["Subject"] = f"Leçon {n}: ça marche"
    msg["Message-ID"] = f"<m{n}@example.com>"
    msg.set_content(f"Bonjour {n}, voilà la leçon.\n")
    return Outgoing.from_message(msg)


def transport(server, timeout: float = 5.0) -> SMTPTransport:
    return SMTPTransport(server.host, server.port, timeout=timeout)


def statuses(results) -> list[SendStatus]:
    return [r.status for r in results]


def test_batch_over_one_connection_arrives_intact(smtp_server) -> None:
    with transport(smtp_server) as smtp:
        results = smtp.send_messages([outgoing(n) for n in range(3)])
    assert statuses(results) == [SendStatus.SENT] * 3
    assert all(r.reply.startswith("250 ") for r in results)
    assert smtp_server.connections == 1
    got = smtp_server.messages
    assert [m.envelope_recipients for m in got] == [[f"reader{n}@example.com"] for n in range(3)]
    assert got[1].message["Subject"] == "Leçon 1: ça marche"
    assert got[1].message.get_content().replace("\r\n", "\n") == "Bonjour 1, voilà la leçon.\n"


def test_recipient_replies_are_classified_per_message(smtp_server) -> None:
    smtp_server.reply_rcpt["reader1@example.com"] = "550 5.1.1 No such user"
    smtp_server.reply_rcpt["reader2@example.com"] = "452 4.2.2 Mailbox full"
    with transport(smtp_server) as smtp:
        results = smtp.send_messages([outgoing(n) for n in range(4)])
    assert statuses(results) == [
        SendStatus.SENT, SendStatus.PERMANENT, SendStatus.TEMPORARY, SendStatus.SENT
    ]  # fmt: skip
    assert results[1].reply == "550 5.1.1 No such user"
    assert results[2].reply == "452 4.2.2 Mailbox full"
    assert len(smtp_server.messages) == 2 and smtp_server.connections == 1


def test_421_to_everything_is_temporary(smtp_server) -> None:
    smtp_server.fail_all = "421 4.3.2 Try again later"
    with transport(smtp_server) as smtp:
        results = smtp.send_messages([outgoing(n) for n in range(2)])
    assert statuses(results) == [SendStatus.TEMPORARY] * 2
    assert results[0].reply.startswith("421")


def test_dropped_connection_is_temporary_and_the_next_message_reconnects(smtp_server) -> None:
    smtp_server.drop_on_data = 1
    with transport(smtp_server) as smtp:
        results = smtp.send_messages([outgoing(n) for n in range(3)])
    assert statuses(results) == [SendStatus.TEMPORARY, SendStatus.SENT, SendStatus.SENT]
    assert [m.envelope_recipients[0] for m in smtp_server.messages] == [
        "reader1@example.com", "reader2@example.com"
    ]  # fmt: skip
    assert smtp_server.connections == 2


def test_refused_connection_fails_the_batch_with_one_attempt(smtp_server) -> None:
    smtp_server.stop()
    smtp = transport(smtp_server)
    results = smtp.send_messages([outgoing(n) for n in range(3)])
    assert statuses(results) == [SendStatus.TEMPORARY] * 3
    assert all("refused" in r.reply for r in results)
    smtp_server.start()
    assert statuses(smtp.send_messages([outgoing(9)])) == [SendStatus.SENT]
    smtp.close()


def test_stall_past_the_timeout_is_temporary(smtp_server) -> None:
    smtp_server.stall_seconds = 1.5
    smtp = transport(smtp_server, timeout=0.5)
    (result,) = smtp.send_messages([outgoing(1)])
    assert result.status is SendStatus.TEMPORARY and "timed out" in result.reply
    smtp.close()


def test_from_url() -> None:
    plain = SMTPTransport.from_url("smtp://relay.example.com")
    assert (plain.host, plain.port, plain.security, plain.username) == (
        "relay.example.com", 25, "none", None
    )  # fmt: skip
    tls = SMTPTransport.from_url("smtp://me%40x.com:p%2Fss@relay.example.com:587?starttls=true")
    assert (tls.port, tls.security, tls.username, tls.password) == (
        587, "starttls", "me@x.com", "p/ss"
    )  # fmt: skip
    implicit = SMTPTransport.from_url("smtps://relay.example.com?timeout=5")
    assert (implicit.port, implicit.security, implicit.timeout) == (465, "tls", 5.0)
    for bad, why in [
        ("http://relay", "scheme"), ("smtp://", "no host"), ("smtp://h:99999", "(?i)port"),
        ("smtp://h?tls=yes", "unknown option"), ("smtp://h?timeout=soon", "timeout"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            SMTPTransport.from_url(bad)


def test_outbox_writes_parseable_eml_files(tmp_path: Path) -> None:
    outbox = transport_from_url(None, tmp_path / "outbox")
    assert isinstance(outbox, OutboxTransport)
    results = outbox.send_messages([outgoing(1), outgoing(2)])
    assert statuses(results) == [SendStatus.SENT] * 2
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2 and not list((tmp_path / "outbox").glob("*.part"))
    assert files[0].name.endswith("-m1@example.com.eml")
    assert files[0].read_bytes() == outgoing(1).data


def test_console_and_memory_transports() -> None:
    stream = io.StringIO()
    assert statuses(ConsoleTransport(stream).send_messages([outgoing(1)])) == [SendStatus.SENT]
    assert "Subject: =?utf-8?" in stream.getvalue()
    memory = MemoryTransport()
    memory.send_messages([outgoing(1), outgoing(2)])
    assert [m.recipient for m in memory.outbox] == ["reader1@example.com", "reader2@example.com"]


def test_pooled_connections_keep_results_in_message_order(smtp_server) -> None:
    smtp_server.reply_rcpt["reader4@example.com"] = "550 5.1.1 No such user"
    pool = transport_from_url(smtp_server.url, Path("unused"), connections=3)
    results = pool.send_messages([outgoing(n) for n in range(8)])
    pool.close()
    assert statuses(results) == [
        SendStatus.PERMANENT if n == 4 else SendStatus.SENT for n in range(8)
    ]
    assert smtp_server.connections == 3
    assert sorted(m.envelope_recipients[0] for m in smtp_server.messages) == sorted(
        f"reader{n}@example.com" for n in range(8) if n != 4
    )
