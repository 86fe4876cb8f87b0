"""The console's session cookie: signed, bounded in time, and nothing else gets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from drip.web.admin.auth import safe_next
from drip.web.admin.session import Signer, csrf_matches

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
SIGNER = Signer("a secret key", timedelta(hours=8))


def test_a_session_reads_back_until_it_expires() -> None:
    session = SIGNER.new(NOW, 7, "abc")
    cookie = SIGNER.dumps(session)
    assert SIGNER.loads(cookie, NOW) == session and session.signed_in
    assert SIGNER.loads(cookie, NOW + timedelta(hours=8)) is None
    anonymous = SIGNER.new(NOW)
    assert not anonymous.signed_in and anonymous.expires == NOW + timedelta(hours=1)
    assert SIGNER.new(NOW).csrf != anonymous.csrf, "a fresh token each time"


def test_another_key_or_a_changed_byte_is_refused() -> None:
    cookie = SIGNER.dumps(SIGNER.new(NOW, 7, "abc"))
    assert Signer("another key", timedelta(hours=8)).loads(cookie, NOW) is None
    for i in range(len(cookie)):
        changed = cookie[:i] + ("A" if cookie[i] != "A" else "B") + cookie[i + 1 :]
        assert SIGNER.loads(changed, NOW) is None


@given(st.text(max_size=300))
def test_no_string_is_a_session_or_raises(text: str) -> None:
    assert SIGNER.loads(text, NOW) is None


@given(st.text(max_size=60))
def test_only_the_sessions_own_token_matches(token: str) -> None:
    session = SIGNER.new(NOW, 1, "g")
    assert csrf_matches(session, token) == (token == session.csrf)
    assert csrf_matches(session, session.csrf) and not csrf_matches(None, session.csrf)


def test_after_sign_in_only_console_paths() -> None:
    assert safe_next("/admin/subscribers?q=a") == "/admin/subscribers?q=a"
    for elsewhere in ("https://evil.example", "//evil.example", "/admin//evil", "/x", None,
                      "/admin\\..", "/admin/é"):  # fmt: skip
        assert safe_next(elsewhere) == "/admin"
