"""The places settings name: the SMTP relay (DRIP_SMTP_URL), a listener (host:port) and the
bounce mailbox (DRIP_BOUNCE_IMAP_URL), each parsed once, with a ConfigError that names what is
wrong and never shows a password."""

from __future__ import annotations

import math
from dataclasses import dataclass
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


def parse_smtp_url(url: str) -> SMTPRelay:
    """smtp://user:pass@host:587?starttls=true, smtps://host:465, smtp://host?timeout=5.

    A ConfigError names what is wrong, showing the URL with its password masked."""
    shown, parts, port = _split("SMTP URL", url)
    if parts.scheme not in {"smtp", "smtps"}:
        raise ConfigError(f"{shown}: the scheme must be smtp:// or smtps://")
    if not parts.hostname:
        raise ConfigError(f"{shown} names no host")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(options) - {"starttls", "timeout"}
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
    )


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (`[::1]:2525` for IPv6) of a listener."""
    host, colon, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
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
