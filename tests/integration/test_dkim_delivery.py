"""With DKIM configured, what the SMTP server receives carries signatures that verify: lessons
and confirmation emails, over parallel connections, through the real dispatcher."""

from __future__ import annotations

from pathlib import Path

import dkim

from drip import subscriptions
from drip.runtime import Runtime
from drip.send import ParallelTransport
from drip.signing import SigningTransport

from conftest import T0, DKIMKeys, make_runtime
from helpers import ALICE, BOB, CAROL, subscribe


def test_what_the_server_receives_verifies(
    database_url: str, tmp_path: Path, smtp_server, dkim_keys: DKIMKeys
) -> None:
    rt: Runtime = make_runtime(
        database_url, tmp_path, smtp_url=smtp_server.url, smtp_connections=2,
        **dkim_keys.settings(),
    )  # fmt: skip
    try:
        transport = rt.transport
        assert isinstance(transport, ParallelTransport)
        assert all(isinstance(t, SigningTransport) for t in transport.transports)
        for email in (ALICE, BOB):
            subscribe(rt, email)
        pending = subscribe(rt, CAROL, confirmed=False)
        with rt.sessions() as session, session.begin():
            sub = session.get(subscriptions.Subscription, pending)
            assert sub is not None
            subscriptions.apply(sub, subscriptions.Event.REQUEST, rt.course("bone-health"), T0)
        result = rt.dispatcher.run_pass(T0)
    finally:
        rt.close()
    assert (result.sent, result.confirmations) == (2, 1), result
    received = smtp_server.wait_for(3)
    assert sorted(m.envelope_recipients[0] for m in received) == sorted([ALICE, BOB, CAROL])
    subjects = [str(m.message["Subject"]) for m in received]
    assert any(s.startswith("Confirm your subscription") for s in subjects), subjects
    for message in received:
        assert message.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
        for index in (0, 1):
            assert dkim.DKIM(message.data).verify(idx=index, dnsfunc=dkim_keys.dnsfunc), (
                message.envelope_recipients,
                index,
            )


def test_without_dkim_settings_nothing_is_signed(runtime: Runtime, smtp_server) -> None:
    subscribe(runtime, ALICE)
    assert runtime.signer is None
    assert runtime.dispatcher.run_pass(T0).sent == 1
    assert b"DKIM-Signature" not in smtp_server.wait_for(1)[0].data
