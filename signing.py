"""DKIM signatures (RFC 6376) on the bytes drip sends: relaxed/relaxed, RSA-SHA256 and
Ed25519-SHA256 (RFC 8463), one signature per configured key.

The canonicalisation is done here, in a few regular expressions and hashlib; the private-key
operation goes through `cryptography` (OpenSSL), about 0.25 ms for RSA-2048 where pure-Python
arithmetic takes fifty times as long. It holds the GIL meanwhile, so SigningTransport hands the
digests of a batch to a worker process (DRIP_DKIM_PROCESSES) and sends each chunk as soon as
its signatures are back: the dispatcher's claim-and-render loop keeps the interpreter.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import multiprocessing
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .config import DKIMKey, Settings, load_dkim_key
from .emails.mime import Outgoing
from .send import ParallelTransport, SendResult, SendStatus, Transport

log = logging.getLogger("drip.signing")

# Signed when present, in this order; each name is listed once more than it occurs
# ("oversigned", RFC 6376 §8.15), so nobody can add a second From or Subject on the way.
SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
    "list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id",
)  # fmt: skip
FOLD = b"\r\n\t"
_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")  # what smtplib turns into CRLF on the wire
_WSP_RUN = re.compile(rb"[ \t]{2,}|\t")  # a run that is not already one space


class DKIMError(ValueError):
    """The message cannot be signed as it is (a header without a name, no From)."""


def relaxed_header(field: bytes) -> bytes:
    """RFC 6376 §3.4.2: lowercase name, unfolded value, whitespace runs as one space."""
    name, _, value = field.partition(b":")
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


# The lessons of one day share most of their headers (From, Subject, List-Id, Feedback-ID...):
# each is canonicalised once, not once a message.
_relaxed_header_seen = functools.lru_cache(maxsize=4096)(relaxed_header)


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4: no whitespace at line ends, runs as one space, no empty lines at the
    end, and one CRLF after the last line (nothing at all for an empty body)."""
    if b"\t" in body or b"  " in body:  # rare in quoted-printable text: skip the regex
        body = _WSP_RUN.sub(b" ", body)
    body = body.replace(b" \r\n", b"\r\n").rstrip(b"\r\n")  # each run is one space now
    if body.endswith(b" "):
        body = body[:-1].rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def header_fields(head: bytes) -> list[tuple[str, bytes]]:
    """(lowercase name, the field as written, folds included) for each header, in order."""
    fields: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b"\r\n" + line)  # a folded line
            continue
        name, colon, _ = line.partition(b":")
        if not colon or not name.strip():
            raise DKIMError(f"a header line without a name: {line[:60]!r}")
        fields.append((name.strip().lower().decode("ascii", "replace"), line))
    return fields


