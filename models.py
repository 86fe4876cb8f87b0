"""The database: subscribers, their subscriptions (the membership) and deliveries (the receipts).

Times are stored as naive UTC and handed out as aware UTC, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
import logging
import secrets
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Time,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    WriteOnlyMapped,
    mapped_column,
    relationship,
    sessionmaker,
)
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger("drip.db")
APPLICATION_NAME = "drip"  # shown in pg_stat_activity, so an operator can tell drip's sessions


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the column: one meaning on every database."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class SubscriptionState(enum.StrEnum):
    PENDING = "pending"  # awaiting double opt-in
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    FAILED = "failed"  # its next lesson was given up on after retrying too long; `drip retry`


class DeliveryState(enum.StrEnum):
    SENDING = "sending"  # claimed; the SMTP conversation may be under way
    SENT = "sent"
    DEFERRED = "deferred"  # a temporary failure; retried later
    FAILED = "failed"  # given up after retrying too long
    BOUNCED = "bounced"  # refused permanently for this recipient


class SuppressionReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"  # the mailbox does not exist, or soft bounces too many times
    COMPLAINT = "complaint"  # the person pressed "spam"
    MANUAL = "manual"  # the operator's choice (drip suppress add, or an imported list)


class FeedbackKind(enum.StrEnum):
    """What came back about a message the relay had accepted."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"


LIVE_STATES = (
    SubscriptionState.PENDING,
    SubscriptionState.ACTIVE,
    SubscriptionState.PAUSED,
    SubscriptionState.FAILED,
)
LIVE_STATES_SQL = "state IN ('pending', 'active', 'paused', 'failed')"


def _enum(cls: type[enum.StrEnum]) -> SAEnum:
    return SAEnum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda members: [m.value for m in members],
    )


def new_token() -> str:
    """192 random bits, URL-safe: unguessable, so the token itself is the credential."""
    return secrets.token_urlsafe(24)


