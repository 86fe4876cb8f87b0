"""The tables of the shared sending budgets (token buckets every worker on every machine takes
from) and of the courses' circuit breaker.

They share models.Base, so Alembic and the tests see one schema.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, UTCDateTime


class Budget(Base):
    """A token bucket shared by every process on every machine: a relay's or a recipient
    domain's messages per second, or a signup limit. Times are seconds since the epoch, so
    the refill is the same arithmetic on SQLite and PostgreSQL (budgets.py)."""

    __tablename__ = "budgets"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)  # relay:host:port, ...
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[float] = mapped_column(Float)
    granted: Mapped[int] = mapped_column(Integer, default=0)  # by the last take, for RETURNING
    day: Mapped[int] = mapped_column(Integer, default=0)  # UTC days since 1970 of day_count
    day_count: Mapped[int] = mapped_column(Integer, default=0)  # taken on that day
    first_day: Mapped[int] = mapped_column(Integer, default=0)  # of a warm-up plan
    rested_until: Mapped[float] = mapped_column(Float, default=0.0)  # a failing relay rests
    failures: Mapped[int] = mapped_column(Integer, default=0)  # rests in a row


class CourseHold(Base):
    """A course whose sending is paused by its circuit breaker, or was and has been resumed
    (then only sends after `resumed_at` count towards tripping it again)."""

    __tablename__ = "course_holds"

    course_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    held: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(500), default="")
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
