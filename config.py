"""Settings from DRIP_* environment variables, over an optional drip.toml, over embedded defaults.

One Settings object is built at the edge (the CLI) and passed in; nothing else reads os.environ.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigError, mask_secrets

DKIMKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
DKIM_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")  # a domain or a selector

BUNDLED_COURSES = Path(__file__).resolve().parent / "course" / "sample"
DEV_SECRET_KEY = "drip-development-key-change-me"


@dataclass(frozen=True)
class Settings:
    """Everything drip can be told. Field `x` is read from DRIP_X or from `x = ...` in drip.toml."""

    database_url: str = "sqlite:///drip.db"
    smtp_url: str | None = None
    outbox_dir: Path = Path("outbox")
    base_url: str = "http://localhost:8000"
    secret_key: str = DEV_SECRET_KEY
    courses_dir: Path = BUNDLED_COURSES
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    pending_expiry_seconds: float = 7 * 86400.0  # an unconfirmed subscription's link lasts this
    signup_limit_per_client: int = 20  # subscribe requests per client address per hour
    signup_limit_per_address: int = 3  # confirmation emails per recipient per hour
    max_body_bytes: int = 65536  # a request body (form or JSON) larger than this gets 413
    trusted_proxies: str = ""  # comma-separated peers whose X-Forwarded-For names the client
    log_format: str = "text"  # or "json": one object per line
    tick_seconds: float = 30.0
    batch_size: int = 200
    lease_seconds: float = 300.0
    retry_base_seconds: float = 60.0
    retry_ceiling_seconds: float = 6 * 3600.0
    retry_give_up_seconds: float = 3 * 86400.0  # backoff time after which a lesson is FAILED
    send_rate: float = 0.0  # messages/second per SMTP relay, for all a machine's workers; 0: none
    smtp_connections: int = 1  # parallel SMTP connections per worker
    dkim_domain: str | None = None  # d= of the DKIM signature; unset: messages go unsigned
    dkim_selector: str | None = None  # s=: the key is published at SELECTOR._domainkey.DOMAIN
    dkim_key_file: Path | None = None  # PEM private key, RSA (2048 bits advised) or Ed25519
    dkim_ed25519_selector: str | None = None  # a second signature, Ed25519-SHA256 (RFC 8463)
    dkim_ed25519_key_file: Path | None = None
    # Returned mail (bounces, complaints): VERP envelope senders, the receiver, a bounce mailbox.
    bounce_domain: str | None = None  # of the VERP return paths; unset: each course's sender's
    bounce_listen: str | None = None  # host:port where `drip run` also takes returned mail (SMTP)
    bounces_dir: Path = Path("bounces-unread")  # returned mail that reports nothing, kept as .eml
    bounce_max_bytes: int = 10 * 1024 * 1024  # a larger returned message is refused (552)
    bounce_imap_url: str | None = None  # imaps://user:pass@host:993/INBOX for `drip bounces fetch`
    bounce_imap_done: str = "drip-processed"  # where fetched messages go once their reports are in
    bounce_imap_unread: str = "drip-unread"  # where fetched messages that report nothing go

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, toml_path: Path | None = None
    ) -> Settings:
        """Defaults, then drip.toml (DRIP_CONFIG, or ./drip.toml if present), then DRIP_*."""
        environ = os.environ if environ is None else environ
        toml_path = toml_path or Path(environ.get("DRIP_CONFIG", "drip.toml"))
        values: dict[str, Any] = {}
        if toml_path.is_file():
            try:
                values.update(tomllib.loads(toml_path.read_text(encoding="utf-8")))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{toml_path}: {exc}") from exc
        for f in fields(cls):
            env_value = environ.get(f"DRIP_{f.name.upper()}")
            if env_value not in (None, ""):
                values[f.name] = env_value
        return cls().with_values(values)

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """A copy with `values` converted to each field's type; unknown or malformed: error."""
        known = {f.name: f for f in fields(self)}
        converted: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}")
            default = getattr(self, name)
            if name.endswith("_file"):
                default = Path()
            try:
                converted[name] = _convert(raw, default)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"setting {name} (DRIP_{name.upper()}): {exc}") from exc
            value = converted[name]
            if isinstance(value, int | float) and (
                value < 0 or (value == 0 and name != "send_rate")
            ):
                raise ConfigError(f"setting {name} (DRIP_{name.upper()}) must be positive")
        if converted.get("log_format", "text") not in ("text", "json"):
            raise ConfigError("setting log_format (DRIP_LOG_FORMAT) must be text or json")
        _check_urls(converted)
        _check_returned_mail(converted)
        settings = replace(self, **converted)
        if any(name.startswith("dkim_") for name in converted):
            check_dkim(settings)
        return settings


