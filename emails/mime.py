"""MIME bytes for messages that differ only in a few personal values.

A lesson's headers and quoted-printable parts are encoded once; each message then joins the
encoded pieces around its own encoded values, with a soft line break on either side so every
piece keeps its own line wrapping. Parsing the result gives back the intended message: the
tests read every email through the standard library's parser.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from .headers import wire_address

# CRLF on the wire; headers folded only past RFC 5322's 998, so List-Unsubscribe stays one line.
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)
UTF8_WIRE_POLICY = policy.SMTPUTF8.clone(max_line_length=998)
SOFT_BREAK = b"=\n"


@dataclass(frozen=True)
class Outgoing:
    """A message ready for the wire: its envelope (domains in A-labels, see wire_address) and its
    bytes (CRLF line endings)."""

    sender: str
    recipient: str
    message_id: str
    data: bytes

    @property
    def utf8_addresses(self) -> list[str]:
        """The envelope addresses ASCII cannot carry: a local part in another script."""
        return [address for address in (self.sender, self.recipient) if not address.isascii()]

    @property
    def needs_smtputf8(self) -> bool:
        """Only a relay offering SMTPUTF8 (RFC 6531) may take this message."""
        return not (self.sender.isascii() and self.recipient.isascii())

    def as_message(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    @classmethod
    def from_message(cls, message: EmailMessage) -> Outgoing:
        """For messages built the ordinary way (tests, tools)."""
        sender = wire_address(message["From"].addresses[0].addr_spec)
        recipient = wire_address(message["To"].addresses[0].addr_spec)
        utf8 = not (sender + recipient).isascii()
        data = message.as_bytes(policy=UTF8_WIRE_POLICY if utf8 else WIRE_POLICY)
        return cls(sender, recipient, str(message["Message-ID"]), data)


def qp(text: str) -> bytes:
    """Quoted-printable UTF-8, lines as LF (turned into CRLF with the whole message)."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True)


def qp_piece(text: str) -> bytes:
    """`qp(text)` whose last line leaves room for the soft break that joins it to the next
    piece: a line of 76 characters and its "=" would break RFC 2045's limit."""
    encoded = qp(text)
    head, newline, last = encoded.rpartition(b"\n")
    if len(last) < 76:
        return encoded
    cut = 75
    while b"=" in last[cut - 2 : cut]:  # never inside an =XX escape
        cut -= 1
    return head + newline + last[:cut] + SOFT_BREAK + last[cut:]


class QPTemplate:
    """Text with named slots, quoted-printable encoded once; `fill` encodes only the values."""

    def __init__(self, text: str, slots: Mapping[str, str]) -> None:
        marker_to_name = {marker: name for name, marker in slots.items()}
        self.pieces: list[bytes | str] = []  # encoded static text, or a slot name
        rest = text
        while True:
            found = [(rest.find(m), m) for m in marker_to_name if m in rest]
            if not found:
                self.pieces.append(qp(rest))
                return
            index, marker = min(found)
            self.pieces.append(qp_piece(rest[:index]))
            self.pieces.append(marker_to_name[marker])
            rest = rest[index + len(marker) :]

    def fill(self, values: Mapping[str, str]) -> bytes:
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
            else:
                out += (SOFT_BREAK, qp_piece(values[piece]), SOFT_BREAK)
        return b"".join(out)


class Multipart:
    """multipart/alternative with a text/plain and a text/html part, both quoted-printable."""

    def __init__(self, static_headers: Sequence[bytes]) -> None:
        # "=_" cannot occur in quoted-printable text, so no part can contain the boundary.
        self.boundary = f"=_drip_{secrets.token_hex(12)}".encode()
        self.head = b"".join(static_headers) + (
            b"MIME-Version: 1.0\n"
            b'Content-Type: multipart/alternative; boundary="' + self.boundary + b'"\n'
        )
        part = (
            b'Content-Type: text/%s; charset="utf-8"\n'
            b"Content-Transfer-Encoding: quoted-printable\n\n"
        )
        self.text_open = b"\n--" + self.boundary + b"\n" + part % b"plain"
        self.html_open = b"\n--" + self.boundary + b"\n" + part % b"html"
        self.close = b"\n--" + self.boundary + b"--\n"

    def build(self, personal_headers: Sequence[bytes], text: bytes, html: bytes) -> bytes:
        data = b"".join(
            (*personal_headers, self.head, self.text_open, text, self.html_open, html, self.close)
        )
        return data.replace(b"\n", b"\r\n")
