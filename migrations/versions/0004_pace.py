"""The learner sets the pace: a snooze that survives a new time of day, the learner's own
cadence, each delivery's stable lesson id (so a course can change under live subscribers), and
the pace actions taken from emails and the preferences page (counted in stats and metrics), and
whether a subscription is going through lessons it has received again (after a restart or a
jump: those are sent again; otherwise a lesson already received is passed over).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from drip import models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

utc = models.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("snoozed_until", utc, nullable=True))
        batch.add_column(sa.Column("cadence", sa.String(20), nullable=True))
        batch.add_column(sa.Column("rewalk", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("lesson_id", sa.String(100), nullable=True))
    op.create_table(
        "pace_actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscription_id", sa.Integer,
                  sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("course_slug", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("lesson", sa.Integer, nullable=False),
        sa.Column("target", sa.Integer, nullable=False),
        sa.Column("created_at", utc, nullable=False),
    )  # fmt: skip
    op.create_index("ix_pace_actions_subscription_id", "pace_actions", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_pace_actions_subscription_id", "pace_actions")
    op.drop_table("pace_actions")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("lesson_id")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("rewalk")
        batch.drop_column("cadence")
        batch.drop_column("snoozed_until")
