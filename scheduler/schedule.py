"""When each lesson is due: pure date math, no clock and no I/O (`now` is always passed in).

1. Lesson 1 is due the moment a subscription becomes active (the caller sets it to `now`).
2. Lesson k+1 is due at `send_time` in the subscriber's zone, on the first allowed local day
   (the Cadence: the course's `send_days` and the learner's own days, less `quiet_dates`) at
   least `interval_days` local days after the local date on which lesson k actually went out:
   one lesson per local day at most, none skipped, and after downtime the schedule shifts
   instead of bursting.
3. A send time that does not exist that day (DST gap) moves to the next valid minute; an
   ambiguous one (DST overlap) takes the first occurrence.
4. Resume: the next allowed send time from `now`, but never earlier than rule 2 allows.
5. Temporary failures retry after an exponential backoff with jitter, capped; the time spent
   backing off (without the jitter) is what a give-up limit is measured against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = frozenset(range(7))
# The learner's choices on the preferences page, as weekdays (0 is Monday).
CADENCES: dict[str, frozenset[int]] = {
    "daily": EVERY_DAY,
    "weekdays": frozenset(range(5)),
    "mwf": frozenset({0, 2, 4}),
}


@dataclass(frozen=True)
class Cadence:
    """The local days a lesson may go out on: `days` of the week (0 is Monday), never a date
    in `quiet`. A week always has an allowed day, so there is always a next one."""

    days: frozenset[int] = EVERY_DAY
    quiet: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.days or not self.days <= EVERY_DAY:
            raise ValueError(f"a cadence needs weekdays among 0..6, got {sorted(self.days)}")

    def allows(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.quiet

    def first_allowed(self, day: date) -> date:
        """`day`, or the first allowed day after it."""
        while not self.allows(day):
            day += timedelta(days=1)
        return day

    def narrowed(self, learner: str | None) -> Cadence:
        """The course's cadence less the days the learner does not want (a learner's choice
        that leaves no day of the course's keeps the course's days)."""
        days = self.days & CADENCES.get(learner or "daily", EVERY_DAY)
        return Cadence(days or self.days, self.quiet)


EVERY = Cadence()


@cache
def zone(name: str) -> ZoneInfo:
    """ZoneInfo by name, kept: zoneinfo's own cache holds only a few zones strongly, and a pass
    over subscribers in many zones would otherwise read zone files again and again."""
    return ZoneInfo(name)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


def local_send_instant(local_date: date, send_time: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `send_time` on `local_date` in `zone` (rule 3 for DST)."""
    wall = datetime.combine(local_date, send_time.replace(tzinfo=None, fold=0))
    candidate = wall.replace(tzinfo=zone)
    for _ in range(24 * 60):  # a gap is at most hours long
        instant = candidate.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == candidate.replace(tzinfo=None):
            return instant
        candidate = (candidate.replace(tzinfo=None) + timedelta(minutes=1)).replace(tzinfo=zone)
    raise ValueError(f"no valid local time near {wall} in {zone}")


def next_lesson_due(
    sent_at: datetime, zone: ZoneInfo, send_time: time, interval_days: int = 1,
    cadence: Cadence = EVERY,
) -> datetime:  # fmt: skip
    """Rule 2: when the lesson after the one sent at `sent_at` is due."""
    if interval_days < 1:
        raise ValueError(f"interval_days must be 1 or more, got {interval_days}")
    local_date = _aware(sent_at, "sent_at").astimezone(zone).date()
    day = cadence.first_allowed(local_date + timedelta(days=interval_days))
    return local_send_instant(day, send_time, zone)


def upcoming(
    first_due: datetime, zone: ZoneInfo, send_time: time, interval_days: int, cadence: Cadence,
    count: int,
) -> list[datetime]:  # fmt: skip
    """The due times of the next `count` lessons, the first at `first_due`, if each goes out
    when it is due (rule 2 applied lesson after lesson)."""
    times = [first_due] if count > 0 else []
    while len(times) < count:
        times.append(next_lesson_due(times[-1], zone, send_time, interval_days, cadence))
    return times


def next_send_time_after(
    now: datetime, zone: ZoneInfo, send_time: time, cadence: Cadence = EVERY
) -> datetime:
    """The first occurrence of `send_time` on an allowed day in `zone` at or after `now`."""
    day = cadence.first_allowed(_aware(now, "now").astimezone(zone).date())
    instant = local_send_instant(day, send_time, zone)
    if instant < now:
        instant = local_send_instant(cadence.first_allowed(day + timedelta(days=1)), send_time,
                                     zone)  # fmt: skip
    return instant


def snooze_until(
    now: datetime, zone: ZoneInfo, send_time: time, days: int, cadence: Cadence = EVERY
) -> datetime:
    """The first allowed send time `days` local days after today in `zone` or later: a
    learner's "pause for N days" ends there, and their next lesson is due no earlier."""
    today = _aware(now, "now").astimezone(zone).date()
    return local_send_instant(cadence.first_allowed(today + timedelta(days=days)), send_time, zone)


def resume_due(
    now: datetime, zone: ZoneInfo, send_time: time, interval_days: int,
    last_sent_at: datetime | None, cadence: Cadence = EVERY,
) -> datetime:  # fmt: skip
    """Rule 4: when the next lesson of a resumed subscription is due."""
    _aware(now, "now")
    if last_sent_at is None:
        return now
    return max(
        next_send_time_after(now, zone, send_time, cadence),
        next_lesson_due(last_sent_at, zone, send_time, interval_days, cadence),
    )


def retry_delay(
    attempt: int,
    *,
    base: timedelta = timedelta(minutes=1),
    ceiling: timedelta = timedelta(hours=6),
    jitter: float = 0.1,
    rng: random.Random,
) -> timedelta:
    """Rule 5: the wait before retry number `attempt` (1-based): base * 2**(attempt-1), capped
    at `ceiling`, then spread by +/- `jitter` so many deferred lessons do not retry at once."""
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    delay = min(ceiling, base * 2 ** min(attempt - 1, 40))
    spread = 1 + rng.uniform(-jitter, jitter)
    return delay * spread


def retry_waited(
    attempt: int, *, base: timedelta = timedelta(minutes=1), ceiling: timedelta = timedelta(hours=6)
) -> timedelta:
    """Rule 5: the backoff (without jitter) already waited when failure number `attempt` happens:
    the delays before retries 1 .. attempt-1."""
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    return sum((min(ceiling, base * 2 ** min(k - 1, 40)) for k in range(1, attempt)), timedelta())


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(minutes=1)
    ceiling: timedelta = timedelta(hours=6)
    give_up: timedelta = timedelta(days=3)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> timedelta:
        return retry_delay(attempt, base=self.base, ceiling=self.ceiling, rng=self.rng)

    def exhausted(self, attempt: int) -> bool:
        """True when failure number `attempt` comes after backing off for `give_up` in all.
        Counted in backoff, not wall-clock time, so days with no worker running use none of it."""
        return retry_waited(attempt, base=self.base, ceiling=self.ceiling) >= self.give_up
