"""The relays' webhooks: POST /webhooks/ses, /postmark, /mailgun and /sendgrid, each present
only when its settings are. A request is believed once its provider's proof holds (webhooks/);
its events are then recorded (reports.record) in one write transaction, so a request either
counts whole or not at all. Refusals are the verifier's 4xx; a database that cannot be reached
answers 503, which every provider retries. Nothing secret is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import reports
from ..config import Settings, ses_topics
from ..errors import mask_secrets
from ..reports import DatabaseSeenTokens, Outcome
from ..runtime import Runtime
from ..webhooks import (
    ProviderEvent,
    SubscriptionConfirmation,
    WebhookRefused,
    WebhookRequest,
    mailgun_events,
    postmark_events,
    sendgrid_events,
    ses_events,
)

log = logging.getLogger("drip.webhooks")
PREFIX = "/webhooks/"
MAX_BODY = 1024 * 1024  # SendGrid posts its batches once they reach 768 kB
Verified = list[ProviderEvent] | SubscriptionConfirmation
Endpoint = Callable[[Request], Awaitable[Response]]


def body_limits(settings: Settings) -> dict[str, int]:
    """The body limit of the webhook routes, for BodyLimit: at least MAX_BODY."""
    return {PREFIX: max(settings.max_body_bytes, MAX_BODY)}


def routes(runtime: Runtime) -> list[Route]:
    """The routes of the providers this deployment has settings for; the others do not exist
    (404)."""
    hooks = Webhooks(runtime)
    settings = runtime.settings
    enabled = {
        "ses": settings.ses_webhook,
        "postmark": bool(settings.postmark_webhook_user and settings.postmark_webhook_password),
        "mailgun": bool(settings.mailgun_signing_key),
        "sendgrid": bool(settings.sendgrid_public_key),
    }
    if settings.ses_webhook and ses_topics(settings) is None:
        log.warning("DRIP_SES_TOPIC_ARNS is empty: SNS messages of any AWS account's topic are "
                    "believed")  # fmt: skip
    return [
        Route(f"{PREFIX}{name}", hooks.endpoint(name), methods=["POST"], name=f"webhook_{name}")
        for name, on in enabled.items()
        if on
    ]


class Webhooks:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.max_body = body_limits(runtime.settings)[PREFIX]
        self.topics = ses_topics(runtime.settings)

    def endpoint(self, provider: str) -> Endpoint:
        """The handler of one provider: the body is read on the event loop (bounded by
        BodyLimit), the rest runs in the thread pool."""

        async def receive(request: Request) -> Response:
            hook = WebhookRequest(request.method, request.headers, await request.body())
            return await run_in_threadpool(self.answer, provider, hook)

        return receive

    def answer(self, provider: str, hook: WebhookRequest) -> Response:
        """Verify, then record every event in one transaction; the counts, or why not."""
        now = self.rt.clock()
        try:
            verified = None if provider == "mailgun" else self.verify(provider, hook, now)
            if isinstance(verified, SubscriptionConfirmation):
                return self.confirm_subscription(verified)
            with self.rt.write_sessions() as session, session.begin():
                if verified is None:  # Mailgun's replay check is kept with the events
                    verified = self.mailgun(hook, now, session)
                counts = self.record(session, verified, now)
        except WebhookRefused as refusal:
            log.warning("%s webhook refused (%d): %s", provider, refusal.status, refusal.reason)
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        except SQLAlchemyError as error:
            first = mask_secrets(str(error).splitlines()[0] if str(error) else "")
            log.warning("%s webhook not recorded, the database failed: %s: %s",
                        provider, type(error).__name__, first[:200])  # fmt: skip
            return JSONResponse({"error": "the database is unavailable; try again"}, 503)
        return JSONResponse(counts)

    def verify(self, provider: str, hook: WebhookRequest, now: datetime) -> Verified:
        """The events of a provider whose proof needs no database: before any transaction,
        so an SNS certificate being fetched never holds a database lock."""
        settings = self.rt.settings
        if provider == "ses":
            return ses_events(
                hook, now=now, certificates=self.rt.sns_certificates, trusted=self.rt.sns_trusted,
                topics=self.topics, max_body=self.max_body,
            )  # fmt: skip
        if provider == "postmark":
            return postmark_events(
                hook, user=settings.postmark_webhook_user or "",
                password=settings.postmark_webhook_password or "", max_body=self.max_body,
            )  # fmt: skip
        return sendgrid_events(
            hook, now=now, public_key=settings.sendgrid_public_key or "", max_body=self.max_body
        )

    def mailgun(self, hook: WebhookRequest, now: datetime, session: Session) -> list[ProviderEvent]:
        return mailgun_events(
            hook, now=now, signing_key=self.rt.settings.mailgun_signing_key or "",
            seen_tokens=DatabaseSeenTokens(session, now), max_body=self.max_body,
        )  # fmt: skip

    def record(
        self, session: Session, events: list[ProviderEvent], now: datetime
    ) -> dict[str, int]:
        outcomes = [
            reports.record(session, reports.report_of(event), now, self.rt.courses)
            for event in events
        ]
        duplicates = outcomes.count(Outcome.DUPLICATE)
        return {"recorded": len(outcomes) - duplicates, "duplicates": duplicates}

    def confirm_subscription(self, confirmation: SubscriptionConfirmation) -> Response:
        """Visit the SubscribeURL (checked to be on sns.<region>.amazonaws.com) that SNS sent
        to prove this endpoint wants the topic's messages; if that fails, SNS sends again."""
        try:
            self.rt.http_get(confirmation.subscribe_url)
        except Exception as error:  # any failure of the visit: SNS is asked to send it again
            log.warning("SNS subscription to %s not confirmed: %s",
                        confirmation.topic_arn, type(error).__name__)  # fmt: skip
            return JSONResponse({"error": "the subscription could not be confirmed"}, 503)
        log.info("SNS subscription to %s confirmed", confirmation.topic_arn)
        return JSONResponse({"confirmed": confirmation.topic_arn})
