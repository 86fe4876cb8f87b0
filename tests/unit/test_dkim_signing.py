"""DKIM signatures on rendered lessons, checked by an independent verifier (dkimpy) against
public keys published through a DNS function of the test's own: no network."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drip.config import BUNDLED_COURSES, Settings
from drip.course import Course, load_course
from drip.emails import LessonRenderer, Links, Outgoing, Recipient, render_confirmation
from drip.errors import ConfigError
from drip.send import MemoryTransport, ParallelTransport, SendStatus
from drip.signing import Signer, SigningTransport, relaxed_body, relaxed_header, signing

from conftest import DKIMKeys, write_course

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RENDERER = LessonRenderer(Links("https://drip.example.org"))
BUNDLED = load_course(BUNDLED_COURSES / "bone-health")


def signer(keys: DKIMKeys, ed25519_too: bool = True) -> Signer:
    built = Signer.from_settings(Settings().with_values(keys.settings(ed25519_too)))
    assert built is not None
    return built


def lesson(course: Course, day: int, name: str = "Zoë Ünal-Ångström") -> Outgoing:
    recipient = Recipient("zoe@example.org", name, "u" * 32, "m" * 32)
    return RENDERER.render(course, day, recipient, message_id=f"<d{day}@example.com>", now=NOW)


def verified(keys: DKIMKeys, data: bytes) -> list[bool]:
    """The verdict on each DKIM-Signature of `data`, top to bottom."""
    count = data.split(b"\r\n\r\n", 1)[0].lower().count(b"\r\ndkim-signature:") + (
        data.lower().startswith(b"dkim-signature:")
    )
    return [_verify_one(keys, data, i) for i in range(count)]


def _verify_one(keys: DKIMKeys, data: bytes, index: int) -> bool:
    try:
        return bool(dkim.DKIM(data).verify(idx=index, dnsfunc=keys.dnsfunc))
    except dkim.ValidationError:  # how dkimpy reports a body hash that does not match
        return False


def test_relaxed_canonicalisation_matches_the_rfc_example() -> None:
    """RFC 6376 §3.4.6."""
    assert relaxed_header(b"A: X") == b"a:X\r\n"
    assert relaxed_header(b"B : Y\t\r\n\tZ  ") == b"b:Y Z\r\n"
    assert relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert relaxed_body(b"") == b"" and relaxed_body(b"\r\n \r\n") == b""
    assert (
        relaxed_body(b"end \r\n\t") == b"end\r\n"
        and relaxed_body(b"no newline") == b"no newline\r\n"
    )


@pytest.mark.parametrize("day", range(1, BUNDLED.total_days + 1))
def test_every_bundled_lesson_verifies_with_rsa_and_ed25519(dkim_keys: DKIMKeys, day: int) -> None:
    original = lesson(BUNDLED, day).data
    data = signer(dkim_keys).sign(original)
    assert verified(dkim_keys, data) == [True, True]
    added, rest = data[: -len(original)], data[-len(original) :]
    assert rest == original, "the message itself goes out unchanged"
    assert added.startswith(
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=rsa;"
    )
    assert (
        b"\r\nDKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=ed;"
        in added
    )
    assert max(len(line) for line in added.split(b"\r\n")) <= 78


def test_the_signature_covers_the_headers_that_matter(dkim_keys: DKIMKeys) -> None:
    data = signer(dkim_keys, ed25519_too=False).sign(lesson(BUNDLED, 1).data)
    field = data.split(b"\r\n\r\n", 1)[0].split(b"bh=")[0].replace(b"\r\n\t", b"")
    names = field.split(b"h=", 1)[1].rstrip(b"; ").split(b":")
    expected = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to",
                b"mime-version", b"content-type", b"list-id", b"list-unsubscribe",
                b"list-unsubscribe-post", b"feedback-id"]  # fmt: skip
    assert names == [name for name in expected for _ in range(2)], "each one oversigned"


def test_confirmation_emails_verify(dkim_keys: DKIMKeys) -> None:
    message = render_confirmation(
        BUNDLED, "zoe@example.org", "Zoë", "https://drip.example.org/confirm/t",
        message_id="<c@example.com>", now=NOW,
    )  # fmt: skip
    assert verified(dkim_keys, signer(dkim_keys).sign(message.data)) == [True, True]


def awkward(data: bytes) -> bytes:
    """Folded headers with tabs and runs of spaces, indented body lines, trailing blank lines
    and whitespace-only lines: what relaxed canonicalisation exists for."""
    head, body = data.split(b"\r\n\r\n", 1)
    long_value = b"\r\n  ".join(b" ".join([b"word"] * 8) for _ in range(8))
    head += b"\r\nFeedback-ID:  lesson-1 :\tbone-health \r\n\t  :drip  \r\nX-Long: " + long_value
    return head + b"\r\n\r\n  indented line\r\n\tand a tab\r\n" + body + b"\r\n\r\n \r\n\r\n"


@pytest.mark.parametrize("encoded", [True, False], ids=["rfc2047", "utf8"])
def test_awkward_whitespace_and_a_non_ascii_subject_verify(
    dkim_keys: DKIMKeys, tmp_path: Path, encoded: bool
) -> None:
    """A long non-ASCII subject, folded over several lines as RFC 2047 words, or as raw UTF-8
    (what an SMTPUTF8 message carries); a body with indented lines and non-ASCII text."""
    folder = write_course(tmp_path / "tiny", days=2)
    (folder / "01.md").write_text(
        "---\nday: 1\nsubject: Day one\ntitle: Titre\nteaser: Un aperçu.\n---\n\n"
        "Bonjour {{ first_name }} ☀\n\n    indented code line   \n\nend\n\n\n",
        encoding="utf-8",
    )
    subject = "Leçon 1 : über die Knochen, ça marche —" + " très bien" * 12
    if encoded:
        line = policy.SMTP.header_factory("Subject", subject).fold(policy=policy.SMTP).encode()
        assert line.count(b"\r\n") > 2, "a folded header"
    else:
        line = f"Subject: {subject}\r\n".encode()
    data = awkward(lesson(load_course(folder), 1).data.replace(b"Subject: Day one\r\n", line))
    signed = signer(dkim_keys).sign(data)
    assert verified(dkim_keys, signed) == [True, True]
    assert b":feedback-id:feedback-id;" in signed.replace(b"\r\n\t", b"")
    assert Outgoing("a@b", "c@d", "<x>", signed).as_message()["Subject"] == subject


def test_lf_line_ends_are_signed_as_they_go_on_the_wire(dkim_keys: DKIMKeys) -> None:
    data = lesson(BUNDLED, 2).data.replace(b"\r\n", b"\n")
    signed = signer(dkim_keys).sign(data)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert verified(dkim_keys, signed) == [True, True]


TAMPERING = {
    "body": lambda d: _body(d, b"x"),
    "subject": lambda d: d.replace(b"Subject: Day 1", b"Subject: Day 9"),
    "added To": lambda d: d.replace(b"\r\nTo: ", b"\r\nTo: Eve <eve@example.net>\r\nTo: "),
    "second From": lambda d: d.replace(b"\r\n\r\n", b"\r\nFrom: eve@example.net\r\n\r\n", 1),
}


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_tampered_message_fails(dkim_keys: DKIMKeys, tamper) -> None:
    signed = signer(dkim_keys).sign(lesson(BUNDLED, 1).data)
    changed = tamper(signed)
    assert changed != signed
    assert verified(dkim_keys, changed) == [False, False]


def _body(data: bytes, extra: bytes) -> bytes:
    head, body = data.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n" + body.replace(b"Bone", b"B" + extra + b"ne", 1)


def test_an_unsignable_message_fails_alone(dkim_keys: DKIMKeys) -> None:
    inner = MemoryTransport()
    good = [lesson(BUNDLED, 1), lesson(BUNDLED, 2)]
    nameless = Outgoing("a@example.com", "b@example.com", "<n@x>", b": no name\r\n\r\nbody\r\n")
    no_from = Outgoing(
        "a@example.com", "b@example.com", "<f@x>", b"To: b@example.com\r\n\r\nhi\r\n"
    )
    results = SigningTransport(inner, signer(dkim_keys)).send_messages(
        [good[0], nameless, no_from, good[1]]
    )
    assert [r.status for r in results] == [
        SendStatus.SENT, SendStatus.UNSENDABLE, SendStatus.UNSENDABLE, SendStatus.SENT,
    ]  # fmt: skip
    assert "header line without a name" in results[1].reply
    assert "no From header" in results[2].reply
    assert [m.message_id for m in inner.outbox] == ["<d1@example.com>", "<d2@example.com>"]
    assert all(verified(dkim_keys, m.data) == [True, True] for m in inner.outbox)


def test_parallel_connections_each_sign_their_share(dkim_keys: DKIMKeys) -> None:
    transport = signing(ParallelTransport(MemoryTransport, 2), signer(dkim_keys))
    assert isinstance(transport, ParallelTransport)
    broken = Outgoing("a@example.com", "b@example.com", "<b@x>", b"To: b@example.com\r\n\r\n")
    batch = [lesson(BUNDLED, 1), lesson(BUNDLED, 2), broken, lesson(BUNDLED, 3)]
    results = transport.send_messages(batch)
    assert [r.status for r in results] == [SendStatus.SENT] * 2 + [
        SendStatus.UNSENDABLE, SendStatus.SENT,
    ]  # fmt: skip
    outboxes = [t.transport.outbox for t in transport.transports]  # type: ignore[attr-defined]
    assert [[m.message_id for m in outbox] for outbox in outboxes] == [
        ["<d1@example.com>"], ["<d2@example.com>", "<d3@example.com>"],
    ]  # fmt: skip
    assert all(verified(dkim_keys, m.data) == [True, True] for o in outboxes for m in o)


def pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("complete", "values", "message"),
    [
        (False, {"dkim_domain": "example.com"}, "set all three"),
        (False, {"dkim_ed25519_selector": "ed"}, "go together"),
        (True, {"dkim_key_file": "missing.pem"}, "cannot be read"),
        (True, {"dkim_key_file": "garbage.pem"}, "is not an unencrypted PEM private key"),
        (True, {"dkim_key_file": "ec.pem"}, "cannot sign DKIM; use RSA or Ed25519"),
        (True, {"dkim_ed25519_key_file": "rsa.pem"}, "is not an Ed25519 key"),
        (True, {"dkim_selector": "bad selector"}, "is not a name"),
    ],
)
def test_bad_dkim_settings_are_one_line_errors(
    dkim_keys: DKIMKeys, tmp_path: Path, complete: bool, values: dict[str, str], message: str
) -> None:
    """Each setting alone is fine; the whole must hold together, checked as it loads."""
    (tmp_path / "garbage.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    (tmp_path / "ec.pem").write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))
    (tmp_path / "rsa.pem").write_bytes((dkim_keys.folder / "rsa.pem").read_bytes())
    settings = dkim_keys.settings() if complete else {}
    settings |= {k: (tmp_path / v if k.endswith("_file") else v) for k, v in values.items()}
    with pytest.raises(ConfigError, match=message) as caught:
        Settings().with_values(settings)
    assert "\n" not in str(caught.value)


def test_dkim_settings_load_from_the_environment(dkim_keys: DKIMKeys) -> None:
    environ = {f"DRIP_{k.upper()}": str(v) for k, v in dkim_keys.settings().items()}
    settings = Settings.load(environ, toml_path=Path("/nonexistent/drip.toml"))
    assert settings.dkim_key_file == dkim_keys.folder / "rsa.pem"
    assert Signer.from_settings(settings) is not None
    assert Signer.from_settings(Settings()) is None


def test_worker_processes_sign_the_same_bytes_as_the_sending_thread(dkim_keys: DKIMKeys) -> None:
    """The key operations go to a worker process, chunk by chunk; RSA PKCS#1 v1.5 and Ed25519
    are deterministic, so the bytes are those signed in this thread, and verify."""
    workers = signer(dkim_keys)
    broken = b"To: b@example.com\r\n\r\nno From\r\n"
    batch = [lesson(BUNDLED, day).data for day in (1, 2, 3)] + [broken, lesson(BUNDLED, 4).data]
    try:
        chunks = list(workers.sign_all(batch, chunk=2))
    finally:
        workers.close()
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    signed = [data for chunk in chunks for data in chunk]
    assert "no From header" in str(signed[3])
    here = Signer(workers.domain, workers.keys, processes=0)
    for data, original in zip(signed[:3] + signed[4:], batch[:3] + batch[4:], strict=True):
        assert data == here.sign(original)
        assert verified(dkim_keys, as_bytes(data)) == [True, True]


def as_bytes(signed: bytes | Exception) -> bytes:
    assert isinstance(signed, bytes), signed
    return signed


def test_a_dead_worker_process_costs_no_message(dkim_keys: DKIMKeys) -> None:
    workers = signer(dkim_keys)
    try:
        (data,) = next(workers.sign_all([lesson(BUNDLED, 1).data]))
        assert verified(dkim_keys, as_bytes(data)) == [True, True]
        for process in list(workers._pool._processes.values()):  # type: ignore[union-attr]
            os.kill(process.pid, signal.SIGKILL)
            process.join()
        (data,) = next(workers.sign_all([lesson(BUNDLED, 2).data]))
        assert verified(dkim_keys, as_bytes(data)) == [True, True]
        (data,) = next(workers.sign_all([lesson(BUNDLED, 3).data]))  # new workers
        assert verified(dkim_keys, as_bytes(data)) == [True, True]
    finally:
        workers.close()
