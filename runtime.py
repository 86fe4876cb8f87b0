"""The parts of a running drip, built once from Settings: database, courses, transport, renderer.

The CLI and the web app both start from a Runtime, so each part is configured in one place.
"""

from __future__ import annotations

import gc
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cryptography import x509
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from . import migrations
from .breaker import Limits
from .config import Settings, domain_rates, sns_trusted_cas, warmup_start
from .course import Course, load_courses
from .emails import LessonRenderer, Links
from .endpoints import SMTPRelay, parse_smtp_urls
from .errors import DripError, UnknownCourse
from .hooks import Deliverer
from .metrics import Metrics
from .models import make_engine, make_sessionmaker, writer
from .scheduler.dispatch import Dispatcher, RetryPolicy
from .scheduler.gate import Gate, Route
from .scheduler.queries import ALL_KINDS
from .scheduler.runner import Wakeable
from .send import Transport, transport_from_url
from .signing import Signer, signing
from .webhooks import CertificateCache

HTTP_TIMEOUT = 10.0
HTTP_MAX_BYTES = 256 * 1024  # an SNS certificate is a few kB; a confirmation answer less


def utc_now() -> datetime:
    """The wall clock: read here, at the composition root, and passed down as `now`."""
    return datetime.now(UTC)


def https_get(url: str) -> bytes:
    """The body of an https URL (a 2xx answer), within HTTP_TIMEOUT and HTTP_MAX_BYTES; any
    failure raises. Only https, so a URL that slipped through cannot read a local file."""
    if not url.startswith("https://"):
        raise ValueError("only https URLs are fetched")
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as answer:
        body: bytes = answer.read(HTTP_MAX_BYTES + 1)
    if len(body) > HTTP_MAX_BYTES:
        raise ValueError(f"answer over {HTTP_MAX_BYTES} bytes")
    return body


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook endpoint that redirects has not taken the message: its 3xx is the answer."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


WEBHOOK_OPENER = urllib.request.build_opener(_NoRedirects)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST `body` to a webhook endpoint: (HTTP status, "") or (status or 0, what went wrong).
    Redirects are not followed; the answer's body is not read beyond a few bytes."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with WEBHOOK_OPENER.open(request, timeout=timeout) as answer:
            answer.read(1024)
            return int(answer.status), ""
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code), f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:  # refused, timed out, TLS, a malformed answer
        return 0, f"{type(exc).__name__}: {exc}"


def settle_heap() -> None:
    """For a process that serves or sends until stopped, once it has started: what exists now
    (the libraries, the settings, the app) lives as long as the process, so the garbage
    collector is told to stop walking it on every full collection (gc.freeze). Under signup
    load a full collection fell from 62 to 10 ms, and the longest pause a request met from
    199 to 22 ms."""
    gc.collect()
    gc.freeze()


