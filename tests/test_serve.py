"""`fedgate serve` from a config file, in-process: the admin endpoint (status, metrics, health), `fedgate
status`, partner changes taking effect without a restart, and SIGTERM closing everything cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from fedgate import config as config_mod
from fedgate.certs import TestCA
from fedgate.cli import cli
from fedgate.cli.serve import fetch_status, run
from fedgate.partners import Partner
from fedgate.policy import Settings
from fedgate.s2s import StreamClosed
from fedgate.store.sqlite import SqliteStore
from fedgate.tls import TlsSession, TrustAnchors, client_context

from .net.components import EchoComponent, error_condition
from .net.gateways import make_node

ROUTES = {"gw.test": "127.0.0.14:5269", "b.test": "127.0.0.15:5269"}


def _write_config(tmp: Path, ca: TestCA) -> Path:
    files = ca.issue("gw.test", tmp / "certs")
    path = tmp / "fedgate.toml"
    path.write_text(f"""
[gateway]
database = "gw.sqlite3"
log_format = "json"

[[domain]]
name = "gw.test"
certificate = "{files.chain}"
key = "{files.key}"
component_secret = "secret"

[listen]
s2s = ["127.0.0.14:5269"]
component = "127.0.0.14:5347"
admin = "127.0.0.14:5380"

[trust]
system = false
cafiles = ["{ca.cert_path}"]

