"""Settings from DRIP_* environment variables, over an optional drip.toml, over embedded defaults.

One Settings object is built at the edge (the CLI) and passed in; nothing else reads os.environ.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_private_key
from cryptography.utils import CryptographyDeprecationWarning
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .endpoints import parse_imap_url, parse_listen, parse_smtp_urls
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
    # The console at /admin (operators: `drip admin add`); sessions are signed with secret_key.
    admin_session_seconds: float = 8 * 3600.0  # a sign-in lasts this long
    admin_signin_limit: int = 5  # sign-in attempts per address per 15 minutes (x4 per client)
    # /metrics is not on the public port: on its own address, or there behind a bearer token.
    metrics_listen: str | None = None  # host:port where drip run/serve serve /metrics alone
    metrics_token: str | None = None  # GET /metrics on the web port with this bearer token
    tick_seconds: float = 30.0
    batch_size: int = 200
    lease_seconds: float = 300.0
    retry_base_seconds: float = 60.0
    retry_ceiling_seconds: float = 6 * 3600.0
    retry_give_up_seconds: float = 3 * 86400.0  # backoff time after which a lesson is FAILED
    # Sending budgets, kept in the database and shared by every worker on every machine.
    send_rate: float = 0.0  # messages/second per SMTP relay (a URL's rate= overrides); 0: none
    domain_rates: str = ""  # messages/second per recipient domain: "gmail.com=100,outlook.com=50"
    warmup_start: str = ""  # YYYY-MM-DD (UTC): day 1 of warmup= plans; unset: first use
    relay_rest_seconds: float = 60.0  # a failing relay's first rest; doubles up to an hour
    breaker_sends: int = 1000  # a course's last N sends that its circuit breaker weighs
    breaker_complaint_rate: float = 0.003  # over this (0.3%), the course's sending pauses
    breaker_bounce_rate: float = 0.05  # hard bounces over this (5%) pause it too
    smtp_connections: int = 1  # parallel SMTP connections per worker
    dkim_domain: str | None = None  # d= of the DKIM signature; unset: messages go unsigned
    dkim_selector: str | None = None  # s=: the key is published at SELECTOR._domainkey.DOMAIN
    dkim_key_file: Path | None = None  # PEM private key, RSA (2048 bits advised) or Ed25519
    dkim_ed25519_selector: str | None = None  # a second signature, Ed25519-SHA256 (RFC 8463)
    dkim_ed25519_key_file: Path | None = None
    dkim_processes: int = 1  # processes that do the private-key operations; 0: the sending thread
    # Provider webhooks (web/webhooks.py): a provider's route exists only once it is configured.
    ses_webhook: bool = False  # POST /webhooks/ses, for SES notifications through SNS
    ses_topic_arns: str = ""  # comma-separated SNS topics believed; empty: any topic
    sns_trusted_ca_file: Path | None = None  # CAs an SNS certificate chains to; unset: certifi's
    postmark_webhook_user: str | None = None  # the basic credentials in Postmark's webhook URL
    postmark_webhook_password: str | None = None
    mailgun_signing_key: str | None = None  # Mailgun's HTTP webhook signing key
    sendgrid_public_key: str | None = None  # SendGrid's verification key, base64 DER
    # Outgoing webhooks (hooks/): how often the outbox is read, and how messages are retried.
    webhook_tick_seconds: float = 5.0
    webhook_timeout_seconds: float = 10.0  # per request to an endpoint
    webhook_retry_base_seconds: float = 30.0  # the first retry's delay, doubled per failure
    webhook_retry_ceiling_seconds: float = 3600.0  # the longest delay between two retries
    webhook_give_up_seconds: float = 3 * 86400.0  # backoff after which a message is given up
    # Returned mail (bounces, complaints): VERP envelope senders, the receiver, a bounce mailbox.
    bounce_domain: str | None = None  # of the VERP return paths; unset: each course's sender's
    bounce_listen: str | None = None  # host:port where `drip run` also takes returned mail (SMTP)
    bounce_lmtp: bool = False  # the receiver speaks LMTP (per-recipient replies) instead of SMTP
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
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and (value < 0 or (value == 0 and name not in ("send_rate", "dkim_processes")))
            ):
                raise ConfigError(f"setting {name} (DRIP_{name.upper()}) must be positive")
        if converted.get("log_format", "text") not in ("text", "json"):
            raise ConfigError("setting log_format (DRIP_LOG_FORMAT) must be text or json")
        _check_urls(converted)
        _check_returned_mail(converted)
        settings = replace(self, **converted)
        check_budgets(settings)
        if any(name.startswith("dkim_") for name in converted):
            check_dkim(settings)
        check_webhooks(settings)
        return settings


def _check_urls(values: Mapping[str, Any]) -> None:
    """Refuse a malformed database or SMTP URL when the settings are loaded, before any command
    writes anything; the messages show the URL with its password masked."""
    if values.get("smtp_url"):
        try:
            parse_smtp_urls(values["smtp_url"])
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


def check_budgets(settings: Settings) -> None:
    """The budget settings parse, and the breaker's rates are fractions (0.003, not 0.3%)."""
    domain_rates(settings)
    warmup_start(settings)
    for name in ("breaker_complaint_rate", "breaker_bounce_rate"):
        if not 0 < getattr(settings, name) <= 1:
            raise ConfigError(f"setting {name} (DRIP_{name.upper()}) must be a fraction: "
                              "over 0, at most 1 (0.003 is 0.3%)")  # fmt: skip


