"""The console's session: a cookie holding who signed in, until when, the password generation
it was signed in with and the CSRF token of its forms, signed with HMAC-SHA256 under a key
derived from DRIP_SECRET_KEY. Nothing is stored on the server, so any web process reads it;
a new password (`drip admin passwd`) changes the generation and so ends the old sessions.
Before sign-in the cookie carries only a CSRF token, for the sign-in form itself."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "drip_admin"
MAX_COOKIE = 1024  # a signed session is about 250 characters; anything longer is not ours


@dataclass(frozen=True)
class AdminSession:
    operator_id: int  # 0: not signed in (the sign-in form's CSRF token only)
    generation: str
    csrf: str
    expires: datetime

    @property
    def signed_in(self) -> bool:
        return self.operator_id > 0


class Signer:
    """Signs and reads session cookies; `secret` is the service's DRIP_SECRET_KEY."""

    def __init__(self, secret: str, lifetime: timedelta) -> None:
        self.key = hmac.new(secret.encode(), b"drip admin session v1", hashlib.sha256).digest()
        self.lifetime = lifetime

    def new(self, now: datetime, operator_id: int = 0, generation: str = "") -> AdminSession:
        """A fresh session (a new CSRF token too: a sign-in never keeps the anonymous one)."""
        lifetime = self.lifetime if operator_id else timedelta(hours=1)
        return AdminSession(operator_id, generation, secrets.token_urlsafe(24), now + lifetime)

    def dumps(self, session: AdminSession) -> str:
        payload = json.dumps(
            [session.operator_id, session.generation, session.csrf,
             int(session.expires.timestamp())], separators=(",", ":"),
        ).encode()  # fmt: skip
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def loads(self, cookie: str, now: datetime) -> AdminSession | None:
        """The session a cookie holds, or None if it is forged, malformed or expired."""
        if not cookie or len(cookie) > MAX_COOKIE or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(signature, self._mac(payload)):
            return None
        operator_id, generation, csrf, expires = json.loads(payload)
        found = AdminSession(int(operator_id), str(generation), str(csrf),
                             datetime.fromtimestamp(int(expires), now.tzinfo))  # fmt: skip
        return found if found.expires > now else None

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()


def csrf_matches(session: AdminSession | None, token: str) -> bool:
    """The token posted with a form is its session's, compared in constant time."""
    if session is None or not token or not token.isascii():
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
