"""VERP return paths: one per delivery, readable after a relay lower-cases them, unforgeable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drip.bounces import parse_verp, verp_address
from drip.bounces.verp import MAX_DAY, MAX_SUBSCRIPTION_ID

SECRET = "verp-test-secret"


@given(
    st.integers(min_value=0, max_value=MAX_SUBSCRIPTION_ID),
    st.integers(min_value=0, max_value=MAX_DAY),
)
def test_an_address_maps_back_to_its_delivery(subscription_id: int, day: int) -> None:
    address = verp_address(subscription_id, day, "mail.example.org", SECRET)
    local, _, domain = address.partition("@")
    assert domain == "mail.example.org"
    assert len(local) < 64
    assert parse_verp(address, SECRET) == (subscription_id, day)
    assert parse_verp(address.lower(), SECRET) == (subscription_id, day)
    assert parse_verp(f"<{address.upper()}>", SECRET) == (subscription_id, day)


def test_the_tag_depends_on_the_secret_and_the_delivery() -> None:
    address = verp_address(42, 3, "mail.example.org", SECRET)
    assert parse_verp(address, "another-secret") is None
    token = address.split("+")[1].split("@")[0]
    tag = token.rsplit("-", 1)[1]
    assert parse_verp(f"bounces+43-3-{tag}@mail.example.org", SECRET) is None
    assert parse_verp(f"bounces+42-4-{tag}@mail.example.org", SECRET) is None
    assert verp_address(42, 3, "x.example", SECRET) != verp_address(42, 4, "x.example", SECRET)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "bounces@mail.example.org",
        "bounces+@mail.example.org",
        "bounces+42-3@mail.example.org",
        "bounces+42-3-aaaaaaaaaaaaaaaa",
        "lessons+42-3-aaaaaaaaaaaaaaaa@mail.example.org",
        "bounces+042-3-aaaaaaaaaaaaaaaa@mail.example.org",
        "bounces+-42-3-aaaaaaaaaaaaaaaa@mail.example.org",
        "bounces+42-3-aaaaaaaaaaaaaaa1@mail.example.org",
        "bounces+42-3-aaaaaaaaaaaaaaaaa@mail.example.org",
        "bounces+99999999999999999999-3-aaaaaaaaaaaaaaaa@mail.example.org",
        "bounces+42-3-aaaaaaaaaaaaaaaa@mail.example.org",
    ],
)
def test_malformed_or_forged_addresses_map_to_nothing(address: str) -> None:
    assert parse_verp(address, SECRET) is None


@pytest.mark.parametrize(("subscription_id", "day"), [(-1, 1), (1, -1), (10**15, 1), (1, 10**5)])
def test_ids_out_of_range_are_refused(subscription_id: int, day: int) -> None:
    with pytest.raises(ValueError):
        verp_address(subscription_id, day, "mail.example.org", SECRET)
