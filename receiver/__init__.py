"""Where returned mail comes in: bounces and complaints that came back to the VERP address of a
delivery, taken over SMTP or LMTP from the MX or relay (`drip bounces serve`, or `drip run` with
DRIP_BOUNCE_LISTEN), or fetched from a mailbox over IMAP (`drip bounces fetch`).

Each message is read by `bounces.parse_returned` once per envelope recipient; what it reports
is stored and acted on by `reports.record_all`, in one transaction (shared by the messages that
arrived together), before the message is acknowledged (250, or moved out of the IMAP folder).
A message that reports nothing drip can read is kept for a person (a folder of .eml files, or
an IMAP folder), never guessed at.
"""

from .intake import Intake, Taken
from .smtp import ReturnedMailHandler, ReturnedMailServer

__all__ = ["Intake", "ReturnedMailHandler", "ReturnedMailServer", "Taken"]
