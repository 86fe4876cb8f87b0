"""The parallel SMTP connections."""

from __future__ import annotations

from drip.emails import Outgoing
from drip.send import ParallelTransport, SendStatus, SMTPTransport, transport_from_url


def messages(count: int) -> list[Outgoing]:
    return [
        Outgoing(
            sender="lessons@example.com",
            recipient=f"reader{i}@example.com",
            message_id=f"<m{i}@example.com>",
            data=(f"Subject: {i}\r\nMessage-ID: <m{i}@example.com>\r\n\r\nbody {i}\r\n").encode(),
        )
        for i in range(count)
    ]


def test_parallel_connections_share_a_batch_and_keep_its_order(smtp_server, tmp_path) -> None:
    smtp_server.reply_rcpt["reader4@example.com"] = "452 4.2.2 Mailbox full"
    transport = transport_from_url(smtp_server.url, tmp_path, connections=3)
    assert isinstance(transport, ParallelTransport)
    with transport:
        results = transport.send_messages(messages(20))
    assert smtp_server.connections == 3
    assert [r.status for r in results] == [
        SendStatus.TEMPORARY if i == 4 else SendStatus.SENT for i in range(20)
    ]
    assert sorted(str(m.message["Subject"]) for m in smtp_server.messages) == sorted(
        str(i) for i in range(20) if i != 4
    )
    assert all(isinstance(t, SMTPTransport) and t.connection is None for t in transport.transports)


def test_a_dead_server_defers_every_message_of_every_connection(smtp_server, tmp_path) -> None:
    smtp_server.stop()
    with transport_from_url(smtp_server.url, tmp_path, connections=4) as transport:
        results = transport.send_messages(messages(9))
    assert [r.status for r in results] == [SendStatus.TEMPORARY] * 9
    assert all("refused" in r.reply for r in results)
