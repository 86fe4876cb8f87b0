"""Returned mail: what bounces and spam complaints say about the lessons a relay accepted.

`parse_returned(data, secret, envelope_to=None)` turns the bytes of one message that came back
into zero or more `Feedback` events (hard_bounce, soft_bounce, complaint, delivered), each naming
the recipient, the delivery (the returned message's Message-ID and, when its tag checks out, the
VERP token with its subscription and day), the enhanced status and the remote server's words.
Pure: no database, no clock, and no exception for any input.

Shapes it reads, in this order:

- RFC 5965 feedback reports (multipart/report; report-type=feedback-report), as Yahoo's CFL and
  Microsoft's JMRP send them: Feedback-Type abuse is one complaint, about the Original-Rcpt-To
  (else JMRP's X-HmXmrOriginalRecipient or the returned message's To; "" when redacted, as
  Yahoo does, the delivery then known by Message-ID and VERP); other feedback types are not
  complaints.
- RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status), as
  Postfix, Exchange / Office 365, Gmail and modern Exim send them: one event per recipient block
  (Original-Recipient, else Final-Recipient; Action; Status; Diagnostic-Code). Action failed is
  a hard bounce, except 4.x.x and mailbox full (5.2.2), which are soft; delayed is soft;
  delivered is delivered; relayed and expanded report nothing. Where Exchange leaves out the
  Diagnostic-Code, the text part's "Remote Server returned '...'" is used.
- Bounces written for people only: Exim's "This message was created automatically by mail
  delivery software" (failed addresses indented, the SMTP error under each; its delay warning
  is soft), Gmail's "Delivery to the following recipient failed permanently" (and "has been
  delayed"), older Exchange's "Delivery has failed to these recipients or groups".
- Anything else that flufl.bounce (GNU Mailman's detectors: qmail, Domino, GroupWise, ...)
  finds failed addresses in: hard or soft as it says, status 5.0.0 or 4.0.0, source "flufl".

The returned message's Message-ID comes from the message/rfc822 or text/rfc822-headers part, or
from a copy quoted in the text (Exim). The VERP token comes from `envelope_to` (the RCPT TO the
receiver saw), else from the bounce's X-Original-To, Delivered-To, Envelope-To or To, the
returned message's Return-Path, or a feedback report's Original-Mail-From.

Anything else (an out-of-office reply, a person's message, a shape not listed) gives []: the
caller keeps it for a person to read, and nothing is guessed.
"""

from .feedback import Feedback, Kind
from .returned import parse_returned
from .verp import parse_verp, verp_address

__all__ = ["Feedback", "Kind", "parse_returned", "parse_verp", "verp_address"]