[dns]
use_srv = false
static_routes = {{ "b.test" = "127.0.0.15:5269" }}
""")
    return path


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_serve_status_metrics_reload_and_sigterm(tmp_path: Path) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        cfg = config_mod.load(_write_config(tmp_path, ca))
        store = SqliteStore(cfg.database)
        settings = Settings.parse_triple("required/required/false")
        store.add_partner(Partner.parse(domain="b.test", tls="required", sasl="required", dialback=False,
                                        partner_type="federated"))
        store.close()
        ready = asyncio.Event()
        server = asyncio.create_task(run(cfg, ready=ready))
        await asyncio.wait_for(ready.wait(), 10)
        b = await make_node(tmp_path, ca, "b.test", "127.0.0.15", ROUTES, component_port=5347)
        b.set_partner("gw.test", settings, partner_type="federated")
        comp = EchoComponent("gw.test", "secret", "127.0.0.14", 5347)
        comp_b = EchoComponent("b.test", "secret", "127.0.0.15", 5347)
        await comp.start()
        await comp_b.start()
        try:
            comp.say("alice@gw.test", "bob@b.test", "ping 1")
            assert str((await comp.next_message())["body"]) == "pong 1"

            # status through the admin endpoint, with and without the token
            code, _ = await asyncio.to_thread(_get, "http://127.0.0.14:5380/status")
            assert code == 401
            data = await asyncio.to_thread(fetch_status, cfg)
            rows = {(s["partner"], s["direction"], s["method"]) for s in data["streams"]}
            assert ("b.test", "out", "sasl_tls") in rows and ("b.test", "in", "sasl_tls") in rows
            assert data["components"] == ["gw.test"]
            assert all(s["authenticated_at"] >= s["started"] for s in data["streams"])
            # `fedgate status` (the command a person runs)
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["--lang", "en", "status", "--config", str(cfg.path)]
            )
            assert "b.test" in result.output and "sasl_tls" in result.output and "TLSv1.3" in result.output
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["status", "--config", str(cfg.path), "--format", "json"]
            )
            assert json.loads(result.output)["streams"]

            code, body = await asyncio.to_thread(_get, "http://127.0.0.14:5380/health")
            assert (code, body) == (200, b"ok\n")
            code, body = await asyncio.to_thread(_get, "http://127.0.0.14:5380/metrics")
            text = body.decode()
            assert code == 200
            assert 'fedgate_streams{direction="out",method="sasl_tls",partner="b.test"} 1.0' in text
            assert 'fedgate_stanzas_total{direction="out"}' in text

            # A partner change made with the CLI (another process's store) closes the stream it no longer allows.
            closed = asyncio.get_running_loop().create_future()
            b.gateway.listeners.append(
                lambda d, e: closed.done() or not isinstance(e, StreamClosed) or closed.set_result(e)
            )
            result = await asyncio.to_thread(
                CliRunner().invoke, cli,
                ["--db", str(cfg.database), "partner", "set", "b.test", "--tls", "required", "--sasl",
                 "not_supported", "--dialback"],
            )
            assert result.exit_code == 0, result.output
            ev = await asyncio.wait_for(closed, 5)
            assert ev.condition == "policy-violation"
            # New streams use the new settings: dialback over TLS now.
            b.set_partner("gw.test", Settings.parse_triple("required/not_supported/true"), partner_type="federated")
            comp.say("alice@gw.test", "bob@b.test", "ping 2")
            assert str((await comp.next_message())["body"]) == "pong 2"
            data = await asyncio.to_thread(fetch_status, cfg)
            assert {s["method"] for s in data["streams"]} == {"tls_dialback"}
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(server, 15)
            await comp.stop()
            await comp_b.stop()
            await b.gateway.stop()
        # After SIGTERM nothing listens any more.
        try:
            await asyncio.wait_for(asyncio.open_connection("127.0.0.14", 5269), 2)
            raise AssertionError("still listening after SIGTERM")
        except OSError:
            pass

    asyncio.run(main())


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "fedgate.toml"
    path.write_text('[[domain]]\nname = "gw.test"\n[listen]\ns2s = ["not-an-address"]\n')
    result = CliRunner().invoke(cli, ["--lang", "en", "serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "listen.s2s[0]" in result.output
    path.write_text('[[domain]]\nname = "gw.test"\n[listen]\nadmin = "0.0.0.0:5380"\n')
    result = CliRunner().invoke(cli, ["--lang", "en", "serve", "--config", str(path)])
    assert result.exit_code == 2 and "listen.admin" in result.output


def test_sigterm_bounces_what_is_queued_and_sighup_reloads_certificates(tmp_path: Path) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        cfg_path = _write_config(tmp_path, ca)
        cfg = config_mod.load(cfg_path)
        store = SqliteStore(cfg.database)
        store.add_partner(Partner.parse(domain="b.test", tls="required", sasl="required", dialback=False,
                                        partner_type="federated"))
        store.update_gateway(stream_establishment_timeout=30)
        store.close()
        ready = asyncio.Event()
        server = asyncio.create_task(run(cfg, ready=ready))
        await asyncio.wait_for(ready.wait(), 10)

        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await asyncio.sleep(60)  # b.test accepts and never answers: stanzas stay queued

        b = await asyncio.start_server(silent, "127.0.0.15", 5269)
        comp = EchoComponent("gw.test", "secret", "127.0.0.14", 5347)
        await comp.start()
        try:
            # SIGHUP with a new certificate: new TLS handshakes present it.

            async def served_serial() -> int:
                reader, writer = await asyncio.open_connection("127.0.0.14", 5269)
                writer.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                             b"xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='gw.test' "
                             b"version='1.0'>")
                while b"</stream:features>" not in await reader.read(65536):
                    pass
                writer.write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                await reader.read(65536)  # <proceed/>
                session = TlsSession(client_context(None, TrustAnchors(cafiles=(ca.cert_path,), use_system=False)),
                                     server_side=False, server_name="gw.test")
                session.start()
                while not session.handshake_complete:
                    writer.write(session.data_to_send())
                    session.receive_data(await reader.read(65536))
                cert = session.peer_certificate().certificate
                writer.close()
                assert cert is not None
                return cert.serial_number

            before = await served_serial()
            new = ca.issue("gw.test", tmp_path / "certs")  # same paths, new key and serial
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.3)
            after = await served_serial()
            assert after != before and new.cert.exists()

            for i in range(3):
                comp.say("alice@gw.test", "bob@b.test", f"queued {i}")
            await asyncio.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)
            conditions = [error_condition(await comp.next_error(5)) for _ in range(3)]
            assert conditions == ["remote-server-timeout"] * 3  # bounced, not lost
            await asyncio.wait_for(server, 15)
        finally:
            if not server.done():
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.wait_for(server, 15)
            await comp.stop()
            b.close()

    asyncio.run(main())


def test_serve_process_exits_0_on_sigterm_within_the_bound(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    path = _write_config(tmp_path, ca)
    proc = subprocess.Popen([sys.executable, "-m", "fedgate.cli", "serve", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if _get("http://127.0.0.14:5380/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the gateway did not come up"
            time.sleep(0.1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 12
        err = proc.stderr.read().decode() if proc.stderr else ""
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert any("serving gw.test" in e["message"] for e in lines), err  # JSON-lines logging as configured
    finally:
        if proc.poll() is None:
            proc.kill()
