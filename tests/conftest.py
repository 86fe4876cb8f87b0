"""Shared fixtures: a migrated database on SQLite and on the machine's PostgreSQL, a real SMTP
server on loopback, and a Runtime wired to both."""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import Engine, create_engine, text
from starlette.testclient import TestClient

from drip import migrations
from drip.config import BUNDLED_COURSES, Settings
from drip.models import make_engine
from drip.runtime import Runtime
from drip.web import create_app

from imap_server import imap_server  # noqa: F401  (a fixture)
from smtp_server import smtp_server, smtputf8_server  # noqa: F401  (fixtures)
from webhook_receiver import receiver  # noqa: F401  (a fixture)

logging.getLogger("mail.log").setLevel(logging.WARNING)  # the test SMTP server's chatter

POSTGRES_URL = os.environ.get(
    "DRIP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday, 06:00 UTC


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file, or a schema of its own on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'drip.db'}"
        _migrate(url)
        yield url
        return
    schema = f"drip_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        _migrate(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def make_runtime(database_url: str, tmp_path: Path, **settings: object) -> Runtime:
    values = {
        "database_url": database_url,
        "outbox_dir": tmp_path / "outbox",
        "bounces_dir": tmp_path / "bounces-unread",
        "base_url": "https://drip.example.org",
        "courses_dir": BUNDLED_COURSES,
        **settings,
    }
    return Runtime(Settings().with_values(values))


class PassNow:
    """Where `drip run` would wake its scheduler, run the confirmation pass at once: the web
    app in-process has no scheduler of its own."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def wake(self) -> None:
        self.rt.confirmations.run_pass(self.rt.clock())


@pytest.fixture
def runtime(database_url: str, tmp_path: Path, smtp_server) -> Iterator[Runtime]:  # noqa: F811
    """drip wired to the test database and the loopback SMTP server."""
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url)
    rt.waker = PassNow(rt)
    yield rt
    rt.close()


@pytest.fixture
def env(database_url: str, tmp_path: Path, smtp_server, monkeypatch) -> dict[str, str]:  # noqa: F811
    """DRIP_* variables for commands run in-process: the test database and SMTP server."""
    values = {
        "DRIP_DATABASE_URL": database_url,
        "DRIP_SMTP_URL": smtp_server.url,
        "DRIP_BASE_URL": "https://drip.example.org",
        "DRIP_CONFIG": str(tmp_path / "absent.toml"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)
    return values


class Clock:
    """A clock the tests move: the web app reads it per request."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(runtime: Runtime, clock: Clock) -> Iterator[TestClient]:
    """The real app in process, on the test database and SMTP server, at `clock`'s time."""
    runtime.clock = clock
    with TestClient(create_app(runtime), base_url="https://drip.example.org") as client:
        yield client


COURSE_TOML = """\
slug = "tiny"
title = "Tiny Course"
sender_name = "Tiny Sender"
sender_email = "lessons@tiny.example"
reply_to = "reply@tiny.example"
postal_address = "1 Tiny Road, Smalltown"
timezone = "Europe/Paris"
send_time = "08:30"
"""


def lesson_file(day: int, *, teaser: str | None = None, body: str | None = None) -> str:
    teaser = f"Teaser of lesson {day}." if teaser is None else teaser
    body = body if body is not None else f"Lesson {day} body for {{{{ first_name }}}}.\n"
    return (
        f"---\nday: {day}\nsubject: Subject {day}\ntitle: Title {day}\nteaser: {teaser}\n---\n\n"
        f"{body}"
    )


def write_course(folder: Path, days: int = 3, toml: str = COURSE_TOML) -> Path:
    """A small valid course in `folder`; tests then break it on purpose."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "course.toml").write_text(toml, encoding="utf-8")
    for day in range(1, days + 1):
        (folder / f"{day:02d}.md").write_text(lesson_file(day), encoding="utf-8")
    return folder


@dataclass
class DKIMKeys:
    """Key files for the DKIM settings, and the TXT records a receiver would look up."""

    folder: Path
    domain: str = "example.com"
    records: dict[str, bytes] = field(default_factory=dict)

    def add(self, selector: str, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> Path:
        path = self.folder / f"{selector}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public = key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            value = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
        else:
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            value = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
        self.records[f"{selector}._domainkey.{self.domain}"] = value
        return path

    def dnsfunc(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy's DNS lookup, answered from `records`: no network."""
        text = name.decode() if isinstance(name, bytes) else name
        return self.records.get(text.rstrip("."))

    def settings(self, ed25519_too: bool = True) -> dict[str, object]:
        values: dict[str, object] = {
            "dkim_domain": self.domain, "dkim_selector": "rsa",
            "dkim_key_file": self.folder / "rsa.pem",
        }  # fmt: skip
        if ed25519_too:
            values["dkim_ed25519_selector"] = "ed"
            values["dkim_ed25519_key_file"] = self.folder / "ed.pem"
        return values


@pytest.fixture(scope="session")
def dkim_keys(tmp_path_factory: pytest.TempPathFactory) -> DKIMKeys:
    """An RSA-2048 key (selector `rsa`) and an Ed25519 key (selector `ed`) for example.com."""
    keys = DKIMKeys(tmp_path_factory.mktemp("dkim"))
    keys.add("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    keys.add("ed", ed25519.Ed25519PrivateKey.generate())
    return keys
