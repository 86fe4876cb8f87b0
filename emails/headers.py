"""Header lines and addresses as they go on the wire, for text and addresses in any script.

Text that is not plain ASCII becomes RFC 2047 encoded words, made and folded by email.header
(each word at most 75 characters, each line of them at most 76); text that merely looks like an
encoded word ("=?utf-8?q?Admin?=") is encoded too, so it reads back as typed. Domains go out as
A-labels (IDNA 2008 with UTS 46 mapping, as email-validator normalizes them); a local part
outside ASCII stays UTF-8, which only a relay offering SMTPUTF8 takes (RFC 6531, RFC 6532).
Every text passes through one_line first: no CR or LF ever reaches a header.
"""

from __future__ import annotations

import re
from email.header import Header
from email.utils import quote
from functools import lru_cache

import idna

ENCODED_LINE = 76  # " " + an encoded word of at most 75 characters (RFC 2047, section 2)
PLAIN_LIMIT = 400  # longer ASCII text is encoded as well, which folds it into short lines
# Control characters, line and paragraph separators, and lone surrogates (undecodable bytes of a
# command line): none may reach a header, and the last cannot be encoded at all.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # RFC 5322 specials: a phrase holding one is quoted


def one_line(value: str) -> str:
    """`value` with control characters (CR, LF, NEL, ...) turned into spaces: safe in a header,
    and encodable as UTF-8."""
    return _CONTROL.sub(" ", value).strip()


def _plain(text: str) -> bool:
    """Text a header may carry as it is: short ASCII that no reader takes for an encoded word."""
    return text.isascii() and "=?" not in text and len(text) <= PLAIN_LIMIT


def encoded_words(text: str, header_name: str) -> str:
    """`text` as UTF-8 encoded words, folded (LF) to fit after "`header_name`: "."""
    header = Header(text, "utf-8", maxlinelen=ENCODED_LINE, header_name=header_name)
    return header.encode(linesep="\n")


def header(name: str, text: str) -> bytes:
    """An unstructured header line (Subject and the like), ASCII, ending in LF."""
    text = one_line(text)
    value = text if _plain(text) else encoded_words(text, name)
    return f"{name}: {value}\n".encode("ascii")


def phrase(text: str, header_name: str) -> str:
    """A display name or a list label: as typed, quoted if it holds specials, else encoded."""
    text = one_line(text)
    if _plain(text):
        if not _SPECIALS.search(text) and "  " not in text:
            return text
        quoted = f'"{quote(text)}"'  # a double space would read as one outside quotes
        if len(quoted) <= PLAIN_LIMIT:
            return quoted
    return encoded_words(text, header_name)


def address_header(name: str, display_name: str, address: str) -> bytes:
    """From, To, Reply-To for one mailbox; `address` in its wire form (see wire_address).

    UTF-8 bytes: only a local part outside ASCII makes them more than ASCII (RFC 6532)."""
    label = phrase(display_name, name)
    return f"{name}: {label} <{address}>\n".encode() if label else f"{name}: {address}\n".encode()


def wire_address(address: str) -> str:
    """`address` with its domain in A-labels (punycode), as the envelope and headers carry it."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    return f"{local}{at}{a_labels(domain)}"


def domain_of(address: str) -> str:
    """The domain of `address` in A-labels: for Message-IDs and List-Id, which must be ASCII."""
    return a_labels(address.rpartition("@")[2])


@lru_cache(maxsize=4096)
def a_labels(domain: str) -> str:
    """An internationalized domain name as A-labels. A name IDNA refuses (email-validator lets
    none through) stays as it is, so only a relay offering SMTPUTF8 will take it."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except UnicodeError:  # idna.IDNAError is one
        return domain
