"""From the bytes of one returned message to the events it reports (see the package docstring)."""

from __future__ import annotations

import logging
from dataclasses import replace
from email.message import Message

from .fallback import fallback_events
from .feedback import Delivery, Feedback, one_line
from .parts import (
    address_in,
    body_text,
    header,
    headers,
    message_id_of,
    original_headers,
    parse,
    walk,
)
from .reports import delivery_status_events, feedback_report_events, report_part
from .text import recipient_replies, text_events
from .verp import parse_token, token_of

log = logging.getLogger(__name__)
# Where the address a bounce was sent to (the delivery's VERP return path) may be written down.
ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "To")


def parse_returned(data: bytes, secret: str, envelope_to: str | None = None) -> list[Feedback]:
    """The events one returned message reports: [] when it is no bounce or complaint we read.

    `envelope_to` is the RCPT TO the message arrived with (the VERP address, for a bounce).
    Never raises: an input that trips the reader anyway is logged as an error and yields [].
    """
    try:
        return _read(data, secret, envelope_to)
    except Exception:
        size = len(data) if isinstance(data, bytes | bytearray) else -1
        log.exception("could not read a returned message of %d bytes", size)
        return []


def _read(data: bytes, secret: str, envelope_to: str | None) -> list[Feedback]:
    message = parse(data)
    parts = walk(message)
    original = original_headers(parts)
    text = body_text(parts)
    feedback_report = report_part(parts, "feedback-report")
    candidates = [envelope_to or "", *_written_envelopes(message, original, feedback_report)]
    delivery = _delivery(message_id_of(original, text), candidates, secret)
    if feedback_report is not None:
        return feedback_report_events(feedback_report, original, delivery)
    status_part = report_part(parts, "delivery-status")
    if status_part is not None:
        events = delivery_status_events(status_part, delivery, "dsn")
        if events:
            return _with_words_from_text(events, text)
    events = text_events(message, text, delivery)
    return events or _with_words_from_text(fallback_events(message, delivery), text)


def _written_envelopes(
    message: Message, original: Message | None, feedback_report: Message | None
) -> list[str]:
    """Addresses that may be the VERP return path: where the bounce was delivered, the
    returned message's Return-Path, and a feedback report's Original-Mail-From."""
    found = [value for name in ENVELOPE_HEADERS for value in headers(message, name)]
    if original is not None:
        found.append(header(original, "Return-Path"))
    if feedback_report is not None:
        payload = feedback_report.get_payload()
        fields = payload[0] if isinstance(payload, list) and payload else feedback_report
        if isinstance(fields, Message):
            found.append(header(fields, "Original-Mail-From"))
    return found


def _delivery(message_id: str | None, candidates: list[str], secret: str) -> Delivery:
    """The delivery named by the first VERP token whose tag checks out, and the message id."""
    for candidate in candidates:
        token = token_of(address_in(candidate))
        checked = parse_token(token, secret) if token else None
        if checked is not None:
            return Delivery(message_id, token, *checked)
    return Delivery(message_id)


def _with_words_from_text(events: list[Feedback], text: str) -> list[Feedback]:
    """Exchange may leave Diagnostic-Code out, and flufl.bounce gives no words: the text part
    then quotes the server's reply under the address (`Remote Server returned '...'`)."""
    if all(event.diagnostic for event in events):
        return events
    replies = {address.lower(): reply for address, reply in recipient_replies(text).items()}
    return [
        event
        if event.diagnostic
        else _replace_diagnostic(event, replies.get(event.recipient.lower(), ""))
        for event in events
    ]


def _replace_diagnostic(event: Feedback, words: str) -> Feedback:
    return replace(event, diagnostic=one_line(words)) if words else event
