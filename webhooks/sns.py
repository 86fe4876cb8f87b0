"""Amazon SNS message signatures, as AWS documents them: the certificate comes only from an
https URL on sns.<region>.amazonaws.com, chains to a CA we trust and is valid now, and its RSA
key signed the canonical string of the message's fields (SHA1 for SignatureVersion 1, SHA256
for 2). Nothing is fetched before the URL, the topic and the time have passed."""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .common import WebhookRefused, check_window, iso_time, optional_text, text

FetchCertificate = Callable[[str], bytes]
SNS_HOST = re.compile(r"sns\.[a-z]{2}(-[a-z]+)+-\d{1,2}\.amazonaws\.com")
MESSAGE_TYPES = {"Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"}
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = (
    "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
)  # fmt: skip
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
REPLAY_WINDOW = 3600.0  # AWS: refuse messages whose Timestamp is older than an hour
CLOCK_SKEW = 300.0
MAX_CHAIN = 5


@dataclass(frozen=True)
class SnsMessage:
    """A message whose signature held: what it says and about which topic."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: datetime
    subscribe_url: str | None


class CertificateCache:
    """Signing certificates by URL: SNS signs with one certificate for months, so each is
    fetched once; the few most recent are kept. One cache serves a process's threads: a
    certificate being fetched is waited for, not fetched again."""

    def __init__(self, fetch: FetchCertificate, size: int = 8) -> None:
        self._fetch = fetch
        self._size = size
        self._chains: OrderedDict[str, list[x509.Certificate]] = OrderedDict()
        self._lock = threading.Lock()

    def chain(self, url: str) -> list[x509.Certificate]:
        """The certificates at `url`, the signing one first."""
        with self._lock:
            return self._chain(url)

    def _chain(self, url: str) -> list[x509.Certificate]:
        if url in self._chains:
            self._chains.move_to_end(url)
            return self._chains[url]
        try:
            pem = self._fetch(url)
        except Exception as error:  # the fetcher is the caller's: any failure is a refusal
            raise WebhookRefused(
                f"signing certificate not fetched: {type(error).__name__}"
            ) from None
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except (ValueError, TypeError):
            raise WebhookRefused("signing certificate is not PEM", status=403) from None
        self._chains[url] = chain
        while len(self._chains) > self._size:
            self._chains.popitem(last=False)
        return chain


def check_sns_url(url: str, what: str) -> None:
    """Only https on sns.<region>.amazonaws.com, with no user or port to hide a host behind."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise WebhookRefused(f"{what} is not a URL", status=403) from None
    host = parts.hostname or ""
    if (
        parts.scheme != "https"
        or parts.netloc.lower() != host
        or not SNS_HOST.fullmatch(host)
        or not url.isprintable()
        or "\\" in url
    ):
        raise WebhookRefused(f"{what} is not on sns.<region>.amazonaws.com over https", status=403)


def canonical_string(envelope: dict[str, Any], message_type: str) -> bytes:
    """The documented fields, in the documented order, each as name, newline, value, newline."""
    fields = NOTIFICATION_FIELDS if message_type == "Notification" else CONFIRMATION_FIELDS
    lines = []
    for name in fields:
        value = optional_text(envelope, name) if name == "Subject" else text(envelope, name)
        if value is not None:
            lines.append(f"{name}\n{value}\n")
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookRefused("message is not valid Unicode") from None


def verify_sns(
    envelope: dict[str, Any],
    *,
    now: datetime,
    certificates: CertificateCache,
    trusted: Sequence[x509.Certificate],
    topics: Collection[str] | None = None,
) -> SnsMessage:
    """The message, once its topic, age, certificate and signature all hold."""
    message_type = text(envelope, "Type")
    if message_type not in MESSAGE_TYPES:
        raise WebhookRefused(f"unknown SNS message type {message_type[:40]!r}")
    topic = text(envelope, "TopicArn")
    if topics is not None and topic not in topics:
        raise WebhookRefused("topic is not one we subscribed to", status=403)
    timestamp = iso_time(text(envelope, "Timestamp"), "Timestamp")
    check_window(timestamp, now, REPLAY_WINDOW, CLOCK_SKEW, "Timestamp")
    signed = canonical_string(envelope, message_type)
    version = envelope.get("SignatureVersion")
    algorithm = HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise WebhookRefused("SignatureVersion is not 1 or 2", status=403)
    signature = _signature(envelope)
    url = text(envelope, "SigningCertURL")
    check_sns_url(url, "SigningCertURL")
    subscribe_url = envelope.get("SubscribeURL") if message_type != "Notification" else None
    if subscribe_url is not None:
        check_sns_url(subscribe_url, "SubscribeURL")
    leaf = verify_chain(certificates.chain(url), trusted, now)
    _verify_rsa(leaf, signature, signed, algorithm())
    return SnsMessage(
        message_type,
        text(envelope, "MessageId"),
        topic,
        text(envelope, "Message"),
        timestamp,
        subscribe_url,
    )


def _signature(envelope: dict[str, Any]) -> bytes:
    value = envelope.get("Signature")
    if not isinstance(value, str) or not value:
        raise WebhookRefused("message is not signed", status=401)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused("Signature is not base64", status=403) from None


def _verify_rsa(
    certificate: x509.Certificate, signature: bytes, signed: bytes, algorithm: hashes.HashAlgorithm
) -> None:
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise WebhookRefused("signing certificate has no usable key", status=403) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRefused("signing certificate's key is not RSA", status=403)
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError):
        raise WebhookRefused("signature does not match the message", status=403) from None


def verify_chain(
    chain: Sequence[x509.Certificate], trusted: Sequence[x509.Certificate], now: datetime
) -> x509.Certificate:
    """The signing certificate, once it and each issuer up to a trusted one are valid at `now`
    and each signed the one below; certificates sent along may serve as intermediates."""
    if not chain:
        raise WebhookRefused("no signing certificate", status=403)
    current = chain[0]
    for _ in range(MAX_CHAIN):
        _check_validity(current, now)
        if current in trusted:
            return chain[0]
        issuer = _issuer(current, trusted) or _issuer(current, chain[1:])
        if issuer is None:
            raise WebhookRefused("signing certificate does not chain to a trusted CA", status=403)
        current = issuer
    raise WebhookRefused("certificate chain is too long", status=403)


def _check_validity(certificate: x509.Certificate, now: datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise WebhookRefused("certificate is not valid now", status=403)


def _issuer(
    certificate: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    """The candidate that is a CA and signed `certificate`, if any."""
    for candidate in candidates:
        if candidate.subject != certificate.issuer or not _is_ca(candidate):
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return candidate
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return constraints.value.ca