def _check_urls(values: Mapping[str, Any]) -> None:
    """Refuse a malformed database or SMTP URL when the settings are loaded, before any command
    writes anything; the messages show the URL with its password masked."""
    if values.get("smtp_url"):
        try:
            parse_smtp_url(values["smtp_url"])
        except ConfigError as exc:
            raise ConfigError(f"setting smtp_url (DRIP_SMTP_URL): {exc}") from None
    if "database_url" in values:
        try:
            make_url(values["database_url"])
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(
                f"setting database_url (DRIP_DATABASE_URL) "
                f"{mask_secrets(repr(values['database_url']))}: {mask_secrets(str(exc))}"
            ) from None


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
    shown = f"SMTP URL {mask_secrets(repr(url))}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{shown}: {mask_secrets(str(exc))}") from None
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


def _check_returned_mail(values: Mapping[str, Any]) -> None:
    """The receiver's listen address and the bounce mailbox's URL, checked like the others."""
    for name, check in (("bounce_listen", parse_listen), ("bounce_imap_url", parse_imap_url)):
        if values.get(name):
            try:
                check(values[name])
            except ConfigError as exc:
                raise ConfigError(f"setting {name} (DRIP_{name.upper()}): {exc}") from None


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
    shown = f"IMAP URL {mask_secrets(repr(url))}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{shown}: {mask_secrets(str(exc))}") from None
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


def _convert(raw: Any, default: Any) -> Any:
    if isinstance(default, Path):
        return Path(str(raw)).expanduser()
    if isinstance(default, bool):
        return str(raw).lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return str(raw)


def check_dkim(settings: Settings) -> None:
    """DKIM settings come as a whole: a domain, a selector and a key that loads (at start-up,
    not at the first message)."""
    primary = (settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file)
    second = (settings.dkim_ed25519_selector, settings.dkim_ed25519_key_file)
    if any(second) and not all(second):
        raise ConfigError(
            "DRIP_DKIM_ED25519_SELECTOR and DRIP_DKIM_ED25519_KEY_FILE go together: set both"
        )
    if not any(primary) and not any(second):
        return
    key_file = settings.dkim_key_file
    if not (settings.dkim_domain and settings.dkim_selector and key_file):
        raise ConfigError(
            "DKIM signing needs DRIP_DKIM_DOMAIN, DRIP_DKIM_SELECTOR and DRIP_DKIM_KEY_FILE: "
            "set all three"
        )
    names = {"domain": primary[0], "selector": primary[1], "ed25519_selector": second[0]}
    for setting, value in names.items():
        if value is not None and not DKIM_NAME.fullmatch(str(value)):
            raise ConfigError(
                f"setting dkim_{setting} (DRIP_DKIM_{setting.upper()}): {value!r} is not a name "
                "of dot-separated letters, digits, - and _"
            )
    load_dkim_key(key_file, "dkim_key_file")
    if settings.dkim_ed25519_key_file is not None:
        key = load_dkim_key(settings.dkim_ed25519_key_file, "dkim_ed25519_key_file")
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(
                f"setting dkim_ed25519_key_file (DRIP_DKIM_ED25519_KEY_FILE): "
                f"{settings.dkim_ed25519_key_file} is not an Ed25519 key"
            )


def load_dkim_key(path: Path, setting: str) -> DKIMKey:
    """The private key of a PEM file (unencrypted PKCS#8 or PKCS#1): RSA of 1024 bits or more
    (RFC 8301), or Ed25519 (RFC 8463)."""
    where = f"setting {setting} (DRIP_{setting.upper()}): {path}"
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where} is not an unencrypted PEM private key ({first})") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise ConfigError(f"{where}: an RSA key of {key.key_size} bits is too short (1024+)")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ConfigError(f"{where}: a {type(key).__name__} cannot sign DKIM; use RSA or Ed25519")