@dataclass(frozen=True)
class SigningKey:
    """A selector and its private key, parsed once."""

    selector: str
    key: DKIMKey

    @property
    def algorithm(self) -> str:
        return "rsa-sha256" if isinstance(self.key, rsa.RSAPrivateKey) else "ed25519-sha256"

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature of what has this SHA-256 digest (RFC 8463 §3: Ed25519 signs it too)."""
        return sign_digest(self.key, digest)

    def pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())  # fmt: skip

    def dns_value(self) -> str:
        """The TXT record at SELECTOR._domainkey.DOMAIN that lets receivers check signatures."""
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            raw = self.key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


@dataclass(frozen=True)
class Prepared:
    """A message ready for its signatures: its bytes (line ends CRLF) and, per key, the
    DKIM-Signature field up to its empty b= and the SHA-256 digest of what that key signs."""

    data: bytes
    fields: list[bytes]
    digests: list[bytes]


class Signer:
    """Signs messages for one domain with one or more keys (RSA, and Ed25519 beside it).

    `cryptography` holds the GIL through an RSA signature (about 0.25 ms of the 0.3 ms a
    message costs), which the sending threads would take from the claiming and rendering one.
    So `sign_all` does the canonicalisation and hashing here and hands only the digests to
    `processes` worker processes (0: signs in the calling thread)."""

    def __init__(self, domain: str, keys: Sequence[SigningKey], processes: int = 1) -> None:
        if not keys:
            raise ValueError("a DKIM signer needs at least one key")
        self.domain = domain
        self.keys = list(keys)
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        """The configured signer, or None when DKIM is not configured (Settings checked it)."""
        if not (settings.dkim_domain and settings.dkim_selector and settings.dkim_key_file):
            return None
        first = load_dkim_key(settings.dkim_key_file, "dkim_key_file")
        keys = [SigningKey(settings.dkim_selector, first)]
        if settings.dkim_ed25519_selector and settings.dkim_ed25519_key_file:
            key = load_dkim_key(settings.dkim_ed25519_key_file, "dkim_ed25519_key_file")
            keys.append(SigningKey(settings.dkim_ed25519_selector, key))
        return cls(settings.dkim_domain, keys, settings.dkim_processes)

    def sign(self, data: bytes) -> bytes:
        """`data` with a DKIM-Signature header per key in front, signed in this thread."""
        prepared = self.prepare(data)
        return self.finish(prepared, _sign_here(self, [prepared.digests])[0])

    def sign_all(
        self, messages: Sequence[bytes], chunk: int = 50
    ) -> Iterator[list[bytes | DKIMError]]:
        """Each message signed (or why it cannot be), a chunk at a time: every chunk's digests
        go to the worker processes at once, and each chunk is yielded as soon as its signatures
        are back, so the first can be sent while the others are being signed."""
        prepared = [_prepared_or_error(self, data) for data in messages]
        chunks = [prepared[i : i + chunk] for i in range(0, len(prepared), chunk)]
        pool = self._workers()
        signing = [_digests(part) for part in chunks]
        try:
            futures = [pool.submit(_sign_in_worker, each) for each in signing] if pool else []
        except BrokenProcessPool:  # a worker died since the last batch
            self.close()
            futures = []
        for index, part in enumerate(chunks):
            signatures = iter(self._signatures(futures[index] if futures else None, signing[index]))
            yield [
                p if isinstance(p, DKIMError) else self.finish(p, next(signatures)) for p in part
            ]

    def _signatures(
        self, future: Future[list[list[bytes]]] | None, digests: list[list[bytes]]
    ) -> list[list[bytes]]:
        """A worker's signatures; if the worker died (killed, out of memory), they are made
        here, and the next batch starts new workers."""
        if future is None:
            return _sign_here(self, digests)
        try:
            return future.result()
        except BrokenProcessPool:
            log.warning("a DKIM signing process died; this batch is signed in its sending thread")
            self.close()
            return _sign_here(self, digests)

    def prepare(self, data: bytes) -> Prepared:
        """The canonical headers and the body hash of `data` (line ends made CRLF, as smtplib
        would make them on the wire, so what is signed is what arrives), and a field per key."""
        if not data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n"):
            data = _LINE_ENDS.sub(b"\r\n", data)
        head, blank, body = data.partition(b"\r\n\r\n")
        if not blank:
            head, body = data.removesuffix(b"\r\n"), b""
        fields = header_fields(head)
        present = [name for name, _ in fields]
        if "from" not in present:
            raise DKIMError("the message has no From header")
        names = [n for n in SIGNED_HEADERS if n in present for _ in range(present.count(n) + 1)]
        signed = _selected(fields, names)
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()
        own = [self._field(key, names, body_hash) for key in self.keys]
        digests = [hashlib.sha256(signed + relaxed_header(f)[:-2]).digest() for f in own]
        return Prepared(data, own, digests)

    def finish(self, prepared: Prepared, signatures: Sequence[bytes]) -> bytes:
        """The message with its DKIM-Signature fields in front, b= folded in."""
        out = []
        for field, signature in zip(prepared.fields, signatures, strict=True):
            value = base64.b64encode(signature)
            out.append(field + FOLD.join(value[i : i + 72] for i in range(0, len(value), 72)))
        return b"\r\n".join(out) + b"\r\n" + prepared.data

    def _field(self, key: SigningKey, names: list[str], bh: str) -> bytes:
        """One key's DKIM-Signature field up to an empty b=, over which (and the signed
        headers) its signature is computed (RFC 6376 §3.7)."""
        return (
            f"DKIM-Signature: v=1; a={key.algorithm}; c=relaxed/relaxed; d={self.domain};"
            f" s={key.selector};\r\n\th={_fold_names(names)};\r\n\tbh={bh};\r\n\tb="
        ).encode()

    def _workers(self) -> ProcessPoolExecutor | None:
        """The worker processes, started at the first batch (spawned: forking a process with
        threads is not safe), each given the keys once; None: sign here."""
        with self._lock:
            if self._pool is None and self.processes > 0:
                self._pool = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_load_keys, initargs=([key.pem() for key in self.keys],),
                )  # fmt: skip
            return self._pool

    def close(self) -> None:
        """Stop the worker processes (started again if the signer is used after)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def sign_digest(key: DKIMKey, digest: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    return key.sign(digest)


_WORKER_KEYS: list[DKIMKey] = []  # in a worker process: the signer's keys, in order


def _load_keys(pems: list[bytes]) -> None:
    _WORKER_KEYS[:] = [load_pem_private_key(pem, password=None) for pem in pems]  # type: ignore[misc]


def _sign_in_worker(digests: list[list[bytes]]) -> list[list[bytes]]:
    return [
        [sign_digest(k, d) for k, d in zip(_WORKER_KEYS, each, strict=True)] for each in digests
    ]


def _sign_here(signer: Signer, digests: list[list[bytes]]) -> list[list[bytes]]:
    return [[k.sign_digest(d) for k, d in zip(signer.keys, each, strict=True)] for each in digests]


def _digests(part: list[Prepared | DKIMError]) -> list[list[bytes]]:
    return [p.digests for p in part if isinstance(p, Prepared)]


def _prepared_or_error(signer: Signer, data: bytes) -> Prepared | DKIMError:
    try:
        return signer.prepare(data)
    except (ValueError, TypeError) as exc:
        return exc if isinstance(exc, DKIMError) else DKIMError(str(exc))


def _selected(fields: list[tuple[str, bytes]], names: list[str]) -> bytes:
    """The canonical headers named in h=, each name taking its instances from the bottom up;
    a name listed more often than it occurs adds nothing (RFC 6376 §5.4.2)."""
    instances: dict[str, list[bytes]] = {}
    for name, field in fields:
        instances.setdefault(name, []).append(field)
    out = []
    for name in names:
        stack = instances.get(name)
        if stack:
            out.append(_relaxed_header_seen(stack.pop()))
    return b"".join(out)


def _fold_names(names: list[str]) -> str:
    """h='s names, folded after a colon so no line passes 78 characters."""
    lines, line = [], ""
    for name in names:
        if line and len(line) + len(name) > 66:
            lines.append(line)
            line = ""
        line += name + ":"
    lines.append(line)
    return "\r\n\t".join(lines).removesuffix(":")


class SigningTransport(Transport):
    """Signs each message, then hands the batch to the transport it wraps. A message that
    cannot be signed fails alone, as UNSENDABLE with its reason; the rest go on."""

    def __init__(self, transport: Transport, signer: Signer) -> None:
        self.transport = transport
        self.signer = signer

    def open(self) -> None:
        self.transport.open()

    def close(self) -> None:
        self.transport.close()

    def send_messages(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        results: list[SendResult] = []
        for signed in self.signer.sign_all([message.data for message in messages]):
            part = messages[len(results) : len(results) + len(signed)]
            results += self._send_signed(part, signed)
        return results

    def _send_signed(
        self, messages: Sequence[Outgoing], signed: list[bytes | DKIMError]
    ) -> list[SendResult]:
        refused: dict[int, SendResult] = {}
        ready: list[Outgoing] = []
        for index, (message, data) in enumerate(zip(messages, signed, strict=True)):
            if isinstance(data, DKIMError):
                log.warning("cannot sign %s with DKIM: %s", message.message_id, data)
                reason = " ".join(f"cannot sign with DKIM: {data}".split())[:500]
                refused[index] = SendResult(SendStatus.UNSENDABLE, reason)
            else:
                ready.append(replace(message, data=data))
        answers = iter(self.transport.send_messages(ready) if ready else [])
        return [refused[i] if i in refused else next(answers) for i in range(len(messages))]


def signing(transport: Transport, signer: Signer) -> Transport:
    """`transport`, signing what it sends. Parallel connections each sign their own share in
    their own thread, so one signs while another waits on the relay."""
    if isinstance(transport, ParallelTransport):
        transport.transports = [SigningTransport(t, signer) for t in transport.transports]
        return transport
    return SigningTransport(transport, signer)
