"""`drip check-dns DOMAIN`: the SPF, DKIM and DMARC records a sending domain needs.

drip makes no DNS queries: the command prints what to publish, derived from the configured
relay and DKIM key, and says how to check each record once it is published.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

from ..errors import InvalidInput
from ..runtime import Runtime
from . import AddParser, out

# The SPF mechanism that relays of common providers document, by the end of their host name.
SPF_INCLUDES = {
    "amazonaws.com": "include:amazonses.com",
    "postmarkapp.com": "include:spf.mtasv.net",
    "mailgun.org": "include:mailgun.org",
    "sendgrid.net": "include:sendgrid.net",
    "gmail.com": "include:_spf.google.com",
}
TXT_STRING = 255  # the longest string of a TXT record; longer values are split into several


def spf_mechanism(smtp_url: str | None) -> str:
    """Who may send for the domain: the relay's documented include, its own address
    (`a:HOST`), or the domain's mail servers when drip only writes an outbox."""
    host = urlsplit(smtp_url).hostname if smtp_url else None
    if not host:
        return "mx"
    for suffix, mechanism in SPF_INCLUDES.items():
        if host == suffix or host.endswith("." + suffix):
            return mechanism
    return f"a:{host}"


def zone_line(name: str, value: str) -> str:
    """A zone-file line, the value cut into quoted strings of at most 255 characters."""
    strings = " ".join(f'"{value[i : i + TXT_STRING]}"' for i in range(0, len(value), TXT_STRING))
    return (
        f"{name}. IN TXT ( {strings} )" if len(value) > TXT_STRING else f"{name}. IN TXT {strings}"
    )


def record(kind: str, name: str, value: str) -> None:
    out(f"{kind}  {name}  TXT")
    out(f"  {value}")
    if len(value) > TXT_STRING:
        out(f"  (zone file: {zone_line(name, value)})")
    out(f"  not checked from here: publish it, then `dig +short TXT {name}` shows it")


def cmd_check_dns(args: argparse.Namespace, rt: Runtime) -> int:
    domain = args.domain.strip().rstrip(".").lower()
    if not domain or " " in domain or "." not in domain:
        raise InvalidInput(f"{args.domain!r} is not a domain name")
    out(f"DNS records for mail from {domain} (drip makes no DNS queries; nothing was checked)")
    record("SPF", domain, f"v=spf1 {spf_mechanism(rt.settings.smtp_url)} ~all")
    signer = rt.signer
    if signer is None:
        out("DKIM  not configured: set DRIP_DKIM_DOMAIN, DRIP_DKIM_SELECTOR, DRIP_DKIM_KEY_FILE")
    else:
        for key in signer.keys:
            record(f"DKIM ({key.algorithm})", f"{key.selector}._domainkey.{signer.domain}",
                   key.dns_value())  # fmt: skip
        if domain != signer.domain and not domain.endswith("." + signer.domain):
            out(f"  warning: signatures carry d={signer.domain}, which is not {domain} nor a "
                "parent of it, so DMARC does not count them for mail from this domain")  # fmt: skip
    record("DMARC", f"_dmarc.{domain}", f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}")
    out("  start with p=none, read the reports, then move to p=quarantine")
    return 0


def register(add: AddParser) -> None:
    p = add("check-dns", "print the SPF, DKIM and DMARC records to publish for a domain",
            cmd_check_dns)  # fmt: skip
    p.add_argument("domain", help="the domain of the courses' sender address")
