"""VERP return paths: each delivery gets its own envelope sender, so a bounce names its delivery.

`bounces+<subscription>-<day>-<tag>@<domain>`: the ids in decimal (an operator can read them in
a mail log) and the first 80 bits of HMAC-SHA256 over them, keyed by DRIP_SECRET_KEY, in
lower-case base32. Some MTAs lower-case local parts, so the token survives that; nobody can
forge a token that moves a stranger's subscription to "bounced".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

LOCAL_PREFIX = "bounces"
MAX_SUBSCRIPTION_ID = 10**15 - 1
MAX_DAY = 99_999
TAG_BYTES = 10  # 16 base32 characters, no padding
# 8 + 15 + 1 + 5 + 1 + 16 = 46 characters at most: under the 64 that RFC 5321 allows.
TOKEN = re.compile(r"([1-9][0-9]{0,14}|0)-([1-9][0-9]{0,4}|0)-([a-z2-7]{16})")


def verp_token(subscription_id: int, day: int, secret: str) -> str:
    """The token part of a VERP address for one delivery."""
    if not 0 <= subscription_id <= MAX_SUBSCRIPTION_ID or not 0 <= day <= MAX_DAY:
        raise ValueError(f"subscription {subscription_id}, day {day}: out of range for VERP")
    return f"{subscription_id}-{day}-{_tag(subscription_id, day, secret)}"


def verp_address(subscription_id: int, day: int, domain: str, secret: str) -> str:
    """The envelope sender for one delivery: `bounces+<token>@<domain>`."""
    return f"{LOCAL_PREFIX}+{verp_token(subscription_id, day, secret)}@{domain}"


def parse_verp(address: str, secret: str) -> tuple[int, int] | None:
    """(subscription_id, day) of a VERP address, or None if it is malformed or its tag is wrong.

    Accepts the address bare, in angle brackets or lower-cased by a relay; the domain is not
    checked (the receiver decides which domains it answers for).
    """
    token = token_of(address)
    if token is None:
        return None
    return parse_token(token, secret)


def token_of(address: str) -> str | None:
    """The token in a `bounces+<token>@domain` address, unchecked, or None."""
    address = address.strip().strip("<>").strip().lower()
    local, at, _domain = address.rpartition("@")
    prefix, plus, token = local.partition("+")
    if not at or not plus or prefix != LOCAL_PREFIX:
        return None
    return token


def parse_token(token: str, secret: str) -> tuple[int, int] | None:
    """(subscription_id, day) of a token whose tag checks out, else None."""
    match = TOKEN.fullmatch(token.lower())
    if match is None:
        return None
    subscription_id, day = int(match[1]), int(match[2])
    if not hmac.compare_digest(match[3], _tag(subscription_id, day, secret)):
        return None
    return subscription_id, day


def _tag(subscription_id: int, day: int, secret: str) -> str:
    message = f"drip-verp:{subscription_id}:{day}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:TAG_BYTES]
    return base64.b32encode(digest).decode().lower()
