"""Erasure removes a person from every table but the outbox's pending message that tells other
systems of it; the counts stay. Export holds everything that erasure removes."""

from __future__ import annotations

from sqlalchemy import MetaData, String, Text, select

from drip import privacy, reports
from drip.models import FeedbackKind, Subscription, SubscriptionState
from drip.runtime import Runtime

from conftest import T0
from helpers import ALICE, BOB, subscribe
from webhook_receiver import Receiver, add_endpoint


def rows_naming(rt: Runtime, text: str) -> dict[str, list[dict]]:
    """Every row of every table with a text column that holds `text`."""
    found: dict[str, list[dict]] = {}
    metadata = MetaData()
    metadata.reflect(rt.engine)
    with rt.engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in conn.execute(select(table)).mappings():
                if any(text.lower() in str(row[c.name] or "").lower() for c in columns):
                    found.setdefault(table.name, []).append(dict(row))
    return found


def test_erasure_leaves_no_trace_but_the_counts(runtime: Runtime, receiver: Receiver) -> None:
    add_endpoint(runtime, receiver)
    sub_id = subscribe(runtime, ALICE)
    subscribe(runtime, BOB)
    course = runtime.course("bone-health")
    with runtime.write_sessions() as session, session.begin():
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        privacy.record_consent(session, sub, course, T0, source="web", ip="198.51.100.7",
                               user_agent="Firefox")  # fmt: skip
    runtime.dispatcher.run_pass(T0)
    with runtime.write_sessions() as session, session.begin():
        report = reports.Report(FeedbackKind.SOFT_BOUNCE, ALICE, "dsn", "k1", "4.2.2",
                                f"<{ALICE}>: mailbox full", delivery=(sub_id, 1))  # fmt: skip
        reports.record(session, report, T0, runtime.courses)
    runtime.webhooks.run_pass(T0)
    with runtime.sessions() as session:
        exported = privacy.export(session, ALICE)
    assert exported is not None and exported["reports"][0]["status"] == "4.2.2"
    assert exported["consents"][0]["ip"] == "198.51.100.7"
    with runtime.write_sessions() as session, session.begin():
        erased = privacy.erase(session, ALICE, T0, runtime.courses)
    assert erased is not None and (erased.ended, erased.kept) == (1, 1)
    left = rows_naming(runtime, ALICE)
    assert list(left) == ["webhook_messages"]  # the unsubscribe, on its way
    (pending,) = left["webhook_messages"]
    assert pending["delivered_at"] is None and pending["event_type"] == "subscriber.unsubscribed"
    assert rows_naming(runtime, "198.51.100.7") == {}
    assert BOB in str(rows_naming(runtime, BOB))  # the others are untouched
    with runtime.sessions() as session:
        gone = session.get(Subscription, sub_id)
        assert gone is not None and gone.state is SubscriptionState.UNSUBSCRIBED
        assert gone.current_day == 1  # the counts stay
