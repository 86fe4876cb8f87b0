"""Upgrading a database that holds subscriptions in every state, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from drip import migrations
from drip.models import make_engine

from conftest import POSTGRES_URL, T0

# (state at revision 0001, next_due_at set?) -> the state after the upgrade
ROWS = [
    ("pending", False, "pending"),
    ("active", True, "active"),
    ("active", False, "failed"),  # given up on: active with nothing due, before 0002
    ("paused", False, "paused"),
    ("completed", False, "completed"),
    ("unsubscribed", False, "unsubscribed"),
    ("bounced", False, "bounced"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    schema = f"drip_migrate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def at_revision(url: str, revision: str) -> tuple[Engine, datetime]:
    """The database at `revision`, with one subscriber; T0 as the naive time rows store."""
    engine = make_engine(url)
    migrations.upgrade(engine, revision)
    naive = T0.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO subscribers (id, email, email_key, name, created_at) "
                 "VALUES (1, 'a@example.com', 'a@example.com', '', :t)"), {"t": naive},
        )  # fmt: skip
    return engine, naive


def test_upgrade_turns_given_up_subscriptions_into_failed(empty_url: str) -> None:
    engine, naive = at_revision(empty_url, "0001")
    with engine.begin() as conn:
        for n, (state, due, _) in enumerate(ROWS, start=1):
            conn.execute(
                text("INSERT INTO subscriptions (id, subscriber_id, course_slug, state, "
                     "current_day, timezone, next_due_at, retry_attempts, confirm_token, "
                     "unsubscribe_token, manage_token, created_at) VALUES (:id, 1, :course, "
                     ":state, 2, 'UTC', :due, 3, :c, :u, :m, :t)"),
                {"id": n, "course": f"course-{n}", "state": state,
                 "due": naive + timedelta(days=1) if due else None, "c": f"c{n}", "u": f"u{n}",
                 "m": f"m{n}", "t": naive},
            )  # fmt: skip
    migrations.upgrade(engine)
    with engine.connect() as conn:
        after: dict[int, str] = dict(
            conn.execute(text("SELECT id, state FROM subscriptions")).all()
        )
        kept = conn.execute(text("SELECT current_day, retry_attempts FROM subscriptions")).all()
    assert after == {n: expected for n, (_, _, expected) in enumerate(ROWS, start=1)}
    assert set(kept) == {(2, 3)}, "the upgrade changed nothing but the state"
    # a failed subscription still counts as live: there is no second live one of its course
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
                text("INSERT INTO subscriptions (subscriber_id, course_slug, state, current_day,"
                     " timezone, retry_attempts, confirm_token, unsubscribe_token, manage_token,"
                     " created_at) VALUES (1, 'course-3', 'pending', 0, 'UTC', 0, 'x', 'y', 'z',"
                     " :t)"), {"t": naive},
            )  # fmt: skip
    migrations.upgrade(engine)  # again: nothing to do
    engine.dispose()


def test_0004_keeps_subscriptions_and_goes_back(empty_url: str) -> None:
    """Pace columns arrive with their defaults on existing rows, and the downgrade removes them."""
    engine, naive = at_revision(empty_url, "0003")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO subscriptions (id, subscriber_id, course_slug, state, current_day,"
                 " timezone, retry_attempts, confirm_token, unsubscribe_token, manage_token,"
                 " created_at) VALUES (1, 1, 'c', 'active', 2, 'UTC', 0, 'x', 'y', 'z', :t)"),
            {"t": naive},
        )  # fmt: skip
    migrations.upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT current_day, rewalk, cadence, snoozed_until "
                                "FROM subscriptions")).one()  # fmt: skip
    assert (row.current_day, bool(row.rewalk)) == (2, False)
    assert (row.cadence, row.snoozed_until) == (None, None)
    command.downgrade(migrations.alembic_config(engine), "0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_day FROM subscriptions")).scalar() == 2
    engine.dispose()


def test_the_console_tables_come_and_go_with_revision_0005(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrations.upgrade(engine)
    console_tables = {"operators", "operator_actions", "state_changes"}
    assert console_tables <= set(inspect(engine).get_table_names())
    command.downgrade(migrations.alembic_config(engine), "0004")
    assert not console_tables & set(inspect(engine).get_table_names())
    migrations.upgrade(engine)
    assert console_tables <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_the_api_tables_come_and_go(empty_url: str) -> None:
    """0006 (API keys, consents, the webhook outbox) upgrades, downgrades and upgrades again."""
    engine = make_engine(empty_url)
    migrations.upgrade(engine)
    tables = {"api_keys", "consents", "webhook_endpoints", "webhook_messages", "webhook_attempts"}
    assert tables <= set(inspect(engine).get_table_names())
    command.downgrade(migrations.alembic_config(engine), "0005")
    assert not tables & set(inspect(engine).get_table_names())
    migrations.upgrade(engine)
    assert tables <= set(inspect(engine).get_table_names())
    engine.dispose()
