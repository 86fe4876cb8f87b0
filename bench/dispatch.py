"""Dispatch throughput: N confirmed subscribers (24 time zones, all 7 lesson days), all due,
dispatch passes until none is due, into an SMTP sink in its own process.

Prints lessons/second, the sink's raw rate measured in the same run (pre-built messages over one
reused smtplib connection), their ratio (the figure that counts: absolute times vary between
machines), the sender's CPU time per lesson and its peak RSS.

With --dkim every message is signed (RSA-2048, plus Ed25519 with --dkim rsa+ed25519) with
keys made for the run; the raw rate is then measured with messages signed beforehand (the same
bytes on the wire), and the signing cost per message is printed beside it.

With --webhooks N, N webhook endpoints take every event, so each batch also writes its
lesson.sent messages to the outbox (nothing delivers them during the run): the cost of events
on the sending path.

    .venv/bin/python bench/dispatch.py --subscribers 20000 --db sqlite [--dkim] [--webhooks 1]
"""

from __future__ import annotations

import argparse
import resource
import smtplib
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import NOW, Database, Sink
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from drip.config import Settings
from drip.emails import Outgoing, Recipient
from drip.hooks import outbox
from drip.models import new_token
from drip.runtime import Runtime


def dkim_settings(folder: Path, kinds: str) -> dict[str, object]:
    """Key files made for this run, and the settings that sign with them."""
    keys: dict[str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048)
    }
    if kinds == "rsa+ed25519":
        keys["ed"] = ed25519.Ed25519PrivateKey.generate()
    for name, key in keys.items():
        (folder / f"{name}.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    values: dict[str, object] = {
        "dkim_domain": "example.com", "dkim_selector": "rsa", "dkim_key_file": folder / "rsa.pem",
    }  # fmt: skip
    if "ed" in keys:
        values |= {"dkim_ed25519_selector": "ed", "dkim_ed25519_key_file": folder / "ed.pem"}
    return values


def signed(rt: Runtime, messages: list[Outgoing]) -> tuple[list[Outgoing], float, float]:
    """The messages as drip sends them (signed when DKIM is on); the seconds per message that
    signing takes all in one thread, and the CPU seconds per message it takes of this process
    when the key operations go to the worker processes (DRIP_DKIM_PROCESSES), as in a pass."""
    if rt.signer is None:
        return messages, 0.0, 0.0
    sign, started = rt.signer.sign, time.perf_counter()
    for message in messages:
        sign(message.data)
    alone = (time.perf_counter() - started) / len(messages)
    list(rt.signer.sign_all([messages[0].data]))  # the worker processes start
    cpu = time.process_time()
    data = [d for part in rt.signer.sign_all([m.data for m in messages]) for d in part]
    cpu = (time.process_time() - cpu) / len(messages)
    out = [replace(m, data=d) for m, d in zip(messages, data, strict=True) if isinstance(d, bytes)]
    return out, alone, cpu


def raw_messages(rt: Runtime, count: int) -> list[Outgoing]:
    """Lessons built beforehand, for the sink's raw rate."""
    course = next(iter(rt.courses.values()))
    return [
        rt.renderer.render(
            course, 1 + i % course.total_days,
            Recipient(f"raw{i}@example.com", "Raw", new_token(), new_token()),
            message_id=f"<raw{i}@bench>", now=NOW,
        )
        for i in range(count)
    ]  # fmt: skip


def raw_rate(port: int, messages: list[Outgoing]) -> float:
    """Messages/second of smtplib alone: messages built beforehand, one connection."""
    count = len(messages)
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        started = time.perf_counter()
        for message in messages:
            smtp.sendmail(message.sender, [message.recipient], message.data)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--raw-messages", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=2, help="parallel SMTP connections")
    parser.add_argument("--dkim", nargs="?", const="rsa", choices=("rsa", "rsa+ed25519"),
                        help="sign every message (RSA-2048, or RSA-2048 and Ed25519)")  # fmt: skip
    parser.add_argument("--webhooks", type=int, default=0, help="webhook endpoints (events)")
    parser.add_argument("--dkim-processes", type=int, default=1,
                        help="processes for the key operations (0: the senders)")  # fmt: skip
    args = parser.parse_args()

    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.db, Path(tmp))
        try:
            settings = Settings().with_values(
                {
                    "database_url": db.url,
                    "smtp_url": sink.url,
                    "batch_size": args.batch_size,
                    "smtp_connections": args.connections,
                    **(dkim_settings(Path(tmp), args.dkim) if args.dkim else {}),
                    "dkim_processes": args.dkim_processes,
                }
            )
            rt = Runtime(settings)
            slug = next(iter(rt.courses))
            seconds = db.seed(args.subscribers, slug, due_at=NOW)
            print(f"seeded {args.subscribers:,} subscribers on {args.db} in {seconds:.1f} s")
            with rt.write_sessions() as session, session.begin():
                for _ in range(args.webhooks):  # nothing listens there; only the writes count
                    outbox.add_endpoint(session, "http://127.0.0.1:9/hooks", [], NOW)
            prebuilt, sign_cost, sign_cpu = signed(rt, raw_messages(rt, args.raw_messages))
            raw_before = raw_rate(sink.port, prebuilt)
            print(
                f"sending over {args.connections} SMTP connection(s), batches of {args.batch_size}"
            )

            cpu_before, started = time.process_time(), time.perf_counter()
            result = rt.dispatcher.run_pass(NOW)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
            rate = result.sent / elapsed
            raw_after = raw_rate(sink.port, prebuilt)
            raw = (raw_before + raw_after) / 2  # the sink drifts; take it on either side
            print(
                f"sink raw rate: {raw:,.0f} messages/s ({args.raw_messages:,} pre-built, "
                f"{raw_before:,.0f} before and {raw_after:,.0f} after the dispatch)"
            )
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"dispatch: {result.sent:,} lessons in {elapsed:.1f} s = {rate:,.0f} lessons/s "
                f"(deferred {result.deferred}, bounced {result.bounced})"
            )
            print(f"ratio dispatch/raw: {rate / raw:.2f}, DKIM {args.dkim or 'off'}, "
                  f"webhook endpoints {args.webhooks}")  # fmt: skip
            if args.webhooks:
                with rt.sessions() as session:
                    print(f"webhook messages written: {outbox.pending_count(session):,}")
            if args.dkim:
                print(f"DKIM signing per message: {sign_cost * 1e6:,.0f} us in one thread "
                      f"({args.dkim}), {sign_cost * raw:.2f} of the sink's time per message; "
                      f"with the key operations in {rt.settings.dkim_processes} worker "
                      f"process(es): {sign_cpu * 1e6:,.0f} us of the sender's CPU")  # fmt: skip
            print(f"sender CPU per lesson: {cpu / max(result.sent, 1) * 1e6:,.0f} us")
            print(f"peak RSS: {peak_mb:,.0f} MB")
            rt.close()
        finally:
            taken = sink.stop()
            db.drop()
    print(f"sink took {taken:,} messages ({2 * args.raw_messages:,} raw + lessons)")


if __name__ == "__main__":
    main()
