"""Who a signup counts against, and how deep a JSON body nests: pure functions of the web side."""

from __future__ import annotations

import pytest

from drip.web.body import depth
from drip.web.throttle import client_address, trusted_proxies

SETTING = " 10.0.0.1, 10.0.0.2 ,,"
PROXIES = trusted_proxies(SETTING)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a proxy: the header is ignored
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),  # forged left part
        ("10.0.0.1", "", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.2", "10.0.0.2"),
    ],
)
def test_x_forwarded_for_is_believed_only_from_a_trusted_peer(peer, forwarded, client) -> None:
    assert sorted(PROXIES) == ["10.0.0.1", "10.0.0.2"]
    assert client_address(peer, forwarded, PROXIES) == client


def test_depth_counts_nesting_without_recursion() -> None:
    assert [depth("x"), depth({}), depth({"a": [1, [2]]})] == [0, 1, 3]
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert depth(deep) == 100_001
