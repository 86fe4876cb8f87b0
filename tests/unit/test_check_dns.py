"""`drip check-dns`: the records it prints are the ones a receiver needs to check drip's mail."""

from __future__ import annotations

import re

import dkim
import pytest

from drip.cli import main
from drip.config import Settings
from drip.emails import Outgoing
from drip.signing import Signer

from conftest import DKIMKeys


def check_dns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], domain: str,
    **settings: object,
) -> tuple[int, str, str]:  # fmt: skip
    """Runs `drip check-dns DOMAIN` with only `settings` in the environment."""
    for name in list(Settings.__dataclass_fields__):
        monkeypatch.delenv(f"DRIP_{name.upper()}", raising=False)
    monkeypatch.setenv("DRIP_CONFIG", "/nonexistent/drip.toml")
    for name, value in settings.items():
        monkeypatch.setenv(f"DRIP_{name.upper()}", str(value))
    status = main(["check-dns", domain])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def printed_records(output: str) -> dict[str, bytes]:
    """name -> value of each record printed: a header line `KIND  NAME  TXT`, then the value."""
    found = re.findall(r"^\S.*?  (\S+)  TXT\n  (.+)$", output, re.M)
    return {name: value.encode() for name, value in found}


def test_the_printed_dkim_records_verify_what_drip_signs(
    monkeypatch, capsys, dkim_keys: DKIMKeys
) -> None:
    status, output, _ = check_dns(monkeypatch, capsys, "example.com", **dkim_keys.settings())
    assert status == 0
    assert "nothing was checked" in output
    records = printed_records(output)
    assert set(records) == {
        "example.com", "rsa._domainkey.example.com", "ed._domainkey.example.com",
        "_dmarc.example.com",
    }  # fmt: skip
    assert records["example.com"] == b"v=spf1 mx ~all"
    assert records["_dmarc.example.com"].startswith(b"v=DMARC1; p=none;")
    assert "warning" not in output
    message = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
    signer = Signer.from_settings(Settings().with_values(dkim_keys.settings()))
    assert signer is not None
    signed = signer.sign(message)
    published = DKIMKeys(dkim_keys.folder, records=records)
    assert [dkim.DKIM(signed).verify(idx=i, dnsfunc=published.dnsfunc) for i in (0, 1)] == [
        True, True,
    ]  # fmt: skip
    assert Outgoing("a@example.com", "b@example.org", "<x>", signed).as_message()["Subject"] == "hi"


def test_the_spf_record_names_the_relay_and_a_foreign_domain_is_warned_of(
    monkeypatch, capsys, dkim_keys: DKIMKeys
) -> None:
    relay = "smtp://user:pass@email-smtp.eu-west-1.amazonaws.com:587?starttls=true"
    _, output, _ = check_dns(monkeypatch, capsys, "news.example.org", smtp_url=relay,
                          **dkim_keys.settings(ed25519_too=False))  # fmt: skip
    assert printed_records(output)["news.example.org"] == b"v=spf1 include:amazonses.com ~all"
    assert "d=example.com, which is not news.example.org nor a parent of it" in output
    assert "(zone file: rsa._domainkey.example.com. IN TXT ( " in output, "over 255: split"
    _, output, _ = check_dns(monkeypatch, capsys, "mail.example.com", smtp_url="smtp://relay.local")
    assert printed_records(output)["mail.example.com"] == b"v=spf1 a:relay.local ~all"
    assert "DKIM  not configured" in output


def test_a_domain_that_is_not_one_is_refused(monkeypatch, capsys) -> None:
    status, output, error = check_dns(monkeypatch, capsys, "not a domain")
    assert (status, output) == (2, "")
    assert error == "drip: 'not a domain' is not a domain name\n"
