"""Schedule math: pure, so tested at fixed instants without a database or a clock."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from drip.scheduler.schedule import (
    local_send_instant,
    next_lesson_due,
    next_send_time_after,
    resume_due,
    retry_delay,
)

NINE = time(9, 0)
NY, BERLIN, TOKYO = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


@pytest.mark.parametrize(
    "zone", ["UTC", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
)
def test_next_lesson_is_next_local_day_at_send_time(zone: str) -> None:
    tz = ZoneInfo(zone)
    sent = local(tz, 2026, 6, 10, 9, 0)
    due = next_lesson_due(sent, tz, NINE)
    assert due.tzinfo is UTC
    assert due.astimezone(tz) == local(tz, 2026, 6, 11, 9, 0)


def test_late_night_and_early_sends_never_give_two_lessons_a_day() -> None:
    late = local(TOKYO, 2026, 6, 10, 23, 50)
    assert next_lesson_due(late, TOKYO, NINE).astimezone(TOKYO) == local(TOKYO, 2026, 6, 11, 9)
    early = local(TOKYO, 2026, 6, 10, 8, 0)  # lesson 1 confirmed before the send time
    assert next_lesson_due(early, TOKYO, NINE).astimezone(TOKYO) == local(TOKYO, 2026, 6, 11, 9)


@pytest.mark.parametrize("interval", [2, 7])
def test_interval_days(interval: int) -> None:
    sent = local(BERLIN, 2026, 6, 10, 9, 0)
    due = next_lesson_due(sent, BERLIN, NINE, interval)
    assert due.astimezone(BERLIN) == local(BERLIN, 2026, 6, 10 + interval, 9)


def test_downtime_shifts_instead_of_bursting() -> None:
    sent = local(NY, 2026, 6, 1, 9, 0)
    now = local(NY, 2026, 6, 6, 12, 0)  # five days of downtime
    overdue = next_lesson_due(sent, NY, NINE)
    assert overdue < now  # sent at once when the service is back...
    assert next_lesson_due(now, NY, NINE).astimezone(NY) == local(
        NY, 2026, 6, 7, 9
    )  # ...then daily


@pytest.mark.parametrize(
    ("zone", "day"), [("America/New_York", date(2026, 3, 8)), ("Europe/Berlin", date(2026, 3, 29))]
)
def test_send_time_in_the_spring_gap_moves_to_the_next_valid_minute(zone: str, day: date) -> None:
    tz = ZoneInfo(zone)
    instant = local_send_instant(day, time(2, 30), tz)
    assert instant.astimezone(tz).replace(tzinfo=None) == datetime.combine(day, time(3, 0))
    before = local_send_instant(day - timedelta(days=1), NINE, tz)
    after = local_send_instant(day, NINE, tz)
    assert after - before == timedelta(hours=23), "the short day is one hour short"


@pytest.mark.parametrize(
    ("zone", "day", "wall"),
    [("America/New_York", date(2026, 11, 1), time(1, 30)),
     ("Europe/Berlin", date(2026, 10, 25), time(2, 30))],
)  # fmt: skip
def test_ambiguous_send_time_takes_the_first_occurrence(zone: str, day: date, wall: time) -> None:
    tz = ZoneInfo(zone)
    instant = local_send_instant(day, wall, tz)
    first = datetime.combine(day, wall, tzinfo=tz).replace(fold=0).astimezone(UTC)
    second = datetime.combine(day, wall, tzinfo=tz).replace(fold=1).astimezone(UTC)
    assert instant == first and second - first == timedelta(hours=1)


def test_lord_howe_half_hour_gap() -> None:
    tz = ZoneInfo("Australia/Lord_Howe")  # clocks go 02:00 -> 02:30 on 2026-10-04
    instant = local_send_instant(date(2026, 10, 4), time(2, 10), tz)
    assert instant.astimezone(tz).time() == time(2, 30)


def test_next_send_time_after_now() -> None:
    assert next_send_time_after(local(BERLIN, 2026, 6, 1, 8, 0), BERLIN, NINE).astimezone(
        BERLIN
    ) == local(BERLIN, 2026, 6, 1, 9)
    at = local(BERLIN, 2026, 6, 1, 9, 0)
    assert next_send_time_after(at, BERLIN, NINE) == at
    later = next_send_time_after(local(BERLIN, 2026, 6, 1, 9, 1), BERLIN, NINE)
    assert later.astimezone(BERLIN) == local(BERLIN, 2026, 6, 2, 9)


def test_resume_never_gives_two_lessons_on_one_local_day() -> None:
    sent_today = local(NY, 2026, 6, 1, 0, 30)  # lesson 1 went out just after midnight
    now = local(NY, 2026, 6, 1, 7, 0)
    assert resume_due(now, NY, NINE, 1, sent_today).astimezone(NY) == local(NY, 2026, 6, 2, 9)
    sent_long_ago = local(NY, 2026, 5, 1, 9, 0)
    assert resume_due(now, NY, NINE, 1, sent_long_ago).astimezone(NY) == local(NY, 2026, 6, 1, 9)
    assert resume_due(now, NY, NINE, 1, None) == now  # nothing sent yet: lesson 1 at once


def test_retry_delay_grows_caps_and_jitters() -> None:
    rng = random.Random(7)
    base, ceiling = timedelta(minutes=1), timedelta(hours=6)
    exact = [retry_delay(n, base=base, ceiling=ceiling, jitter=0, rng=rng) for n in range(1, 12)]
    assert exact[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert exact[-1] == ceiling and max(exact) == ceiling
    for attempt in range(1, 60):
        delay = retry_delay(attempt, base=base, ceiling=ceiling, jitter=0.1, rng=rng)
        nominal = min(ceiling, base * 2 ** min(attempt - 1, 40))
        assert nominal * 0.9 <= delay <= nominal * 1.1
    spread = {retry_delay(3, jitter=0.1, rng=rng) for _ in range(20)}
    assert len(spread) > 1, "jitter spreads retries"


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="attempt"):
        retry_delay(0, rng=random.Random(0))
    with pytest.raises(ValueError, match="interval_days"):
        next_lesson_due(local(NY, 2026, 6, 1, 9), NY, NINE, 0)
    with pytest.raises(ValueError, match="sent_at"):
        next_lesson_due(datetime(2026, 6, 1, 9), NY, NINE)
    with pytest.raises(ValueError, match="now"):
        next_send_time_after(datetime(2026, 6, 1, 9), NY, NINE)


@pytest.mark.parametrize(
    "zone", ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]
)
def test_a_year_of_daily_lessons_lands_at_nine_every_local_day(zone: str) -> None:
    tz = ZoneInfo(zone)
    sent = local_send_instant(date(2026, 1, 1), NINE, tz)
    for _ in range(365):
        due = next_lesson_due(sent, tz, NINE)
        assert due.astimezone(tz).date() == sent.astimezone(tz).date() + timedelta(days=1)
        assert due.astimezone(tz).time() == NINE
        sent = due
