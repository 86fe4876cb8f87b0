"""The checks of what a person types, the same on the web, the CLI and an import: an address,
a time zone, a name. Each returns the value in its normal form or raises InvalidInput."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

from .errors import InvalidInput

MAX_NAME_LENGTH = 200
__all__ = ["check_name", "check_timezone", "known_zones", "normalize_email"]


def normalize_email(address: str) -> str:
    """The one address check of web, CLI and import: the address in its normal form (NFC, the
    domain lowercased and in Unicode, so josé@Bücher.example and josé@xn--bcher-kva.example are
    one subscriber); InvalidInput saying why it is not an address. A local part outside ASCII
    is accepted: such a lesson needs a relay that offers SMTPUTF8."""
    try:
        checked = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=True)
        return checked.normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"{address!r} is not a valid email address: {exc}") from exc


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """`name` if it is an IANA zone; checked against the list, never opened as a file path."""
    if name not in known_zones():
        raise InvalidInput(f"{name[:80]!r} is not a known time zone (e.g. Europe/Paris)")
    return name


def check_name(name: str) -> str:
    """Names are kept as typed (they are data, shown escaped), only bounded in length."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"the name is longer than {MAX_NAME_LENGTH} characters")
    return name
