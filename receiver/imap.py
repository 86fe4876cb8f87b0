"""`drip bounces fetch`: returned mail from a mailbox, over IMAP with TLS (imaplib).

Each unseen message of the folder is read (BODY.PEEK, so it stays unseen until done with) and
its reports committed; only then is it moved to the done folder (MOVE when the server offers
it, else COPY, \\Deleted and EXPUNGE). A message that reports nothing is moved to the unread
folder for a person. Nothing is deleted unprocessed: a message whose reports could not be
stored stays where it was, unseen, and the next fetch reads it again (a report stored twice
changes nothing).
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from ..endpoints import IMAPMailbox
from ..errors import DripError
from .intake import Intake

log = logging.getLogger("drip.receiver")


@dataclass
class Fetched:
    done: int = 0  # messages whose reports were stored, moved to the done folder
    unread: int = 0  # messages that report nothing, moved to the unread folder
    reports: int = 0  # reports newly stored


def fetch(intake: Intake, mailbox: IMAPMailbox, done: str, unread: str) -> Fetched:
    """Process every unseen message of the mailbox's folder (see the module's docstring)."""
    try:
        return _fetch(intake, mailbox, done, unread)
    except (OSError, imaplib.IMAP4.error) as exc:  # what was stored and moved stays so
        raise DripError(f"the bounce mailbox at {mailbox.host}:{mailbox.port}: "
                        f"{type(exc).__name__}: {exc}") from exc  # fmt: skip


def _fetch(intake: Intake, mailbox: IMAPMailbox, done: str, unread: str) -> Fetched:
    result = Fetched()
    with _connect(mailbox) as imap:
        _ok(imap.login(mailbox.username, mailbox.password), "log in")
        can_move = b"MOVE" in _ok(imap.capability(), "ask for capabilities")[0].upper().split()
        for folder in (done, unread):
            imap.create(quoted(folder))  # NO when it exists already: fine
        _ok(imap.select(quoted(mailbox.folder)), f"open folder {mailbox.folder!r}")
        for uid in _ok(imap.uid("SEARCH", "UNSEEN"), "search")[0].decode().split():
            data = _message(imap, uid)
            found = intake.read(data, [])
            if found:
                result.reports += sum(o.value != "duplicate" for o in intake.store(found))
                result.done += 1
            else:
                log.warning("returned mail that reports no bounce or complaint moved to %s",
                            unread, extra={"event": "returned_unread"})  # fmt: skip
                result.unread += 1
            _move(imap, uid, done if found else unread, can_move)
    return result


def _connect(mailbox: IMAPMailbox, timeout: float = 60) -> imaplib.IMAP4:
    """A connection over TLS, its certificate checked (imap:// upgrades with STARTTLS)."""
    context = ssl.create_default_context()
    if mailbox.implicit_tls:
        return imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=context, timeout=timeout)
    imap = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=timeout)
    imap.starttls(context)
    return imap


def _message(imap: imaplib.IMAP4, uid: str) -> bytes:
    for part in _ok(imap.uid("FETCH", uid, "(BODY.PEEK[])"), f"fetch message {uid}"):
        if isinstance(part, tuple):
            return bytes(part[1])
    raise DripError(f"the bounce mailbox sent no body for message {uid}")


def _move(imap: imaplib.IMAP4, uid: str, folder: str, can_move: bool) -> None:
    if can_move:
        _ok(imap.uid("MOVE", uid, quoted(folder)), f"move a message to {folder!r}")
        return
    _ok(imap.uid("COPY", uid, quoted(folder)), f"copy a message to {folder!r}")
    _ok(imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), "flag a message deleted")
    _ok(imap.expunge(), "expunge")


def quoted(name: str) -> str:
    """A folder name as an IMAP quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(response: tuple[str, Any], doing: str) -> list[Any]:
    status, data = response
    if status != "OK":
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise DripError(f"the bounce mailbox refused to {doing}: {status} {words}")
    return list(data)
