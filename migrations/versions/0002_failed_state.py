"""FAILED becomes a state of its own: a subscription whose next lesson was given up on.

Until now such a subscription was ACTIVE with no next due time. The live-enrolment index now
counts failed subscriptions as live (one may be retried), so it is rebuilt with that predicate.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIVE_BEFORE = "state IN ('pending', 'active', 'paused')"
LIVE_AFTER = "state IN ('pending', 'active', 'paused', 'failed')"


def _live_index(predicate: str) -> None:
    op.drop_index("uq_subscriptions_live", "subscriptions")
    op.create_index(
        "uq_subscriptions_live",
        "subscriptions",
        ["subscriber_id", "course_slug"],
        unique=True,
        sqlite_where=sa.text(predicate),
        postgresql_where=sa.text(predicate),
    )


def upgrade() -> None:
    op.execute(
        "UPDATE subscriptions SET state = 'failed' WHERE state = 'active' AND next_due_at IS NULL"
    )
    _live_index(LIVE_AFTER)


def downgrade() -> None:
    op.execute("UPDATE subscriptions SET state = 'active' WHERE state = 'failed'")
    _live_index(LIVE_BEFORE)
