"""The budget settings as people write them: several relays with weights and plans, domain
rates, a warm-up start and the breaker's limits; anything malformed is one line naming the
setting, with no password shown. The warm-up allowance is checked at fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drip.config import Settings, domain_rates, warmup_start
from drip.endpoints import parse_smtp_urls
from drip.errors import ConfigError
from drip.scheduler.gate import Route, allowance
from drip.send import MemoryTransport


def test_several_relays_with_their_budgets() -> None:
    first, second = parse_smtp_urls(
        "smtp://u:p%2Cw@a.example:587?starttls=true&weight=3&rate=50&warmup=500:1000:2000,"
        " smtps://b.example?daily=100000"
    )
    assert (first.name, first.weight, first.rate, first.warmup) == ("a.example:587", 3, 50.0,
                                                                    (500, 1000, 2000))  # fmt: skip
    assert first.password == "p,w" and first.security == "starttls"
    assert (second.name, second.weight, second.daily, second.rate) == ("b.example:465", 1,
                                                                       100000, None)  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"smtp_url": "smtp://a?weight=0"}, "weight must be 1 to 1000"),
        ({"smtp_url": "smtp://a?rate=-5"}, "rate a positive number"),
        ({"smtp_url": "smtp://a?rate=nan"}, "rate a positive number"),
        ({"smtp_url": "smtp://a?warmup=500:x"}, "warmup whole numbers"),
        ({"smtp_url": "smtp://a?warmup="}, "warmup whole numbers"),
        ({"smtp_url": "smtp://a?daily=1e3"}, "daily a positive whole number"),
        ({"smtp_url": "smtp://u:secret@a:25, smtp://a:25"}, "names a:25 more than once"),
        ({"smtp_url": "smtp://a, ftp://b"}, "scheme must be smtp"),
        ({"smtp_url": " , "}, "names no SMTP relay"),
        ({"domain_rates": "gmail.com=fast"}, "not domain=messages-per-second"),
        ({"domain_rates": "gmail.com=0"}, "not domain=messages-per-second"),
        ({"domain_rates": "=5"}, "not domain=messages-per-second"),
        ({"warmup_start": "next monday"}, "is not a date"),
        ({"breaker_complaint_rate": "0.3%"}, "breaker_complaint_rate"),
        ({"breaker_bounce_rate": "5"}, "must be a fraction"),
        ({"breaker_sends": "0"}, "must be positive"),
        ({"relay_rest_seconds": "-1"}, "must be positive"),
    ],
)  # fmt: skip
def test_bad_budget_settings_are_one_line(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings().with_values(values)
    text = str(caught.value)
    assert message in text and "\n" not in text and "secret" not in text


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)


@given(url=st.one_of(TEXT, TEXT.map(lambda t: f"smtp://a?{t}"), TEXT.map(lambda t: f"smtp://{t}")),
       rates=TEXT, start=TEXT)  # fmt: skip
def test_any_budget_setting_loads_or_is_refused_in_one_line(url: str, rates: str, start: str):
    for name, value in (("smtp_url", url), ("domain_rates", rates), ("warmup_start", start)):
        try:
            settings = Settings().with_values({name: value})
        except ConfigError as exc:
            assert "\n" not in str(exc).strip()
            continue
        domain_rates(settings)
        warmup_start(settings)


def at(hour: int, minute: int = 0, day: int = 2) -> float:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC).timestamp()


START = datetime(2026, 3, 2, tzinfo=UTC).timestamp() // 86400


@pytest.mark.parametrize(
    ("route", "instant", "expected"),
    [
        (Route("r", MemoryTransport()), at(9), 2**62),
        (Route("r", MemoryTransport(), warmup=(480, 960)), at(0, 5), 20),  # a 24th at midnight
        (Route("r", MemoryTransport(), warmup=(480, 960)), at(9, 59), 200),
        (Route("r", MemoryTransport(), warmup=(480, 960)), at(23, 59), 480),
        (Route("r", MemoryTransport(), warmup=(480, 960)), at(23, 59, day=3), 960),
        (Route("r", MemoryTransport(), warmup=(480, 960)), at(23, 59, day=30), 960),  # the last
        (Route("r", MemoryTransport(), warmup=(480, 960), daily=600), at(23, day=9), 600),
        (Route("r", MemoryTransport(), warmup=(5,)), at(0), 1),  # never nothing at all
    ],
)  # fmt: skip
def test_the_days_allowance_is_released_hour_by_hour(route: Route, instant: float, expected):
    assert allowance(route, instant, int(START)) == expected
