"""Settings from DRIP_* environment variables, over an optional drip.toml, over embedded defaults.

One Settings object is built at the edge (the CLI) and passed in; nothing else reads os.environ.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

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
        return replace(self, **converted)


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
