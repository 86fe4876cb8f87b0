"""The receiver writes what comes in at once in shared transactions, and speaks LMTP when told:
messages over parallel connections are each answered only once stored, each event once; a
batch that cannot be stored is stored message by message; LMTP answers every recipient."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text

from drip import subscriptions
from drip.models import FeedbackEvent, SubscriptionState
from drip.receiver import Intake, ReturnedMailServer
from drip.runtime import Runtime

from conftest import T0
from fleet import start_receiver, stop
from helpers import ALICE, BOB, returned_sample, send_returned, subscription
from smtp_server import free_port

LATER = T0 + timedelta(days=3)
PEOPLE = [f"reader{i}@example.com" for i in range(12)]


def server_for(runtime: Runtime, lmtp: bool = False, intake: Intake | None = None):
    server = ReturnedMailServer(intake or Intake(runtime, clock=lambda: LATER), "127.0.0.1",
                                free_port(), max_bytes=200_000, lmtp=lmtp)  # fmt: skip
    server.start()
    return server


@pytest.fixture
def lmtp(runtime: Runtime) -> Iterator[ReturnedMailServer]:
    server = server_for(runtime, lmtp=True)
    yield server
    server.stop()


def bounces_of(runtime: Runtime, smtp_server, addresses: list[str]) -> list[tuple[str, bytes]]:
    """Subscribe each address, send lesson 1, and build the bounce of each: (VERP, DSN)."""
    with runtime.sessions() as session, session.begin():
        for address in addresses:
            subscriptions.subscribe(session, runtime.course("bone-health"), address, now=T0,
                                    name="Reader", timezone="UTC", confirmed=True)  # fmt: skip
    runtime.dispatcher.run_pass(T0)
    found = []
    for address in addresses:
        sent = next(m for m in smtp_server.messages if m.envelope_recipients == [address])
        dsn = returned_sample("postfix_user_unknown.eml", sent.envelope_from,
                              str(sent.message["Message-ID"]))  # fmt: skip
        found.append((sent.envelope_from, dsn))
    return found


def stored(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(FeedbackEvent)) or 0


def lmtp_send(port: int, data: bytes, recipients: list[str]) -> list[int]:
    """A message to each recipient through smtplib's LMTP client: the reply codes to DATA, one
    per recipient (RFC 2033; smtplib's own sendmail reads only the first)."""
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
        assert client.ehlo("mx.example.org")[0] == 250  # LHLO: smtplib.LMTP says so
        assert client.mail("")[0] == 250
        for recipient in recipients:
            assert client.rcpt(recipient)[0] == 250
        codes = [client.data(re.sub(rb"\r?\n", b"\r\n", data))[0]]
        return codes + [client.getreply()[0] for _ in recipients[1:]]


def test_messages_over_parallel_connections_share_transactions(
    runtime: Runtime, smtp_server
) -> None:
    bounces = bounces_of(runtime, smtp_server, PEOPLE)
    commits: list[int] = []
    event.listen(runtime.engine, "commit", lambda conn: commits.append(1))
    server = server_for(runtime)
    try:
        with ThreadPoolExecutor(len(bounces)) as pool:
            replies = list(pool.map(lambda b: send_returned(server.port, b[1], b[0]), bounces))
            again = list(pool.map(lambda b: send_returned(server.port, b[1], b[0]), bounces))
    finally:
        server.stop()
    assert [code for code, _ in replies + again] == [250] * (2 * len(PEOPLE))
    assert stored(runtime) == len(PEOPLE)  # the second round changed nothing
    assert len(commits) < 2 * len(PEOPLE)  # some messages went together
    for address in PEOPLE:
        with runtime.sessions() as session:
            sub = session.scalar(text("SELECT state FROM subscriptions s JOIN subscribers r "
                                      "ON r.id = s.subscriber_id WHERE r.email = :a"),
                                 {"a": address})  # fmt: skip
        assert sub == SubscriptionState.BOUNCED.value


def test_a_sender_that_hangs_up_while_waiting_stops_nothing(runtime: Runtime, smtp_server) -> None:
    """Its message is stored all the same (a retry is then a duplicate); the writer goes on."""
    (first, second) = bounces_of(runtime, smtp_server, [ALICE, BOB])
    server = server_for(runtime)
    try:
        gone: Future[object] = Future()
        gone.cancel()  # as aiosmtpd cancels the handler of a connection that was lost
        server.handler.waiting.put((first[1], [first[0]], gone))
        assert send_returned(server.port, second[1], second[0])[0] == 250
    finally:
        server.stop()
    assert stored(runtime) == 2


class FailingTogether(Intake):
    """An intake whose transactions of more than one message fail, as if one message of the
    batch could not be stored: each must then be stored alone."""

    def store(self, found):
        if len({feedback.subscription_id for feedback in found}) > 1:
            raise RuntimeError("the batch's transaction failed")
        return super().store(found)


def test_a_batch_that_fails_is_stored_message_by_message(runtime: Runtime, smtp_server) -> None:
    bounces = bounces_of(runtime, smtp_server, [ALICE, BOB])
    intake = FailingTogether(runtime, clock=lambda: LATER)
    results = intake.take_all([(dsn, [verp]) for verp, dsn in bounces])
    assert [getattr(r, "stored", r) for r in results] == [1, 1]
    assert stored(runtime) == 2


def test_a_message_that_cannot_be_stored_fails_alone(runtime: Runtime, smtp_server, engine) -> None:
    ((verp, dsn),) = bounces_of(runtime, smtp_server, [ALICE])
    kept = returned_sample("not_bounce_reader_reply.eml", verp, "<x@example.org>")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback_events RENAME TO feedback_events_away"))
    results = Intake(runtime, clock=lambda: LATER).take_all([(dsn, [verp]), (kept, [verp])])
    assert isinstance(results[0], Exception) and results[1].kept is not None  # type: ignore[union-attr]


def test_lmtp_answers_each_recipient(runtime: Runtime, smtp_server, lmtp) -> None:
    ((verp, dsn),) = bounces_of(runtime, smtp_server, [ALICE])
    assert lmtp_send(lmtp.port, dsn, [verp, "postmaster@example.org"]) == [250, 250]
    assert subscription(runtime, 1).state is SubscriptionState.BOUNCED
    assert lmtp_send(lmtp.port, dsn, [verp]) == [250]  # again: nothing more stored
    kept = returned_sample("not_bounce_reader_reply.eml", verp, "<x@example.org>")
    assert lmtp_send(lmtp.port, kept, [verp, BOB, ALICE]) == [250, 250, 250]
    assert stored(runtime) == 1
    assert len(list(runtime.settings.bounces_dir.glob("*.eml"))) == 1


def test_lmtp_refuses_helo_and_tells_every_recipient_to_retry(
    runtime: Runtime, smtp_server, lmtp, engine
) -> None:
    ((verp, dsn),) = bounces_of(runtime, smtp_server, [ALICE])
    with smtplib.SMTP("127.0.0.1", lmtp.port, timeout=30) as client:
        assert client.helo("mx.example.org")[0] == 500  # LMTP speaks LHLO only
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback_events RENAME TO feedback_events_away"))
    assert lmtp_send(lmtp.port, dsn, [verp, "postmaster@example.org"]) == [451, 451]
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback_events_away RENAME TO feedback_events"))
    assert lmtp_send(lmtp.port, dsn, [verp]) == [250]  # the retry
    assert subscription(runtime, 1).state is SubscriptionState.BOUNCED


def test_lmtp_takes_bounces_while_the_dispatcher_sends(
    runtime: Runtime, smtp_server, lmtp: ReturnedMailServer
) -> None:
    bounces = bounces_of(runtime, smtp_server, PEOPLE)
    with ThreadPoolExecutor(2) as pool:
        posted = [pool.submit(lmtp_send, lmtp.port, dsn, [verp]) for verp, dsn in bounces]
        runtime.dispatcher.run_pass(T0 + timedelta(days=2))  # lesson 2, meanwhile
        codes = [done.result() for done in posted]
    assert codes == [[250]] * len(PEOPLE)
    assert stored(runtime) == len(PEOPLE)
    assert {subscription(runtime, i).state for i in range(1, len(PEOPLE) + 1)} == {
        SubscriptionState.BOUNCED
    }
    smtp_server.reset()
    assert runtime.dispatcher.run_pass(T0 + timedelta(days=5)).sent == 0


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.binary(max_size=2000), recipients=st.lists(
    st.from_regex(r"[a-z0-9.+-]{1,20}@[a-z0-9-]{1,10}\.example", fullmatch=True),
    min_size=1, max_size=3))  # fmt: skip
def test_lmtp_takes_anything_without_a_traceback(
    runtime: Runtime, lmtp: ReturnedMailServer, data: bytes, recipients: list[str]
) -> None:
    data = data.replace(b"\r", b"").replace(b"\n.", b"\n..")
    codes = lmtp_send(lmtp.port, b"Subject: ?\n\n" + data, recipients)
    assert codes == [250] * len(recipients)


def test_drip_bounces_serve_speaks_lmtp_when_told(
    database_url: str, tmp_path: Path, runtime: Runtime, smtp_server
) -> None:
    ((verp, dsn),) = bounces_of(runtime, smtp_server, [ALICE])
    process, port = start_receiver(database_url, tmp_path, bounce_lmtp="true",
                                   secret_key=runtime.settings.secret_key)  # fmt: skip
    try:
        assert lmtp_send(port, dsn, [verp, "postmaster@example.org"]) == [250, 250]
    finally:
        log = stop(process)
    assert "(LMTP)" in log
    assert subscription(runtime, 1).state is SubscriptionState.BOUNCED
