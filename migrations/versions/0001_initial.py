"""Subscribers, subscriptions and deliveries.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from drip import models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

utc = models.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", utc, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("course_slug", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("current_day", sa.Integer, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("send_time", sa.Time, nullable=True),
        sa.Column("next_due_at", utc, nullable=True),
        sa.Column("last_sent_at", utc, nullable=True),
        sa.Column("leased_until", utc, nullable=True),
        sa.Column("retry_attempts", sa.Integer, nullable=False),
        sa.Column("confirm_token", sa.String(64), nullable=False, unique=True),
        sa.Column("unsubscribe_token", sa.String(64), nullable=False, unique=True),
        sa.Column("manage_token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("confirmed_at", utc, nullable=True),
        sa.Column("ended_at", utc, nullable=True),
    )
    live = sa.text("state IN ('pending', 'active', 'paused')")  # as of this revision
    op.create_index(
        "uq_subscriptions_live",
        "subscriptions",
        ["subscriber_id", "course_slug"],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    op.create_index("ix_subscriptions_due", "subscriptions", ["state", "next_due_at"])
    op.create_index("ix_subscriptions_subscriber_id", "subscriptions", ["subscriber_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subscription_id",
            sa.Integer,
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("smtp_reply", sa.String(500), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("sent_at", utc, nullable=True),
        sa.UniqueConstraint("subscription_id", "day", name="uq_deliveries_subscription_day"),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_index("ix_subscriptions_subscriber_id", "subscriptions")
    op.drop_index("uq_subscriptions_live", "subscriptions")
    op.drop_index("ix_subscriptions_due", "subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("subscribers")
