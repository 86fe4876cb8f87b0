"""The one schedule rule with cadences, as properties over random zones, weekdays, quiet
dates, send times and instants: never two lessons on one local day, never one on a day that is
not allowed, never an allowed day passed over, none skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import available_timezones

from hypothesis import given, settings
from hypothesis import strategies as st

from drip.config import BUNDLED_COURSES
from drip.course import load_course
from drip.models import SubscriptionState
from drip.scheduler.schedule import (
    CADENCES,
    Cadence,
    local_send_instant,
    next_lesson_due,
    resume_due,
    snooze_until,
    zone,
)
from drip.subscriptions import Event, decide

from helpers import Facts

ZONES = sorted(available_timezones())
zones = st.sampled_from(ZONES).map(zone)
instants = st.datetimes(datetime(2020, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC))
send_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
cadences = st.builds(
    Cadence,
    st.frozensets(st.integers(0, 6), min_size=1),
    st.frozensets(st.dates(date(2020, 1, 1), date(2040, 3, 1)), max_size=30),
)
learners = st.sampled_from([None, *CADENCES])
COURSE = load_course(BUNDLED_COURSES / "bone-health")
EXAMPLES = settings(max_examples=300, deadline=None)


def local_day(instant: datetime, where) -> date:
    return instant.astimezone(where).date()


@EXAMPLES
@given(zones, cadences, send_times, instants, st.integers(1, 3))
def test_the_next_lesson_is_on_the_first_allowed_day_after_the_interval(
    where, cadence: Cadence, send_time: time, sent: datetime, interval: int
) -> None:
    due = next_lesson_due(sent, where, send_time, interval, cadence)
    earliest = local_day(sent, where) + timedelta(days=interval)
    assert due > sent
    assert local_day(due, where) >= earliest, "two lessons on one local day"
    assert cadence.allows(local_day(due, where)), "a lesson on a day not allowed"
    passed_over = [
        earliest + timedelta(days=n)
        for n in range((local_day(due, where) - earliest).days)
        if cadence.allows(earliest + timedelta(days=n))
    ]
    assert passed_over == [], "an allowed day was passed over"
    assert due == local_send_instant(local_day(due, where), send_time, where)


@EXAMPLES
@given(zones, cadences, send_times, instants, st.lists(st.integers(0, 3 * 86400), max_size=12))
def test_a_course_sent_lesson_after_lesson_skips_none_and_doubles_no_day(
    where, cadence: Cadence, send_time: time, start: datetime, delays: list[int]
) -> None:
    """Each lesson goes out when due or later (a worker down for up to three days): each is
    given a due time, on an allowed day after the day the previous one went out."""
    sent, days = start, [local_day(start, where)]
    for delay in delays:
        due = next_lesson_due(sent, where, send_time, 1, cadence)
        sent = due + timedelta(seconds=delay)
        days.append(local_day(sent, where))
        assert cadence.allows(local_day(due, where))
    assert len(days) == len(delays) + 1, "a lesson was skipped"
    assert days == sorted(set(days)), "two lessons on one local day"


@EXAMPLES
@given(zones, cadences, send_times, instants, st.none() | instants, st.integers(1, 14))
def test_resume_and_snooze_land_on_allowed_days_never_early(
    where, cadence: Cadence, send_time: time, now: datetime, last: datetime | None, days: int
) -> None:
    if last is not None and last > now:
        last, now = now, last
    resumed = resume_due(now, where, send_time, 1, last, cadence)
    assert resumed >= now
    if last is not None:
        assert cadence.allows(local_day(resumed, where))
        assert local_day(resumed, where) > local_day(last, where)
    until = snooze_until(now, where, send_time, days, cadence)
    assert local_day(until, where) >= local_day(now, where) + timedelta(days=days)
    assert cadence.allows(local_day(until, where))


@EXAMPLES
@given(st.sampled_from(ZONES), cadences, learners, send_times, instants)
def test_a_sent_lesson_follows_the_course_and_the_learner(
    zone_name: str, course_days: Cadence, learner: str | None, send_time: time, now: datetime
) -> None:
    course = COURSE.__class__(**{**COURSE.__dict__, "send_days": course_days.days,
                                 "quiet_dates": course_days.quiet})  # fmt: skip
    facts = Facts(SubscriptionState.ACTIVE, timezone=zone_name, send_time=send_time,
                  cadence=learner)  # fmt: skip
    change = decide(facts, Event.SENT, now, course)
    assert change is not None and change.next_due_at is not None
    day = local_day(change.next_due_at, zone(zone_name))
    assert day.weekday() in course.send_days and day not in course.quiet_dates
    wanted = course.send_days & CADENCES.get(learner or "daily", frozenset(range(7)))
    assert day.weekday() in (wanted or course.send_days)
