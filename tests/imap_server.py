"""A real IMAP server on loopback for `drip bounces fetch`: Debian's Dovecot (`make test`
installs dovecot-imapd), started with a configuration of its own in a temporary folder, IMAP
over TLS with a self-signed certificate the test trusts (SSL_CERT_FILE), one user and a
Maildir. `moves=False` leaves MOVE out of the capabilities it announces (COPY + EXPUNGE)."""

from __future__ import annotations

import datetime as dt
import imaplib
import ipaddress
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smtp_server import free_port

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-password"
NO_MOVE = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS NAMESPACE"


class IMAPServer:
    def __init__(self, folder: Path, moves: bool = True) -> None:
        self.folder, self.port, self.moves = folder, free_port(), moves
        self.ca_file = folder / "cert.pem"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"imaps://{USER}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def start(self) -> None:
        assert Path(DOVECOT).exists(), "Debian's dovecot is needed: apt-get install dovecot-imapd"
        self._certificate()
        (self.folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        config = self.folder / "dovecot.conf"
        config.write_text(self._config())
        with (self.folder / "out.log").open("wb") as log:
            self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 20
        while not self._answers():
            assert self.process.poll() is None and time.monotonic() < deadline, (
                self.folder / "out.log"
            ).read_text() + self._log()
            time.sleep(0.05)  # waiting for the server process to listen

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def connect(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def deliver(self, data: bytes, folder: str = "INBOX") -> None:
        """Put a message in a folder, unseen, as the MTA's delivery would."""
        with self.connect() as imap:
            assert imap.append(folder, None, None, data)[0] == "OK"

    def messages(self, folder: str) -> list[tuple[bytes, bytes]]:
        """(flags, bytes) of every message left in `folder`."""
        with self.connect() as imap:
            if imap.select(f'"{folder}"', readonly=True)[0] != "OK":
                return []
            found = []
            for uid in imap.uid("SEARCH", "ALL")[1][0].split():
                parts = imap.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")[1]
                head, body = next(part for part in parts if isinstance(part, tuple))
                found.append((head, body))
            return found

    def _answers(self) -> bool:
        try:
            with self.connect():
                return True
        except (OSError, imaplib.IMAP4.error):
            return False

    def _log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text() if path.exists() else ""

    def _config(self) -> str:
        """Mail is kept as the running user, or as Dovecot's own user when that is root."""
        mail_user = pwd.getpwnam("dovecot") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
        internal = "nobody" if os.geteuid() == 0 else mail_user.pw_name
        home = self.folder / "home"
        home.mkdir()
        if os.geteuid() == 0:
            os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
        capability = "" if self.moves else f"imap_capability = {NO_MOVE}\n"
        f = self.folder
        return f"""base_dir = {f}/run
state_dir = {f}/state
log_path = {f}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{f}/cert.pem
ssl_key = <{f}/key.pem
auth_mechanisms = plain
default_internal_user = {internal}
default_login_user = {internal}
first_valid_uid = {mail_user.pw_uid}
{capability}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {f}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""

    def _certificate(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        self.ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (self.folder / "key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))  # fmt: skip


@pytest.fixture
def imap_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Dovecot on loopback; parametrize indirectly with False for a server without MOVE."""
    # Dovecot's unprivileged processes must reach the folder: not under pytest's private one.
    folder = Path(tempfile.mkdtemp(prefix="drip-imap-"))
    folder.chmod(0o755)
    server = IMAPServer(folder, moves=getattr(request, "param", True))
    try:
        server.start()
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))  # what drip trusts
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
