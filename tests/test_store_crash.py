"""kill -9 in the middle of store writes leaves the database consistent.

A subprocess runs ``fedgate partner new`` (the click command, in-process so that nearly all of its time is
spent writing: one ``BEGIN IMMEDIATE`` transaction per partner) in a loop against one database, and is killed
with SIGKILL at a random moment; then ``PRAGMA integrity_check`` must say ok and every partner row must be
complete: exactly its names in ``partner_names`` (its own domain at position 0, each additional domain at
1..n in order), no name without its partner, and the revision counter present. Twenty rounds, random delays.
A last round kills a ``python -m fedgate.cli partner new`` process itself, start-up included.

And the gateway itself: ``fedgate serve`` killed with SIGKILL while it records authorizations for
public_unverified contacts (``test_sigkill_of_the_gateway_while_it_records_authorizations``)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from xml.etree.ElementTree import Element

from fedgate.certs import TestCA
from fedgate.component_client import COMPONENT_NS, ComponentClient, ComponentError, body_of
from fedgate.partners import Partner
from fedgate.store.sqlite import SqliteStore

from .net.rawpeer import FakePartner, RawPeer, header, listen
from .net.serve import write_config

LOOP = r"""
import sys
from fedgate.cli import cli
start = int(sys.argv[2])
for i in range(start, start + 100000):
    try:
        cli.main(args=["--db", sys.argv[1], "partner", "new", f"p{i}.test", "--additional-domain", f"a{i}.test",
                       "--additional-domain", f"b{i}.test"],
                 prog_name="fedgate", standalone_mode=False)
    except SystemExit as exc:  # the command's own exit: fine when it is a success
        if exc.code not in (0, None):
            raise
    except Exception as exc:
        print("error", i, exc, file=sys.stderr)
        raise
    print("added", i, flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def check_consistent(db: Path) -> int:
    """Integrity and completeness of every partner; returns the number of partners."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        partners = [r[0] for r in con.execute("SELECT domain FROM partners")]
        names: dict[str, list[tuple[int, str]]] = {}
        for name, partner, position in con.execute("SELECT name, partner, position FROM partner_names"):
            names.setdefault(partner, []).append((position, name))
        assert set(names) == set(partners), set(names) ^ set(partners)
        for domain in partners:
            i = domain.removeprefix("p").removesuffix(".test")
            assert sorted(names[domain]) == [(0, domain), (1, f"a{i}.test"), (2, f"b{i}.test")], names[domain]
        assert con.execute("SELECT COUNT(*) FROM revision").fetchone() == (1,)
    finally:
        con.close()
    with SqliteStore(db) as store:  # and the store itself reads every partner back
        assert len(store.list_partners()) == len(partners)
    return len(partners)


def test_sigkill_during_cli_writes_leaves_the_database_consistent(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite3"
    rng = random.Random(int(os.environ.get("FEDGATE_CRASH_SEED", "6")))
    written = 0
    killed_with_progress = 0
    for round_ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", LOOP, str(db), str(round_ * 100000)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.35, 0.9))  # start-up is ~0.3 s; then it writes partners as fast as it can
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        assert b"error" not in err, err.decode()
        done = sum(1 for line in out.decode().splitlines() if line.startswith("added "))
        killed_with_progress += done > 0
        count = check_consistent(db)
        # Every partner the CLI reported as added is there; at most one more (committed, not yet printed).
        assert written + done <= count <= written + done + 1, (written, done, count)
        written = count
    assert killed_with_progress >= 10, "most kills should land in the middle of the writes"


def test_sigkill_of_the_cli_process_itself(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    rng = random.Random(7)
    for i in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "fedgate.cli", "--db", str(db), "partner", "new", f"p{i}.test",
             "--additional-domain", f"a{i}.test", "--additional-domain", f"b{i}.test"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if db.exists():
            check_consistent(db)


# -- kill -9 of the gateway while it records authorizations -------------------------------------------------
GW_IP, NOWHERE_IP = "127.0.0.84", "127.0.0.85"
UNVERIFIED = "u.test"  # a public_unverified partner; its route leads nowhere (connection refused)
WINDOW = 400  # subscriptions sent and not yet bounced
_AUTH_LOCAL = re.compile(r"u(\d+)@g\.test")


def _gateway_config(tmp: Path) -> tuple[Path, Path]:
    ca = TestCA.create(tmp / "ca")
    files = ca.issue("g.test", tmp / "certs")
    db = tmp / "gw.sqlite3"
    with SqliteStore(db) as store:
        store.add_partner(Partner.parse(domain=UNVERIFIED, tls="optional", sasl="optional", dialback=True,
                                        partner_type="public_unverified"))
    path = write_config(tmp / "fedgate.toml", db=db, domain="g.test", files=files, ca=ca, ip=GW_IP,
                        routes={UNVERIFIED: f"{NOWHERE_IP}:5269"}, log_level="warning")
    return path, db


def _serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "fedgate.cli", "serve", "--config", str(config)],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=err)


async def _component(proc: subprocess.Popen[bytes], log: Path) -> ComponentClient:
    """g.test's component, connected as soon as the gateway listens."""
    deadline = time.monotonic() + 20
    while True:
        client = ComponentClient("g.test", "secret", GW_IP, 5347)
        try:
            await client.connect()
            return client
        except (OSError, ComponentError, TimeoutError):
            await client.close()
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the gateway did not start: " + log.read_text()
            await asyncio.sleep(0.05)


def _presence(n: int) -> Element:
    """Local user u{n} subscribes to (even n) or authorises (odd n) c{n}@u.test: one authorization each."""
    return Element(f"{{{COMPONENT_NS}}}presence", {"from": f"u{n}@g.test", "to": f"c{n}@{UNVERIFIED}",
                                                   "type": "subscribed" if n % 2 else "subscribe", "id": f"s{n}"})


def _bounced(client: ComponentClient) -> set[int]:
    """The stanzas bounced back so far: the gateway recorded each one's authorization before routing it."""
    return {int(str(s.get("id"))[1:]) for s in client.drain() if s.get("type") == "error" and s.get("id")}


async def _write_authorizations(proc: subprocess.Popen[bytes], log: Path, start: int, kill_after: float
                                ) -> tuple[int, set[int]]:
    """Send subscriptions from u{start}.. as fast as the gateway reads them; SIGKILL the gateway
    ``kill_after`` seconds after the component is connected. Returns the next n and the bounced ones."""
    client = await _component(proc, log)
    n = start
    acknowledged: set[int] = set()
    loop = asyncio.get_running_loop()
    kill_at = loop.time() + kill_after
    try:
        while loop.time() < kill_at:
            # At most WINDOW on their way: the gateway always has some to record, and they come back in time.
            if n - start - len(acknowledged) < WINDOW:
                for _ in range(20):
                    client.send(_presence(n))
                    n += 1
            await asyncio.sleep(0.001)
            acknowledged |= _bounced(client)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await asyncio.sleep(0.1)  # whatever was on its way to the component
        acknowledged |= _bounced(client)
    except (ConnectionError, ComponentError):
        raise AssertionError("the component lost the gateway before the kill: " + log.read_text()) from None
    finally:
        await client.close()
    return n, acknowledged


def check_authorizations(db: Path, sent: int, acknowledged: set[int]) -> int:
    """Integrity, every authorization row complete, every acknowledged one there; returns the row count."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = con.execute("SELECT local_bare, remote_bare, created FROM authorizations").fetchall()
    finally:
        con.close()
    recorded: set[int] = set()
    for local, remote, created in rows:
        match = _AUTH_LOCAL.fullmatch(local)
        assert match is not None, local
        n = int(match.group(1))
        assert remote == f"c{n}@{UNVERIFIED}" and n < sent, (local, remote)
        assert isinstance(created, float) and created > 1.7e9, created
        recorded.add(n)
    assert len(recorded) == len(rows)
    assert acknowledged <= recorded, sorted(acknowledged - recorded)[:10]
    with SqliteStore(db) as store:  # the store opens and reads it
        assert len(store.authorizations()) == len(rows)
        assert [p.domain for p in store.list_partners()] == [UNVERIFIED]
    cli_out = subprocess.run([sys.executable, "-m", "fedgate.cli", "--db", str(db), "partner", "get", "--format",
                              "json"], env=_env(), capture_output=True, timeout=30)
    assert cli_out.returncode == 0, cli_out.stderr.decode()
    assert [p["domain"] for p in json.loads(cli_out.stdout)] == [UNVERIFIED]
    return len(rows)


def test_sigkill_of_the_gateway_while_it_records_authorizations(tmp_path: Path) -> None:
    """``fedgate serve`` records an authorization (one ``BEGIN IMMEDIATE`` transaction on the event loop) for
    every subscribe / subscribed its component sends to a public_unverified partner's user. The component
    sends them as fast as the gateway reads (every pair new; each comes back bounced, remote-server-not-found,
    after its authorization was committed), and the gateway is killed with SIGKILL at a random moment, six
    rounds on one database, each restarting the gateway on it. After each kill: ``integrity_check`` ok; every
    row complete (u{n}@g.test, c{n}@u.test, a creation time) and for a stanza that was sent; every
    authorization whose stanza came back bounced is there; the store opens, and ``fedgate partner get`` reads
    the partners. Finally the gateway starts once more on the database and serves: its component connects,
    a stanza to a local address is delivered, a new authorization is written and the stanza bounced, and a
    message from u.test to a user whose authorization was written before the last crash is delivered, while
    one to a user who authorised nobody is not."""
    config, db = _gateway_config(tmp_path)
    log = tmp_path / "serve.log"
    rng = random.Random(int(os.environ.get("FEDGATE_CRASH_SEED", "11")))
    sent, rows = 0, 0
    grew = 0
    for _round in range(6):
        proc = _serve(config, log)
        try:
            kill_after = rng.uniform(0.3, 1.5)
            sent, acknowledged = asyncio.run(_write_authorizations(proc, log, sent, kill_after))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, log.read_text()
        wal = db.with_name(db.name + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0  # left by the killed gateway, recovered on open
        count = check_authorizations(db, sent, acknowledged)
        grew += count > rows
        print(f"round {_round}: killed after {kill_after:.2f} s, WAL {wal_bytes} B; sent up to {sent},"
              f" {len(acknowledged)} bounced, {count} recorded ({count - rows} this round)")
        rows = count
    assert grew >= 5, "the gateway should have been writing authorizations when killed"
    with SqliteStore(db) as store:
        earlier = int(store.authorizations()[-1][0].removeprefix("u").removesuffix("@g.test"))

    async def serves(proc: subprocess.Popen[bytes]) -> None:
        client = await _component(proc, log)
        try:
            client.send_message("a@g.test", "b@g.test", "after the crash", id="local")
            got = await client.next_message()
            assert (got.get("type"), body_of(got)) == ("chat", "after the crash")
            client.send(_presence(sent))
            async with asyncio.timeout(10):
                while sent not in _bounced(client):
                    await asyncio.sleep(0.05)
            # The authorizations written before the crashes are the ones the restarted gateway enforces: u.test's
            # server appears (it answers the dialback connect-back), its stream authenticates, and of two
            # messages only the one to a user who had authorised the sender reaches the component.
            listener = await listen(NOWHERE_IP, FakePartner(UNVERIFIED, verdict=lambda _el: "valid"))
            peer = await RawPeer.connect(GW_IP, source=NOWHERE_IP)
            try:
                peer.send(header("g.test", UNVERIFIED))
                await peer.expect_header()
                await peer.next_element()  # features
                peer.send(f"<db:result from='{UNVERIFIED}' to='g.test'>key</db:result>")
                assert (await peer.next_element(10)).get("type") == "valid"
                for n, mid in ((sent + 1, "unauthorised"), (earlier, "authorised")):
                    peer.send(f"<message from='c{n}@{UNVERIFIED}' to='u{n}@g.test' type='chat' id='{mid}'>"
                              f"<body>{mid}</body></message>")
                got = await client.next_message()
                assert (got.get("id"), got.get("from"), body_of(got)) == (
                    "authorised", f"c{earlier}@{UNVERIFIED}", "authorised")
                assert [s.get("id") for s in client.drain()] == []
            finally:
                await peer.close()
                listener.close()
        finally:
            await client.close()

    proc = _serve(config, log)
    try:
        asyncio.run(serves(proc))
    finally:
        proc.kill()
        proc.wait(10)
    assert check_authorizations(db, sent + 1, {sent}) == rows + 1
