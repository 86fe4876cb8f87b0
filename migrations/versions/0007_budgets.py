"""Sending budgets shared by every worker (token buckets per relay, per recipient domain and for
the signup limits, daily counts, relays' rests) and the courses the circuit breaker holds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from drip import models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

utc = models.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("refilled_at", sa.Float, nullable=False),
        sa.Column("granted", sa.Integer, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("day_count", sa.Integer, nullable=False),
        sa.Column("first_day", sa.Integer, nullable=False),
        sa.Column("rested_until", sa.Float, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    op.create_table(
        "course_holds",
        sa.Column("course_slug", sa.String(100), primary_key=True),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("held_at", utc, nullable=True),
        sa.Column("resumed_at", utc, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("course_holds")
    op.drop_table("budgets")
