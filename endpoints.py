"""The places settings name: the SMTP relay (DRIP_SMTP_URL), a listener (host:port) and the
bounce mailbox (DRIP_BOUNCE_IMAP_URL), each parsed once, with a ConfigError that names what is
wrong and never shows a password."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from .errors import ConfigError, mask_secrets


@dataclass(frozen=True)
class SMTPRelay:
    """Where and how to reach the SMTP relay that DRIP_SMTP_URL names."""

    host: str
    port: int
    security: str  # "none", "starttls" or "tls" (implicit TLS, smtps://)
    username: str | None
    password: str | None
    timeout: float
    weight: int = 1  # its share of the batches among the relays that are not resting
    rate: float | None = None  # messages/second for every worker together; None: DRIP_SEND_RATE
    daily: int | None = None  # messages a day (UTC), once any warm-up plan is over
    warmup: tuple[int, ...] = ()  # messages on day 1, 2, ... counted from DRIP_WARMUP_START

    @property
    def name(self) -> str:
        """How logs, budgets and rests name the relay."""
        return f"{self.host}:{self.port}"


RELAY_OPTIONS = {"starttls", "timeout", "weight", "rate", "daily", "warmup"}


def parse_smtp_urls(value: str) -> list[SMTPRelay]:
    """One relay or several, separated by commas or spaces (a comma inside a password is
    written %2C): `smtp://a:25?weight=3, smtp://b:25?weight=1`. Two URLs for one host:port are
    refused, since a relay's budget and its rests are kept under that name."""
    relays = [parse_smtp_url(part) for part in re.split(r"[,\s]+", value.strip()) if part]
    if not relays:
        raise ConfigError("names no SMTP relay")
    names = [relay.name for relay in relays]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"names {', '.join(twice)} more than once")
    return relays


def parse_smtp_url(url: str) -> SMTPRelay:
    """smtp://user:pass@host:587?starttls=true, smtps://host:465, smtp://host?timeout=5, and
    a relay's budget: ?weight=2&rate=50&daily=100000&warmup=500:1000:2000:5000.

    A ConfigError names what is wrong, showing the URL with its password masked."""
    shown, parts, port = _split("SMTP URL", url)
    if parts.scheme not in {"smtp", "smtps"}:
        raise ConfigError(f"{shown}: the scheme must be smtp:// or smtps://")
    if not parts.hostname:
        raise ConfigError(f"{shown} names no host")
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(options) - RELAY_OPTIONS
    if unknown:
        raise ConfigError(f"{shown}: unknown option(s) {', '.join(sorted(unknown))}")
    security = "tls" if parts.scheme == "smtps" else "none"
    if options.get("starttls", "false").lower() in {"1", "true", "yes"}:
        security = "starttls"
    try:
        timeout = float(options.get("timeout", 30))
    except ValueError:
        timeout = math.nan
    if not 0 < timeout < math.inf:
        raise ConfigError(f"{shown}: timeout must be a positive number of seconds")
    return SMTPRelay(
        host=parts.hostname,
        port=port or (465 if security == "tls" else 25),
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        **_budget_options(shown, options),
    )


def _budget_options(shown: str, options: dict[str, str]) -> dict[str, Any]:
    """weight (a whole number 1..1000), rate (messages/s), daily and warmup (whole numbers)."""
    found: dict[str, Any] = {}
    try:
        if "weight" in options:
            found["weight"] = int(options["weight"])
            if not 1 <= found["weight"] <= 1000:
                raise ValueError
        if "rate" in options:
            found["rate"] = float(options["rate"])
            if not 0 < found["rate"] < 1e6:
                raise ValueError
        if "daily" in options:
            found["daily"] = int(options["daily"])
            if not 0 < found["daily"] < 10**12:
                raise ValueError
        if "warmup" in options:
            found["warmup"] = tuple(int(n) for n in options["warmup"].split(":"))
            if not 0 < len(found["warmup"]) <= 366 or not all(
                0 < n < 10**12 for n in found["warmup"]
            ):
                raise ValueError
    except ValueError:
        raise ConfigError(
            f"{shown}: weight must be 1 to 1000, rate a positive number of messages a second, "
            "daily a positive whole number and warmup whole numbers a day separated by ':' "
            "(e.g. warmup=500:1000:2000)"
        ) from None
    return found


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (`[::1]:2525` for IPv6) of a listener."""
    host, colon, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if (
        not colon
        or not host
        or not (port.isascii() and port.isdigit())
        or not 0 < int(port) < 65536
    ):
        raise ConfigError(f"{value!r} is not host:port (e.g. 127.0.0.1:2525)")
    return host, int(port)


@dataclass(frozen=True)
class IMAPMailbox:
    """The mailbox returned mail lands in, as DRIP_BOUNCE_IMAP_URL names it."""

    host: str
    port: int
    implicit_tls: bool  # imaps://; imap:// goes over STARTTLS (never in clear text)
    username: str
    password: str
    folder: str


def parse_imap_url(url: str) -> IMAPMailbox:
    """imaps://user:pass@host:993/INBOX, or imap://user:pass@host:143/INBOX (STARTTLS)."""
    shown, parts, port = _split("IMAP URL", url)
    if parts.scheme not in {"imap", "imaps"}:
        raise ConfigError(f"{shown}: the scheme must be imaps:// or imap:// (STARTTLS)")
    if not parts.hostname or not parts.username or parts.password is None:
        raise ConfigError(f"{shown} needs a user, a password and a host")
    implicit_tls = parts.scheme == "imaps"
    return IMAPMailbox(
        host=parts.hostname, port=port or (993 if implicit_tls else 143),
        implicit_tls=implicit_tls, username=unquote(parts.username),
        password=unquote(parts.password), folder=unquote(parts.path.strip("/")) or "INBOX",
    )  # fmt: skip


def _split(what: str, url: str) -> tuple[str, SplitResult, int | None]:
    """The URL as messages show it (password masked), its parts and its port, or a ConfigError
    for a URL that does not even split (a port that is no number)."""
    shown = f"{what} {mask_secrets(repr(url))}"
    try:
        parts = urlsplit(url)
        return shown, parts, parts.port
    except ValueError as exc:
        raise ConfigError(f"{shown}: {mask_secrets(str(exc))}") from None
