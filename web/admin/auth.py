"""Who is asking: the session cookie read and checked, the CSRF token of every POST, sign-in
(limited per client and per address) and sign-out. Every sign-in, refused or not, is in the
audit log."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ... import operators
from ...config import DEV_SECRET_KEY
from ...models import Operator
from ...runtime import Runtime
from ..throttle import Throttle, client_address, trusted_proxies
from .session import COOKIE, AdminSession, Signer, csrf_matches

log = logging.getLogger("drip.admin")
SIGN_IN_WINDOW = timedelta(minutes=15)


class Refused(HTTPException):
    """A POST without a valid session or CSRF token: 403, and nothing changed."""

    def __init__(self, why: str = "This form has expired: reload the page and try again.") -> None:
        super().__init__(403, why)


class Auth:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.rt = runtime
        self.signer = Signer(settings.secret_key, timedelta(seconds=settings.admin_session_seconds))
        limit = settings.admin_signin_limit
        self.per_client = Throttle("signin-client:", limit * 4, SIGN_IN_WINDOW)
        self.per_address = Throttle("signin-address:", limit, SIGN_IN_WINDOW)
        self.trusted = trusted_proxies(settings.trusted_proxies)
        self.secure = settings.base_url.startswith("https://")
        if settings.secret_key == DEV_SECRET_KEY and self.secure:
            log.warning("DRIP_SECRET_KEY is the development key, which anyone can read: the "
                        "console's sessions are only as safe as a key of your own")  # fmt: skip

    def session(self, request: Request, now: datetime) -> AdminSession | None:
        return self.signer.loads(request.cookies.get(COOKIE, ""), now)

    def operator(self, db: Session, session: AdminSession | None) -> Operator | None:
        """The operator a session is of, while its password is the one it signed in with."""
        if session is None or not session.signed_in:
            return None
        found = db.get(Operator, session.operator_id)
        if found is None or operators.generation(found) != session.generation:
            return None
        return found

    def check_post(self, request: Request, fields: dict[str, str], now: datetime) -> AdminSession:
        """The session of a POST whose CSRF token is its own; Refused otherwise."""
        session = self.session(request, now)
        if not csrf_matches(session, fields.get("csrf", "")):
            raise Refused
        assert session is not None
        return session

    def allowed(self, db: Session, request: Request, email: str, now: datetime) -> bool:
        """Within the sign-in limits of this client and this address (each try counts), kept
        in the database: one limit across every web process."""
        peer = request.client.host if request.client else "unknown"
        client = client_address(peer, request.headers.get("x-forwarded-for", ""), self.trusted)
        return self.per_client.allow(db, client, now) and self.per_address.allow(
            db, email.strip().casefold()[:320], now
        )

    def sign_in(self, db: Session, email: str, password: str, now: datetime) -> Operator | None:
        operator = operators.verify(db, email, password)
        who = operator.email if operator else email.strip()[:320]
        operators.record(db, who, "sign-in" if operator else "sign-in refused", now)
        return operator

    def with_cookie(self, response: Response, session: AdminSession) -> Response:
        response.set_cookie(
            COOKIE, self.signer.dumps(session), path="/admin", httponly=True, samesite="strict",
            secure=self.secure, max_age=int(self.signer.lifetime.total_seconds()),
        )  # fmt: skip
        return response

    def signed_out(self, response: Response) -> Response:
        response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict",
                               secure=self.secure)  # fmt: skip
        return response


def to_sign_in(request: Request) -> Response:
    """A GET by someone not signed in: the sign-in page, then back here."""
    return RedirectResponse(f"/admin/login?next={request.url.path}", status_code=303)


def safe_next(value: Any) -> str:
    """Where to go after signing in: a console path only, never another site."""
    text = str(value or "")
    if text.startswith("/admin") and "//" not in text and "\\" not in text and text.isascii():
        return text[:200]
    return "/admin"