class Runtime:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.waker: Wakeable | None = None  # set when this process runs a scheduler
        self.http_get: Callable[[str], bytes] = https_get  # SNS certificates, SubscribeURLs

    def close(self) -> None:
        """Release the database connections (if any were opened) and the SMTP connection."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "transport" in self.__dict__:
            self.transport.close()
        if self.__dict__.get("signer") is not None:
            self.signer.close()  # type: ignore[union-attr]

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a database that `drip init` has set up (a clear error otherwise)."""
        if not inspect(self.engine).has_table("alembic_version"):
            raise DripError(
                f"the database at {self.engine.url.render_as_string(hide_password=True)} "
                "is not initialised: run `drip init` first"
            )
        return make_sessionmaker(self.engine)

    @cached_property
    def write_sessions(self) -> sessionmaker[Session]:
        """Sessions whose transactions take SQLite's write lock at BEGIN: a web write then waits
        for a busy worker (up to the busy timeout) instead of failing with "database is locked"."""
        self.sessions  # noqa: B018 -- the same check of an initialised database
        return make_sessionmaker(writer(self.engine))

    def init_database(self) -> None:
        migrations.upgrade(self.engine)

    @cached_property
    def courses(self) -> dict[str, Course]:
        return load_courses(self.settings.courses_dir)

    def course(self, slug: str) -> Course:
        try:
            return self.courses[slug]
        except KeyError:
            known = ", ".join(sorted(self.courses)) or "none"
            raise UnknownCourse(f"unknown course {slug!r} (courses: {known})") from None

    @cached_property
    def links(self) -> Links:
        return Links(self.settings.base_url)

    @cached_property
    def transport(self) -> Transport:
        """The dispatcher's transport; nothing else sends on it (see new_transport)."""
        return self.new_transport()

    def new_transport(self, relay: SMTPRelay | None = None) -> Transport:
        """A transport of one's own (to `relay`, or the first relay DRIP_SMTP_URL names): an
        SMTP connection is never shared between threads. With DKIM configured, it signs each
        message in the thread that sends it."""
        transport = transport_from_url(
            relay or (self.relays[0] if self.relays else None),
            self.settings.outbox_dir,
            connections=self.settings.smtp_connections,
        )
        return transport if self.signer is None else signing(transport, self.signer)

    @cached_property
    def relays(self) -> list[SMTPRelay]:
        return parse_smtp_urls(self.settings.smtp_url) if self.settings.smtp_url else []

    def gate(self, first: Transport) -> Gate:
        """Relays (the first on `first`, the others on transports of their own) and the
        budgets every worker shares."""
        routes = [Route("outbox", first)]
        if self.relays:
            routes = [
                Route(relay.name, first if n == 0 else self.new_transport(relay), relay.weight,
                      relay.rate or self.settings.send_rate, relay.daily, relay.warmup)
                for n, relay in enumerate(self.relays)
            ]  # fmt: skip
        return Gate(self.engine, routes, domain_rates=domain_rates(self.settings),
                    warmup_start=warmup_start(self.settings),
                    rest_seconds=self.settings.relay_rest_seconds)  # fmt: skip

    @cached_property
    def signer(self) -> Signer | None:
        """The DKIM signer, its keys parsed once; None when DKIM is not configured."""
        return Signer.from_settings(self.settings)

    @cached_property
    def renderer(self) -> LessonRenderer:
        return LessonRenderer(self.links)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """Lessons and confirmation emails, on the transport of its own."""
        return self._dispatcher(ALL_KINDS, self.transport)

    @cached_property
    def confirmations(self) -> Dispatcher:
        """Confirmation emails only: for `drip serve` and `drip subscribe`, on a transport of
        their own, so no connection is ever shared with the lesson sender."""
        return self._dispatcher(frozenset({"confirmations"}), self.new_transport())

    def _dispatcher(self, kinds: frozenset[str], transport: Transport) -> Dispatcher:
        self.sessions  # noqa: B018 -- fail early, with the message above, on an empty database
        return Dispatcher(
            engine=self.engine,
            courses=self.courses,
            transport=transport,
            renderer=self.renderer,
            links=self.links,
            kinds=kinds,
            batch_size=self.settings.batch_size,
            lease=timedelta(seconds=self.settings.lease_seconds),
            retry=RetryPolicy(
                base=timedelta(seconds=self.settings.retry_base_seconds),
                ceiling=timedelta(seconds=self.settings.retry_ceiling_seconds),
                give_up=timedelta(seconds=self.settings.retry_give_up_seconds),
                rng=random.Random(),
            ),
            verp_secret=self.settings.secret_key,
            bounce_domain=self.settings.bounce_domain,
            gate=self.gate(transport),
            limits=Limits(
                sends=self.settings.breaker_sends,
                complaint_rate=self.settings.breaker_complaint_rate,
                bounce_rate=self.settings.breaker_bounce_rate,
            ),
        )

    @cached_property
    def webhooks(self) -> Deliverer:
        """The delivery pass of outgoing webhooks, beside (never inside) the dispatcher."""
        settings = self.settings
        return Deliverer(
            engine=self.engine, post=http_post, timeout=settings.webhook_timeout_seconds,
            retry=RetryPolicy(
                base=timedelta(seconds=settings.webhook_retry_base_seconds),
                ceiling=timedelta(seconds=settings.webhook_retry_ceiling_seconds),
                give_up=timedelta(seconds=settings.webhook_give_up_seconds),
                rng=random.Random(),
            ),
        )  # fmt: skip

    @cached_property
    def sns_certificates(self) -> CertificateCache:
        """SNS signing certificates, fetched through `http_get` once per process."""
        return CertificateCache(lambda url: self.http_get(url))

    @cached_property
    def sns_trusted(self) -> list[x509.Certificate]:
        """The CAs an SNS signing certificate must chain to, read once."""
        return sns_trusted_cas(self.settings)

    def wake(self) -> None:
        """Ask the running scheduler (if this process has one) for a pass now: a confirmation
        email just queued goes out within seconds, not at the next tick."""
        if self.waker is not None:
            self.waker.wake()
