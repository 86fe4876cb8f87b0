"""What comes back after the relay accepted a message: feedback events, a suppression list,
a count of soft bounces in a row per subscription, and the webhook tokens already seen.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from drip import models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

utc = models.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("created_at", utc, nullable=False),
    )
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subscription_id", sa.Integer,
                  sa.ForeignKey("subscriptions.id", ondelete="SET NULL"), nullable=True),
        sa.Column("delivery_id", sa.Integer,
                  sa.ForeignKey("deliveries.id", ondelete="SET NULL"), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("diagnostic", sa.String(500), nullable=False),
        sa.Column("received_at", utc, nullable=False),
    )  # fmt: skip
    op.create_index("ix_feedback_events_subscription_id", "feedback_events", ["subscription_id"])
    op.create_table(
        "seen_tokens",
        sa.Column("token", sa.String(128), primary_key=True),
        sa.Column("expires_at", utc, nullable=False),
    )
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("soft_bounces", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("soft_bounces")
    op.drop_table("seen_tokens")
    op.drop_index("ix_feedback_events_subscription_id", "feedback_events")
    op.drop_table("feedback_events")
    op.drop_table("suppressions")
