"""Memory stays bounded under a connection flood and slow drips: ``fedgate serve`` in a subprocess (its own
process, so the RSS read from /proc is the gateway's alone) on 127.0.0.97, attacked from 127.0.0.98.

Limits, and why: ``connection_limit`` is 64 and ``max_stanza_size`` 64 KiB, so the connections the gateway
holds at once can pin at most 64 x (64 KiB stanza + 64 KiB parser slice + read buffer 64 KiB) = 12 MiB of
buffers, plus per-connection objects (machine, parser, expat, asyncio transport: well under 100 KiB each).
The peak growth over the warmed-up baseline must stay under 40 MiB (the 12 MiB, the objects, and allocator
slack); and after the attack is over, repeating it must not ratchet memory up: the lowest RSS after the last two
rounds exceeds the lowest after the first two by under 8 MiB (a leak of 40 KiB per connection would show as
more than that: 200 connections a round).
Finally the gateway is killed with SIGKILL and its database checked (see tests/test_store_crash.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fedgate.certs import TestCA
from fedgate.partners import Partner
from fedgate.store.sqlite import SqliteStore

from ..net.rawpeer import RawPeer, header

GW_IP, ATTACKER_IP = "127.0.0.97", "127.0.0.98"
PEAK_LIMIT_MIB = 40
RATCHET_LIMIT_MIB = 8


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _config(tmp: Path) -> Path:
    ca = TestCA.create(tmp / "ca")
    files = ca.issue("g.test", tmp / "certs")
    db = tmp / "gw.sqlite3"
    with SqliteStore(db) as store:
        store.add_partner(Partner.parse(domain="p.test", tls="optional", sasl="optional", dialback=True,
                                        partner_type="federated"))
        store.update_gateway(connection_limit=64, partner_connection_limit=100, max_stanza_size=65536,
                             stream_establishment_timeout=2)
    path = tmp / "fedgate.toml"
    path.write_text(f"""
[gateway]
database = "{db}"

[[domain]]
name = "g.test"
certificate = "{files.chain}"
key = "{files.key}"

[listen]
s2s = ["{GW_IP}:5269"]

[trust]
system = false
cafiles = ["{ca.cert_path}"]

[dns]
use_srv = false
""")
    return path


async def _attack_round() -> None:
    """100 connections at once (36 beyond the limit); each accepted one sends a header and 60 KiB of a stanza
    that never ends, and a third of them then drip a byte every 0.5 s; all until the gateway cuts them off
    (establishment time-out, 2 s)."""

    async def one(i: int) -> None:
        try:
            peer = await RawPeer.connect(GW_IP, source=ATTACKER_IP)
        except OSError:
            return
        try:
            peer.send(header("g.test", "p.test"))
            peer.send(b"<message from='x@p.test' to='y@g.test'><body>" + b"x" * 60000)
            for _ in range(8 if i % 3 == 0 else 0):
                if peer.writer.is_closing():
                    break
                peer.send(b"y")
                await asyncio.sleep(0.5)
            await peer.read_until_closed(6)
        except (TimeoutError, ConnectionError, AssertionError):
            pass
        finally:
            peer.writer.close()

    await asyncio.gather(*(one(i) for i in range(100)))


async def _probe() -> None:
    peer = await RawPeer.connect(GW_IP, source=ATTACKER_IP)
    await peer.close()


def test_memory_stays_bounded_under_flood_and_slow_drip(tmp_path: Path) -> None:
    config = _config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "fedgate.cli", "serve", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:  # wait for the listener
            try:
                asyncio.run(_probe())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        asyncio.run(_attack_round())  # warm-up: imports, caches, allocator pools
        baseline = _rss_mib(proc.pid)
        peaks, after = [], []
        for _ in range(4):  # (growth across rounds: the lowest of the last two vs the lowest of the first two)
            async def measured() -> float:
                attack = asyncio.ensure_future(_attack_round())
                peak = 0.0
                while not attack.done():
                    peak = max(peak, _rss_mib(proc.pid))
                    await asyncio.sleep(0.1)
                await attack
                return peak

            peaks.append(asyncio.run(measured()))
            after.append(_rss_mib(proc.pid))
        assert proc.poll() is None, "the gateway died under attack"
        growth = max(peaks) - baseline
        ratchet = min(after[2:]) - min(after[:2])
        print(f"RSS baseline {baseline:.1f} MiB, peaks {peaks}, after each round {after}")
        assert growth < PEAK_LIMIT_MIB, (baseline, peaks)
        assert ratchet < RATCHET_LIMIT_MIB, after
    finally:
        proc.send_signal(signal.SIGKILL)  # kill -9 of the gateway: the database must stay consistent
        proc.wait(10)
    con_check = SqliteStore(tmp_path / "gw.sqlite3")
    try:
        assert [p.domain for p in con_check.list_partners()] == ["p.test"]
        assert con_check._db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con_check.close()
