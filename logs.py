"""Log set-up: readable lines by default, one JSON object per line with DRIP_LOG_FORMAT=json.

Send, deferral, bounce and give-up lines carry structured fields (event, subscription_id,
message_id, day, course, smtp_reply), state changes carry (event="state", subscription_id,
course, state); a message body is never logged, and a URL's password never shows: every line
goes through errors.mask_secrets."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from .errors import mask_secrets

FIELDS = ("event", "subscription_id", "message_id", "day", "course", "smtp_reply", "state",
          "operator", "action")  # fmt: skip


class MaskingFormatter(logging.Formatter):
    """The readable line format, with secrets masked (an exception's text included)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return mask_secrets(json.dumps(entry, default=str))


def setup_logging(verbose: bool = False, fmt: str = "text") -> logging.Handler:
    """Add the CLI's handler to the root logger; the caller removes it when done."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty in ("alembic", "apscheduler", "mail.log"):  # mail.log: aiosmtpd, per connection
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