class Base(DeclarativeBase):
    pass


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Python's casefold, not SQL lower(): SQLite's lower() only folds ASCII.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="subscriber")

    @staticmethod
    def key_for(email: str) -> str:
        return email.strip().casefold()


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        # One live enrolment per course; ended ones stay as history, and a re-subscribe is new.
        Index(
            "uq_subscriptions_live",
            "subscriber_id",
            "course_slug",
            unique=True,
            sqlite_where=text(LIVE_STATES_SQL),
            postgresql_where=text(LIVE_STATES_SQL),
        ),
        # "What is due now" reads only the due rows: state equality, then a range on next_due_at.
        Index("ix_subscriptions_due", "state", "next_due_at"),
        # The capped claim reads each zone's earliest due rows in order (scheduler/fair.py).
        Index("ix_subscriptions_zone_due", "timezone", "next_due_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    course_slug: Mapped[str] = mapped_column(String(100))
    state: Mapped[SubscriptionState] = mapped_column(_enum(SubscriptionState))
    current_day: Mapped[int] = mapped_column(Integer, default=0)  # the last lesson sent
    timezone: Mapped[str] = mapped_column(String(64))
    send_time: Mapped[time | None] = mapped_column(Time, nullable=True)  # None: the course's
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0)  # for the current lesson
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)  # in a row, reported later
    confirm_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    unsubscribe_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    manage_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # no lesson before this instant (a snooze from a pace link); a new time of day keeps it
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cadence: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None: the course's
    # going through received lessons again (a restart, a jump): they are sent, not passed over
    rewalk: Mapped[bool] = mapped_column(Boolean, default=False)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="subscription")
    # written, never loaded whole: subscriptions.apply adds one row per change of state
    changes: WriteOnlyMapped[StateChange] = relationship(passive_deletes=True)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "day", name="uq_deliveries_subscription_day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    day: Mapped[int] = mapped_column(Integer)
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState))
    message_id: Mapped[str] = mapped_column(String(255))
    smtp_reply: Mapped[str] = mapped_column(String(500), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lesson_id: Mapped[str | None] = mapped_column(String(100), nullable=True)  # Lesson.id

    subscription: Mapped[Subscription] = relationship(back_populates="deliveries")


class PaceAction(Base):
    """A learner's pace action (next lesson now, snooze, restart, jump), taken once: counted by
    `drip stats` and /metrics per course and per lesson it was taken from."""

    __tablename__ = "pace_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    course_slug: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    lesson: Mapped[int] = mapped_column(Integer)  # the last lesson received when it was taken
    target: Mapped[int] = mapped_column(Integer)  # the lesson due next, or the days snoozed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Suppression(Base):
    """An address drip never sends to, whatever it subscribes to."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_key: Mapped[str] = mapped_column(String(320), unique=True)  # Subscriber.key_for
    email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason))
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedbackEvent(Base):
    """A bounce, complaint or delivery report received after the relay accepted a message;
    `key` identifies the event, so the same report delivered twice is stored (and acted on)
    once."""

    __tablename__ = "feedback_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[FeedbackKind] = mapped_column(_enum(FeedbackKind))
    source: Mapped[str] = mapped_column(String(20))  # dsn, arf, smtp, ses, postmark, ...
    recipient: Mapped[str] = mapped_column(String(320))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(20), default="")
    diagnostic: Mapped[str] = mapped_column(String(500), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SeenToken(Base):
    """A webhook's one-time token (Mailgun's), kept until its signature's window has passed,
    so a replayed request is refused."""

    __tablename__ = "seen_tokens"

    token: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StateChange(Base):
    """A subscription's change of state: when, from what to what, on which event and by whom
    (an operator's address, "web", "cli"; empty: the service itself)."""

    __tablename__ = "state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    previous: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(30))
    by: Mapped[str] = mapped_column(String(320), default="")


class Operator(Base):
    """Someone who may sign in to the console (`drip admin add`); the password is an argon2id
    hash, never the password."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)  # Subscriber.key_for
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OperatorAction(Base):
    """What an operator did (or tried, when refused), kept after the operator is removed."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator: Mapped[str] = mapped_column(String(320))  # the address, as it was then
    action: Mapped[str] = mapped_column(String(40))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    detail: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


IMMEDIATE = {"drip_sqlite_immediate": True}


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout and explicit BEGINs, so claims can
    take the write lock up front (BEGIN IMMEDIATE) and a second process waits instead of failing.
    PostgreSQL gets pre-ping (a restarted server costs one reconnect, not an error) and a log line
    for every lost connection."""
    if not url.startswith("sqlite"):
        if "application_name" not in url:
            kwargs.setdefault("connect_args", {}).setdefault("application_name", APPLICATION_NAME)
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
        event.listen(engine, "handle_error", _log_disconnect)
        return engine
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("drip_sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _log_disconnect(context: ExceptionContext) -> None:
    if context.is_disconnect:
        when = "found on checkout" if context.is_pre_ping else "in use"
        log.warning("database connection lost (%s): %s; reconnecting", when,
                    " ".join(str(context.original_exception).split())[:200])  # fmt: skip


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions take SQLite's write lock at BEGIN (no-op elsewhere)."""
    return engine.execution_options(**IMMEDIATE)


def insert_new(
    session: Session, table: Table, rows: list[dict[str, Any]], key: Column[Any]
) -> set[Any]:
    """Insert, in one statement, the rows whose unique `key` is not taken yet (ON CONFLICT DO
    NOTHING on SQLite and PostgreSQL alike); the keys of the rows inserted. A row stored
    meanwhile by another transaction is skipped, not an error."""
    if not rows:
        return set()
    statement = _insert_new_statement(session.get_bind().dialect.name, table, key)
    # Parameters apart from the statement: compiled once, sent as one multi-row INSERT.
    return set(session.execute(statement, rows).scalars())


_INSERT_NEW: dict[tuple[str, Table, str], Any] = {}  # by column name: a Column's == builds SQL


def _insert_new_statement(dialect: str, table: Table, key: Column[Any]) -> Any:
    """The INSERT .. ON CONFLICT DO NOTHING RETURNING of `insert_new`, built once per table:
    building it is most of the statement's cost in Python for a one-row insert."""
    found = _INSERT_NEW.get((dialect, table, key.name))
    if found is None:
        build = postgresql.insert if dialect == "postgresql" else sqlite.insert
        found = build(table).on_conflict_do_nothing(index_elements=[key]).returning(key)
        _INSERT_NEW[(dialect, table, key.name)] = found
    return found
