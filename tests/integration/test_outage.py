"""A database outage while a batch is on the wire: its results are recorded once the database
is back (within the lease), so no lesson goes out twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from drip.models import Delivery, DeliveryState

from conftest import T0, make_runtime
from helpers import ALICE, BOB, CAROL, subscribe
from proxy import Proxy, postgres_proxy  # noqa: F401  (fixture)


# SQLite is a file in this process: it has no outage to survive.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_results_wait_for_the_database_to_come_back(
    database_url: str,
    tmp_path: Path,
    smtp_server,
    postgres_proxy: Proxy,  # noqa: F811
) -> None:
    through_proxy = postgres_proxy.route(database_url)
    rt = make_runtime(through_proxy, tmp_path, smtp_url=smtp_server.url)
    slept: list[float] = []
    try:
        ids = [subscribe(rt, email) for email in (ALICE, BOB, CAROL)]

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            time.sleep(seconds)  # real time: the database comes back on its own clock

        rt.dispatcher.sleep = sleep
        smtp_server.stall_seconds = 1.0  # the batch is on the wire when the database goes

        def outage() -> None:
            smtp_server.wait_for(1)
            postgres_proxy.cut()
            time.sleep(4)  # an outage of a few seconds, longer than one quick reconnect
            postgres_proxy.restore()

        cutter = threading.Thread(target=outage)
        cutter.start()
        result = rt.dispatcher.run_pass(T0)
        cutter.join()
        assert result.sent == 3
        assert len(slept) >= 2, "recorded without waiting for the database to come back"
        assert rt.dispatcher.run_pass(T0).total == 0, "a recorded lesson was due again"
        with rt.sessions() as session:
            states = session.scalars(
                select(Delivery.state).where(Delivery.subscription_id.in_(ids))
            ).all()
        assert states == [DeliveryState.SENT] * 3
        assert len(smtp_server.messages) == 3
    finally:
        rt.close()
