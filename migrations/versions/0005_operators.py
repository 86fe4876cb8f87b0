"""The operator's console: operator accounts, the log of their actions, and every change of a
subscription's state (for the console's timeline).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from drip import models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

utc = models.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("password_changed_at", utc, nullable=False),
    )
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("operator", sa.String(320), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subscription_id", sa.Integer,
                  sa.ForeignKey("subscriptions.id", ondelete="SET NULL"), nullable=True),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("at", utc, nullable=False),
    )  # fmt: skip
    op.create_index("ix_operator_actions_subscription_id", "operator_actions", ["subscription_id"])
    op.create_table(
        "state_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscription_id", sa.Integer,
                  sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", utc, nullable=False),
        sa.Column("previous", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("event", sa.String(30), nullable=False),
        sa.Column("by", sa.String(320), nullable=False),
    )  # fmt: skip
    op.create_index("ix_state_changes_subscription_id", "state_changes", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_state_changes_subscription_id", "state_changes")
    op.drop_table("state_changes")
    op.drop_index("ix_operator_actions_subscription_id", "operator_actions")
    op.drop_table("operator_actions")
    op.drop_table("operators")
