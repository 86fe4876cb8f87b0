"""DKIM signatures (RFC 6376) on the bytes drip sends: relaxed/relaxed, RSA-SHA256 and
Ed25519-SHA256 (RFC 8463), one signature per configured key.

The canonicalisation is done here, in a few regular expressions; the private-key operation goes
through `cryptography` (OpenSSL), about 1 ms for RSA-2048 where pure-Python arithmetic takes ten
times as long. SigningTransport signs in the thread that sends, so the cost stays off the
dispatcher's claim-and-render loop, and with parallel connections each signs its own share.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

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

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.key.sign(hashlib.sha256(data).digest())  # RFC 8463 §3: Ed25519 of SHA-256

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


class Signer:
    """Signs messages for one domain with one or more keys (RSA, and Ed25519 beside it)."""

    def __init__(self, domain: str, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("a DKIM signer needs at least one key")
        self.domain = domain
        self.keys = list(keys)

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
        return cls(settings.dkim_domain, keys)

    def sign(self, data: bytes) -> bytes:
        """`data` with a DKIM-Signature header per key in front (line ends made CRLF, as
        smtplib would make them on the wire, so what is signed is what arrives)."""
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
        return b"".join(self._signature(key, names, signed, body_hash) for key in self.keys) + data

    def _signature(self, key: SigningKey, names: list[str], signed: bytes, bh: str) -> bytes:
        """The DKIM-Signature field of one key, folded, its b= computed over the signed
        headers and the field itself with b= empty (RFC 6376 §3.7)."""
        field = (
            f"DKIM-Signature: v=1; a={key.algorithm}; c=relaxed/relaxed; d={self.domain};"
            f" s={key.selector};\r\n\th={_fold_names(names)};\r\n\tbh={bh};\r\n\tb="
        ).encode()
        value = base64.b64encode(key.sign(signed + relaxed_header(field)[:-2]))
        chunks = [value[i : i + 72] for i in range(0, len(value), 72)]
        return field + FOLD.join(chunks) + b"\r\n"


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
            out.append(relaxed_header(stack.pop()))
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
        refused: dict[int, SendResult] = {}
        signed: list[Outgoing] = []
        for index, message in enumerate(messages):
            try:
                signed.append(replace(message, data=self.signer.sign(message.data)))
            except (ValueError, TypeError) as exc:
                log.warning("cannot sign %s with DKIM: %s", message.message_id, exc)
                reason = " ".join(f"cannot sign with DKIM: {exc}".split())[:500]
                refused[index] = SendResult(SendStatus.UNSENDABLE, reason)
        answers = iter(self.transport.send_messages(signed) if signed else [])
        return [refused[i] if i in refused else next(answers) for i in range(len(messages))]


def signing(transport: Transport, signer: Signer) -> Transport:
    """`transport`, signing what it sends. Parallel connections each sign their own share in
    their own thread, so one signs while another waits on the relay."""
    if isinstance(transport, ParallelTransport):
        transport.transports = [SigningTransport(t, signer) for t in transport.transports]
        return transport
    return SigningTransport(transport, signer)