def domain_rates(settings: Settings) -> dict[str, float]:
    """DRIP_DOMAIN_RATES as {domain: messages/second}; domains are compared casefolded."""
    found: dict[str, float] = {}
    for part in re.split(r"[,\s]+", settings.domain_rates.strip()):
        if not part:
            continue
        domain, _, rate = part.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = math.nan
        if not DKIM_NAME.fullmatch(domain) or not 0 < value < 1e6:
            raise ConfigError(
                f"setting domain_rates (DRIP_DOMAIN_RATES): {part[:100]!r} is not "
                "domain=messages-per-second (e.g. gmail.com=100)"
            )
        found[domain.casefold()] = value
    return found


def warmup_start(settings: Settings) -> date | None:
    """DRIP_WARMUP_START as a date, or None when unset: a relay's plan then starts on the day
    its budget was first drawn from (kept in the database)."""
    if not settings.warmup_start:
        return None
    try:
        return date.fromisoformat(settings.warmup_start.strip())
    except ValueError:
        raise ConfigError(
            f"setting warmup_start (DRIP_WARMUP_START): {settings.warmup_start[:40]!r} is not "
            "a date (YYYY-MM-DD)"
        ) from None


def _check_returned_mail(values: Mapping[str, Any]) -> None:
    """The receiver's and the metrics' listen addresses and the bounce mailbox's URL."""
    checks = (("bounce_listen", parse_listen), ("bounce_imap_url", parse_imap_url),
              ("metrics_listen", parse_listen))  # fmt: skip
    for name, check in checks:
        if values.get(name):
            try:
                check(values[name])
            except ConfigError as exc:
                raise ConfigError(f"setting {name} (DRIP_{name.upper()}): {exc}") from None


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


# Provider webhooks' settings, checked at load. No message shows a password or a key.
PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")


def check_webhooks(settings: Settings) -> None:
    """Each provider's settings come whole and load: credentials in pairs, the SendGrid key
    parses, the topic ARNs are ARNs, the CA bundle of an enabled SES route reads."""
    user, password = settings.postmark_webhook_user, settings.postmark_webhook_password
    if bool(user) != bool(password):
        raise ConfigError(
            "DRIP_POSTMARK_WEBHOOK_USER and DRIP_POSTMARK_WEBHOOK_PASSWORD go together: set both"
        )
    if user and ":" in user:
        raise ConfigError("setting postmark_webhook_user (DRIP_POSTMARK_WEBHOOK_USER) has a ':'")
    if settings.sendgrid_public_key:
        try:
            sendgrid_verification_key(settings.sendgrid_public_key)
        except ValueError as exc:
            raise ConfigError(
                f"setting sendgrid_public_key (DRIP_SENDGRID_PUBLIC_KEY): {exc}"
            ) from None
    ses_topics(settings)
    if settings.ses_webhook:
        sns_trusted_cas(settings)


def sendgrid_verification_key(configured: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key from its base64 DER form; ValueError if it is not a P-256
    ECDSA public key."""
    try:
        key = load_der_public_key(base64.b64decode("".join(configured.split()), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as error:
        raise ValueError(f"SendGrid verification key is not base64 DER: {error}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("SendGrid verification key is not a P-256 ECDSA key")
    return key


def ses_topics(settings: Settings) -> frozenset[str] | None:
    """The SNS topics DRIP_SES_TOPIC_ARNS names; None: any topic."""
    topics = frozenset(t.strip() for t in settings.ses_topic_arns.split(",") if t.strip())
    for topic in topics:
        if not SNS_TOPIC_ARN.fullmatch(topic):
            raise ConfigError(
                f"setting ses_topic_arns (DRIP_SES_TOPIC_ARNS): {topic[:100]!r} is not an SNS "
                "topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
            )
    return topics or None


def sns_trusted_cas(settings: Settings) -> list[x509.Certificate]:
    """The CAs an SNS signing certificate must chain to: DRIP_SNS_TRUSTED_CA_FILE, or certifi's
    bundle (Mozilla's list, which holds Amazon's roots)."""
    path = settings.sns_trusted_ca_file
    if path is None:
        try:
            import certifi
        except ImportError:
            raise ConfigError(
                "DRIP_SES_WEBHOOK needs DRIP_SNS_TRUSTED_CA_FILE (or the certifi package)"
            ) from None
        path = Path(certifi.where())
    where = f"setting sns_trusted_ca_file (DRIP_SNS_TRUSTED_CA_FILE): {path}"
    try:
        found = pem_certificates(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if not found:
        raise ConfigError(f"{where} holds no PEM certificate")
    return found


def pem_certificates(bundle: bytes) -> list[x509.Certificate]:
    """Each certificate of a PEM bundle that loads: one this cryptography will not read (a
    bundle's old root with a negative serial number) is left out, not the whole bundle."""
    found = []
    for block in PEM_CERTIFICATE.findall(bundle):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            try:
                found.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    return found
