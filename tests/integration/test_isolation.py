"""One subscriber's data fails that subscriber's delivery alone: a batch of 500 with five
addresses the relay cannot take sends the other 495 and stores why the five did not go."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from drip.models import Delivery, DeliveryState, Subscriber

from conftest import T0, make_runtime
from fleet import seed

POISONED = {7: "josé@example.com", 99: "ü@example.de", 250: "名前@example.jp",
            400: "zoë@example.com", 499: "😀@example.com"}  # fmt: skip


def test_five_poisoned_subscribers_do_not_stop_the_other_495(
    database_url: str, tmp_path: Path, smtp_server
) -> None:
    seed(database_url, 500, "bone-health", T0)
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url)  # no SMTPUTF8 offered
    try:
        with rt.sessions() as session, session.begin():
            for sub_id, address in POISONED.items():
                session.execute(
                    update(Subscriber).where(Subscriber.id == sub_id)
                    .values(email=address, email_key=address.casefold())
                )  # fmt: skip
        result = rt.dispatcher.run_pass(T0)
        assert result.sent == 495
        assert result.failed + result.bounced == 5
        assert len(smtp_server.messages) == 495
        with rt.sessions() as session:
            rows = session.execute(
                select(Delivery.subscription_id, Delivery.state, Delivery.smtp_reply)
            ).all()
        not_sent = {sub_id: (state, reply) for sub_id, state, reply in rows
                    if state is not DeliveryState.SENT}  # fmt: skip
        assert set(not_sent) == set(POISONED)
        for state, reply in not_sent.values():
            assert state in (DeliveryState.FAILED, DeliveryState.BOUNCED) and reply, reply
        assert DeliveryState.SENDING not in {state for _, state, _ in rows}
        assert rt.dispatcher.run_pass(T0).total == 0, "a poisoned delivery came round again"
    finally:
        rt.close()
