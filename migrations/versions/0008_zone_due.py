"""An index on subscriptions (timezone, next_due_at, id): while a relay is capped, the claim
reads each zone's earliest due rows in order instead of ranking every due row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_subscriptions_zone_due", "subscriptions", ["timezone", "next_due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_zone_due", "subscriptions")
