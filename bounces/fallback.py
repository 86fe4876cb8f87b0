"""Shapes read by no rule of ours (qmail, Domino, GroupWise, old Yahoo and AOL, ...): flufl.bounce.

flufl.bounce (GNU Mailman's bounce detectors) names the failed addresses, split into temporary
and permanent, but not the server's words; its events carry status 5.0.0 or 4.0.0 and source
"flufl" so a caller can weigh them. It runs only when nothing else read the message.
"""

from __future__ import annotations

import logging
from email.message import Message

from flufl.bounce import all_failures

from .feedback import Delivery, Feedback, Kind, make_event

log = logging.getLogger(__name__)
SOURCE = "flufl"


def fallback_events(message: Message, delivery: Delivery) -> list[Feedback]:
    """A soft bounce per temporary failure and a hard one per permanent failure flufl finds."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a third party's heuristics on hostile input: not worth losing the mail
        log.warning("flufl.bounce could not scan a returned message", exc_info=True)
        return []
    return [
        make_event(kind, _text(address), status, "", SOURCE, delivery)
        for addresses, kind, status in (
            (sorted(permanent), Kind.HARD_BOUNCE, "5.0.0"),
            (sorted(set(temporary) - set(permanent)), Kind.SOFT_BOUNCE, "4.0.0"),
        )
        for address in addresses
        if _text(address)
    ]


def _text(address: bytes | str) -> str:
    if isinstance(address, bytes):
        address = address.decode("utf-8", "replace")
    return address.strip().strip("<>")
