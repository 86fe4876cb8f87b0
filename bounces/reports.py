"""multipart/report: RFC 3464 delivery status notifications and RFC 5965 feedback reports."""

from __future__ import annotations

import re
from email.message import Message

from .feedback import Delivery, Feedback, Kind, classify, find_status, make_event
from .parts import TypedPart, address_in, blocks, header, headers

COMPLAINT_TYPES = {"abuse"}  # fraud, virus, not-spam and auth-failure are not a reader's "spam"
# Microsoft's JMRP names the complainant in a header of its own above the original's To.
ORIGINAL_RECIPIENT = ("X-HmXmrOriginalRecipient", "To")
SMTP_REPLY = re.compile(r"\b([245])\d\d\b")


def report_part(parts: list[TypedPart], subtype: str) -> Message | None:
    """The message/<subtype> part of a report, or None when the message has none."""
    wanted = f"message/{subtype}"
    return next((part for kind, part in parts if kind == wanted), None)


def delivery_status_events(part: Message, delivery: Delivery, source: str) -> list[Feedback]:
    """One event per recipient block of a message/delivery-status part (RFC 3464 section 2.3).

    The first block holds per-message fields (Reporting-MTA); a block with neither
    Final-Recipient nor Original-Recipient is not about a recipient and is skipped.
    """
    events = []
    for block in blocks(part):
        event = _recipient_event(block, delivery, source)
        if event is not None:
            events.append(event)
    return events


def _recipient_event(block: Message, delivery: Delivery, source: str) -> Feedback | None:
    recipient = address_in(header(block, "Original-Recipient")) or address_in(
        header(block, "Final-Recipient")
    )
    if not recipient:
        return None
    diagnostic = header(block, "Diagnostic-Code") or _comment(header(block, "Status"))
    action = header(block, "Action")
    status = find_status(header(block, "Status"), diagnostic) or _status_from_reply(
        diagnostic, action
    )
    kind = classify(action, status)
    if kind is None:
        return None
    return make_event(kind, recipient, status, _without_type(diagnostic), source, delivery)


def _comment(status: str) -> str:
    """`4.0.0 (host name lookup failure)`: the words RFC 3464's examples put beside a status."""
    opened, closed = status.find("("), status.rfind(")")
    return status[opened + 1 : closed] if 0 <= opened < closed else ""


def _status_from_reply(diagnostic: str, action: str) -> str:
    """A bare SMTP reply (550, 452) in the diagnostic gives the class; the action otherwise."""
    reply = SMTP_REPLY.search(diagnostic)
    if reply:
        return f"{reply[1]}.0.0"
    return {"failed": "5.0.0", "delayed": "4.0.0", "delivered": "2.0.0"}.get(
        action.strip().lower(), ""
    )


def _without_type(diagnostic: str) -> str:
    """`smtp; 550 5.1.1 ...` says `550 5.1.1 ...`: the diagnostic type is not the server's words."""
    kind, semicolon, rest = diagnostic.partition(";")
    return rest if semicolon and len(kind.strip()) < 20 and " " not in kind.strip() else diagnostic


def feedback_report_events(
    part: Message, original: Message | None, delivery: Delivery
) -> list[Feedback]:
    """The complaint in an RFC 5965 report of Feedback-Type abuse: one reader's, so one event.

    The reader is the first Original-Rcpt-To, else the original message's JMRP header or To; a
    report with the reader redacted still counts when its message id or VERP token names the
    delivery (its recipient is then "").
    """
    fields = next(iter(blocks(part)), None)
    if fields is None or header(fields, "Feedback-Type").strip().lower() not in COMPLAINT_TYPES:
        return []
    recipients = [address_in(value) for value in headers(fields, "Original-Rcpt-To")]
    if not any(recipients) and original is not None:
        recipients = [address_in(header(original, name)) for name in ORIGINAL_RECIPIENT]
    recipient = next((r for r in recipients if r), "")
    if not (recipient or delivery.message_id or delivery.verp_token):
        return []
    diagnostic = header(fields, "User-Agent") or header(fields, "Reporting-MTA")
    return [make_event(Kind.COMPLAINT, recipient, "", diagnostic, "arf", delivery)]
