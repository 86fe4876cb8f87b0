"""parse_returned on whatever arrives: random and mangled bytes, hostile MIME, edge rules.

"Never raises" is checked without leaning on the last-resort guard: that guard logs an error,
and these tests require that nothing reached it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.bounces import Feedback, Kind, parse_returned
from drip.bounces.feedback import classify

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "samples" / "returned").glob("*.eml"))
SAMPLE_BYTES = [path.read_bytes() for path in SAMPLES]
TRICKY = [b"\n\n", b"\r\n", b"--", b"\x00", b"\xff\xfe", b"=?utf-8?b?", b";", b"boundary=",
          b"Content-Type: message/delivery-status\n", b"Content-Type: multipart/report; b=",
          b"Action: failed\n", b"Status: 5.", b"  a@b.example\n", b"charset=\"x-bad\"\n",
          b"Content-Transfer-Encoding: base64\n"]  # fmt: skip


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    """The errors parse_returned's last-resort guard logs while the block runs."""
    handler = Collected()
    logger = logging.getLogger("drip.bounces.returned")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def read_cleanly(data: bytes) -> list[Feedback]:
    with errors_logged() as errors:
        events = parse_returned(data, "secret")
    assert errors == []
    assert all(isinstance(event, Feedback) for event in events)
    return events


@st.composite
def mangled_samples(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLE_BYTES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        chunk = draw(st.binary(min_size=1, max_size=24) | st.sampled_from(TRICKY))
        change = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        if change == "insert":
            data[at:at] = chunk
        elif change == "delete":
            del data[at : at + len(chunk)]
        elif change == "replace":
            data[at : at + len(chunk)] = chunk
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(data: bytes) -> None:
    read_cleanly(data)


@settings(max_examples=300, deadline=None)
@given(mangled_samples())
def test_mangled_samples_never_raise(data: bytes) -> None:
    for event in read_cleanly(data):
        assert event.kind in set(Kind)
        assert "\n" not in event.diagnostic and len(event.diagnostic) <= 300


def dsn(block: str, top: str = "") -> bytes:
    return (
        f"{top}Content-Type: multipart/report; report-type=delivery-status; boundary=z\n\n"
        f"--z\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x.example\n\n"
        f"{block}\n--z--\n"
    ).encode("utf-8", "surrogateescape")


def test_deep_nesting_huge_headers_and_unknown_charsets_give_nothing() -> None:
    nested = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(3000)
    )
    assert read_cleanly(b"From: x@y.example\n" + nested) == []
    assert read_cleanly(b"Subject: " + b"a" * 3_000_000 + b"\n\nbody") == []
    text = b"Delivery to the following recipient failed permanently:\n\n  a@b.example\n"
    [event] = read_cleanly(b'Content-Type: text/plain; charset="x-\xff"\n\n' + text)
    assert (event.kind, event.recipient, event.status) == (Kind.HARD_BOUNCE, "a@b.example", "5.0.0")


def test_an_encoded_diagnostic_is_decoded() -> None:
    block = "Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.1.1\n"
    [event] = read_cleanly(dsn(block + "Diagnostic-Code: =?iso-8859-1?q?smtp=3B_550_caf=E9?=\n"))
    assert event.diagnostic == "550 café"


@pytest.mark.parametrize("action", ["relayed", "expanded", "unknown-action"])
def test_actions_that_say_nothing_about_the_mailbox_give_nothing(action: str) -> None:
    block = f"Final-Recipient: rfc822; a@b.example\nAction: {action}\nStatus: 2.0.0\n"
    assert read_cleanly(dsn(block)) == []


def test_a_block_without_a_recipient_gives_nothing() -> None:
    assert read_cleanly(dsn("Action: failed\nStatus: 5.1.1\n")) == []


@pytest.mark.parametrize("feedback_type", ["not-spam", "virus", "auth-failure", "other", ""])
def test_feedback_reports_other_than_abuse_are_not_complaints(feedback_type: str) -> None:
    report = (
        "Content-Type: multipart/report; report-type=feedback-report; boundary=z\n\n"
        "--z\nContent-Type: message/feedback-report\n\n"
        f"Feedback-Type: {feedback_type}\nOriginal-Rcpt-To: a@b.example\n\n--z--\n"
    ).encode()
    assert read_cleanly(report) == []
    assert len(read_cleanly(report.replace(f": {feedback_type}\n".encode(), b": Abuse\n"))) == 1


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        ("failed", "5.1.1", Kind.HARD_BOUNCE),
        ("Failed", "5.0.0", Kind.HARD_BOUNCE),
        ("failed", "5.2.2", Kind.SOFT_BOUNCE),
        ("failed", "4.4.7", Kind.SOFT_BOUNCE),
        ("delayed", "4.4.1", Kind.SOFT_BOUNCE),
        ("delayed", "5.1.1", Kind.SOFT_BOUNCE),
        ("delivered", "2.0.0", Kind.DELIVERED),
        ("relayed", "2.0.0", None),
        ("", "5.1.1", Kind.HARD_BOUNCE),
        ("", "4.2.0", Kind.SOFT_BOUNCE),
        ("", "2.1.5", Kind.DELIVERED),
        ("", "", None),
    ],
)
def test_action_and_status_make_the_kind(action: str, status: str, kind: Kind | None) -> None:
    assert classify(action, status) == kind
