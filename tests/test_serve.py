"""`fedgate serve` from a config file, in-process: the admin endpoint (status, metrics, health), `fedgate
status`, partner changes taking effect without a restart, and SIGTERM closing everything cleanly."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from fedgate import config as config_mod
from fedgate import i18n
from fedgate.certs import TestCA
from fedgate.cli import cli
from fedgate.cli.serve import fetch_status, run
from fedgate.dialback import DIALBACK_FEATURE_NS, DIALBACK_NS
from fedgate.partners import Partner
from fedgate.policy import Settings
from fedgate.resolver import Resolver
from fedgate.s2s import NegotiationFailed, StreamClosed
from fedgate.server import Gateway, GatewayConfig, LocalDomain, _failure_text
from fedgate.store.sqlite import SqliteStore
from fedgate.tls import Credentials, TlsSession, TrustAnchors, client_context

from .net.components import EchoComponent, error_condition
from .net.gateways import Node, make_node
from .net.rawpeer import STARTTLS, FakePartner, Outcome, RawPeer, features, header, listen

ROUTES = {"gw.test": "127.0.0.14:5269", "b.test": "127.0.0.15:5269"}


@pytest.fixture(autouse=True)
def _language_restored() -> Iterator[None]:
    """``--lang`` on a CLI call sets the language of this process's log lines; each test leaves it as it
    found it (tests that read log records expect English, whatever ran before them)."""
    before = i18n.current_language()
    yield
    i18n.set_language(before)


def _config_text(tmp: Path, ca: TestCA, *, secret: str = "secret", listen_extra: str = "",
                 certificate: Path | None = None, key: Path | None = None, cafile: Path | None = None) -> str:
    files = ca.issue("gw.test", tmp / "certs")
    return f"""
[gateway]
database = "gw.sqlite3"
log_format = "json"

[[domain]]
name = "gw.test"
certificate = "{certificate or files.chain}"
key = "{key or files.key}"
component_secret = "{secret}"

[listen]
s2s = ["127.0.0.14:5269"]
component = "127.0.0.14:5347"
admin = "127.0.0.14:5380"
{listen_extra}

[trust]
system = false
cafiles = ["{cafile or ca.cert_path}"]

[dns]
use_srv = false
static_routes = {{ "b.test" = "127.0.0.15:5269", "c.test" = "127.0.0.15:5270", "d.test" = "127.0.0.15:5272" }}
"""


def _write_config(tmp: Path, ca: TestCA, **options: Any) -> Path:
    path = tmp / "fedgate.toml"
    path.write_text(_config_text(tmp, ca, **options))
    return path


async def _served_serial(ca: TestCA, server_name: str = "gw.test") -> int:
    """The serial number of the certificate the gateway presents to a new STARTTLS handshake (b.test must be
    a partner)."""
    reader, writer = await asyncio.open_connection("127.0.0.14", 5269)
    writer.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                 b"xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='gw.test' "
                 b"version='1.0'>")
    async def more() -> bytes:
        data = await asyncio.wait_for(reader.read(65536), 5)
        if not data:
            raise AssertionError("the gateway closed the connection")
        return data

    seen = b""
    while b"</stream:features>" not in seen:
        seen += await more()
    writer.write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await more()  # <proceed/>
    session = TlsSession(client_context(None, TrustAnchors(cafiles=(ca.cert_path,), use_system=False)),
                         server_side=False, server_name=server_name)
    session.start()
    while not session.handshake_complete:
        writer.write(session.data_to_send())
        session.receive_data(await more())
    cert = session.peer_certificate().certificate
    writer.close()
    assert cert is not None
    return cert.serial_number


async def _component_accepted(secret: str, domain: str = "gw.test") -> bool:
    """Whether the gateway's component listener accepts ``secret`` for ``domain`` (XEP-0114 handshake)."""
    reader, writer = await asyncio.open_connection("127.0.0.14", 5347)
    try:
        writer.write(f"<stream:stream xmlns='jabber:component:accept' "
                     f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>".encode())
        head = b""
        while b"id=" not in head or b">" not in head.split(b"id=", 1)[1]:
            head += await asyncio.wait_for(reader.read(4096), 5)
        stream_id = re.search(rb"id=['\"]([^'\"]+)", head)
        assert stream_id is not None
        digest = hashlib.sha1(stream_id.group(1) + secret.encode()).hexdigest()
        writer.write(f"<handshake>{digest}</handshake>".encode())
        answer = b""
        while b"handshake" not in answer and b"error" not in answer:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            if not chunk:
                break
            answer += chunk
        return b"<handshake/>" in answer or b"<handshake></handshake>" in answer
    finally:
        writer.close()


async def _serving(cfg: config_mod.ServeConfig, partners: dict[str, str] | None = None) -> asyncio.Task[None]:
    """``fedgate serve`` in this process, with ``partners`` (domain: "tls/sasl/dialback"; default b.test
    required/required/false) in its database; returns once it listens."""
    store = SqliteStore(cfg.database)
    for domain, triple in (partners or {"b.test": "required/required/false"}).items():
        tls, sasl, dialback = triple.split("/")
        store.add_partner(Partner.parse(domain=domain, tls=tls, sasl=sasl, dialback=dialback == "true",
                                        partner_type="federated"))
    store.close()
    ready = asyncio.Event()
    server = asyncio.create_task(run(cfg, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    return server


async def _partner_and_components(tmp: Path, ca: TestCA, settings: str) -> tuple[Node, EchoComponent, EchoComponent]:
    """b.test (a gateway with ``settings`` for gw.test) and a component behind each gateway (comp_b is where
    bounces for b.test arrive)."""
    b = await make_node(tmp, ca, "b.test", "127.0.0.15", ROUTES, component_port=5347)
    b.set_partner("gw.test", Settings.parse_triple(settings), partner_type="federated")
    comp = EchoComponent("gw.test", "secret", "127.0.0.14", 5347)
    comp_b = EchoComponent("b.test", "secret", "127.0.0.15", 5347)
    await comp.start()
    await comp_b.start()
    return b, comp, comp_b


async def _stop_all(server: asyncio.Task[None], b: Node, *components: EchoComponent) -> None:
    """SIGTERM to the gateway under test (unless it has stopped), then the components and b.test."""
    if not server.done():
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(server, 15)
    for component in components:
        await component.stop()
    await b.gateway.stop()


async def _dialback_inventor(peer: RawPeer) -> None:
    """A partner server for d.test that answers every dialback key with an error condition nobody defined."""
    attrs = await peer.expect_header()
    peer.send(header(attrs.get("from"), "d.test", stream_id="d-stream"))
    peer.send(features(starttls=False))
    request = await peer.next_element()
    assert request.tag == f"{{{DIALBACK_NS}}}result"
    peer.send("<db:result from='d.test' to='gw.test' type='error'><error type='cancel'>"
              "<invented-condition-1234 xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>")
    await peer.read_until_closed()  # the gateway gives up on us: </stream:stream>, then ours


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text → {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


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
        settings = Settings.parse_triple("required/required/false")
        c_server = await listen("127.0.0.15", FakePartner("c.test"), port=5270)
        d_server = await listen("127.0.0.15", _dialback_inventor, port=5272)
        server = await _serving(cfg, {
            "b.test": "required/required/false",
            # c.test offers no STARTTLS, and we require TLS with it: a negotiation failure and a bounce.
            "c.test": "required/optional/true",
            # d.test answers our dialback key with an error condition of its own invention.
            "d.test": "optional/not_supported/true",
        })
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
            # Each outbound stream says how many stanzas wait for it; inbound streams carry none of ours.
            assert {(s["direction"], s["queue"]) for s in data["streams"]} == {("out", 0), ("in", None)}
            # `fedgate status` (the command a person runs)
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["--lang", "en", "status", "--config", str(cfg.path)]
            )
            assert "b.test" in result.output and "sasl_tls" in result.output and "TLSv1.3" in result.output
            header, _rule, *table_rows = result.output.splitlines()
            assert header.split()[-1] == "queued"
            queued = {row.split()[1]: row.split()[-1] for row in table_rows if row.startswith("b.test")}
            assert queued == {"out": "0", "in": "-"}, result.output
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["status", "--config", str(cfg.path), "--format", "json"]
            )
            assert json.loads(result.output)["streams"]

            code, body = await asyncio.to_thread(_get, "http://127.0.0.14:5380/health")
            assert (code, body) == (200, b"ok\n")
            comp.say("alice@gw.test", "carol@c.test", "to a partner without TLS")
            assert error_condition(await comp.next_error()) == "remote-server-not-found"
            comp.say("alice@gw.test", "dave@d.test", "to a partner with odd dialback errors")
            dave_condition = error_condition(await comp.next_error())
            assert dave_condition is not None
            code, body = await asyncio.to_thread(_get, "http://127.0.0.14:5380/metrics")
            assert code == 200
            metrics = _samples(body.decode())
            for direction in ("in", "out"):  # the streams this test opened, both ways
                assert metrics[("fedgate_streams", (("direction", direction), ("method", "sasl_tls"),
                                                    ("partner", "b.test")))] == 1
            assert metrics[("fedgate_authentications_total", (("direction", "in"), ("method", "sasl_tls")))] >= 1
            assert metrics[("fedgate_negotiation_failures_total", (("reason", "starttls_not_offered"),))] == 1
            # A peer's own error text never becomes a label value: it is counted under a fixed code.
            assert metrics[("fedgate_negotiation_failures_total", (("reason", "dialback_other"),))] == 1
            assert "invented" not in body.decode()
            bounces = Counter(["remote-server-not-found", dave_condition])
            for condition, n in bounces.items():
                assert metrics[("fedgate_bounces_total", (("condition", condition),))] == n
            # ping 1 went out and pong 1 came in; the stanza for c.test never left (it was bounced)
            assert metrics[("fedgate_stanzas_total", (("direction", "out"),))] == 1
            assert metrics[("fedgate_stanzas_total", (("direction", "in"),))] == 1
            # bytes on the wire: the TLS handshakes alone are more than a kilobyte each way
            assert metrics[("fedgate_bytes_total", (("direction", "in"),))] > 1000
            assert metrics[("fedgate_bytes_total", (("direction", "out"),))] > 1000
            assert metrics[("fedgate_queue_depth", (("local", "gw.test"), ("partner", "b.test")))] == 0

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
            await _stop_all(server, b, comp, comp_b)
            c_server.close()
            d_server.close()
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
    path.write_text('[gateway]\nevent_loop = "tokio"\n[[domain]]\nname = "gw.test"\n')
    result = CliRunner().invoke(cli, ["--lang", "en", "serve", "--config", str(path)])
    assert result.exit_code == 2 and "gateway.event_loop" in result.output and "asyncio" in result.output


def test_uvloop_named_but_missing_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a))
    path = tmp_path / "fedgate.toml"
    path.write_text('[gateway]\nevent_loop = "uvloop"\n[[domain]]\nname = "gw.test"\n')
    result = CliRunner().invoke(cli, ["--lang", "en", "serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "gateway.event_loop: uvloop is not installed" in result.output


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

            before = await _served_serial(ca)
            new = ca.issue("gw.test", tmp_path / "certs")  # same paths, new key and serial
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.3)
            after = await _served_serial(ca)
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


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_serve_process_exits_0_on_sigterm_within_the_bound(tmp_path: Path, event_loop: str) -> None:
    """The real process on each event loop: it comes up, reloads on SIGHUP and stops on SIGTERM."""
    if event_loop == "uvloop" and os.environ.get("CI") != "true":
        pytest.importorskip("uvloop")  # (scripts/test installs fedgate[fast]; in CI a missing uvloop fails)
    ca = TestCA.create(tmp_path / "ca")
    path = _write_config(tmp_path, ca)
    path.write_text(path.read_text().replace("[gateway]\n", f'[gateway]\nevent_loop = "{event_loop}"\n', 1))
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
        # SIGHUP applies a new log format at once: the reload is already logged as text.
        path.write_text(path.read_text().replace('log_format = "json"', 'log_format = "text"'))
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 12
        err = proc.stderr.read().decode() if proc.stderr else ""
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert any("serving gw.test" in e["message"] and f"(event loop: {event_loop})" in e["message"]
                   for e in lines), err  # JSON-lines logging as configured, on the loop asked for
        text_lines = [line for line in err.splitlines() if not line.startswith("{")]
        assert any("INFO fedgate: reloaded" in line for line in text_lines), err
        assert not any("reloaded" in e["message"] for e in lines), err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_certificate_key_or_cafile_is_a_config_error_and_nothing_starts(tmp_path: Path) -> None:
    """A certificate, key or CA file that does not load: one line naming the key, exit 2, no database made."""
    ca = TestCA.create(tmp_path / "ca")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    other = ca.issue("other.test", tmp_path / "other")  # a good key, but not the certificate's
    cases = [
        ({"certificate": garbage}, "domain[0].certificate", "not a usable PEM certificate chain"),
        ({"key": garbage}, "domain[0].key", "not a usable PEM private key"),
        ({"key": other.key}, "domain[0].key", "is not the private key of the certificate"),
        ({"cafile": garbage}, "trust.cafiles[0]", "no usable PEM CA certificate"),
    ]
    for options, key, words in cases:
        path = _write_config(tmp_path, ca, **options)
        result = CliRunner().invoke(cli, ["--lang", "en", "serve", "--config", str(path)])
        assert result.exit_code == 2, (key, result.output, result.exception)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and key in lines[0] and words in lines[0], (key, result.output)
        assert not (tmp_path / "gw.sqlite3").exists(), key  # nothing was created
    result = CliRunner().invoke(cli, ["--lang", "ja", "serve", "--config",
                                      str(_write_config(tmp_path, ca, key=other.key))])
    assert result.exit_code == 2 and "domain[0].key" in result.output and "秘密鍵" in result.output


def test_status_reads_the_token_and_never_makes_one(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    path = _write_config(tmp_path, ca)
    result = CliRunner().invoke(cli, ["--lang", "en", "status", "--config", str(path)])
    assert result.exit_code == 2
    assert "admin.token_file" in result.output and "fedgate serve" in result.output
    assert not (tmp_path / "admin-token").exists()


def test_metrics_address_serves_metrics_and_health_without_the_token(tmp_path: Path) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        cfg = config_mod.load(_write_config(tmp_path, ca, listen_extra='metrics = "127.0.0.14:9269"'))
        assert cfg.metrics_listen == ("127.0.0.14", 9269)
        ready = asyncio.Event()
        server = asyncio.create_task(run(cfg, ready=ready))
        await asyncio.wait_for(ready.wait(), 10)
        try:
            code, body = await asyncio.to_thread(_get, "http://127.0.0.14:9269/metrics")
            assert code == 200 and b"fedgate_streams" in body and b"fedgate_bytes_total" in body
            assert await asyncio.to_thread(_get, "http://127.0.0.14:9269/health") == (200, b"ok\n")
            token = cfg.read_admin_token()
            assert (await asyncio.to_thread(_get, "http://127.0.0.14:9269/status", token))[0] == 404  # admin only
            assert (await asyncio.to_thread(_get, "http://127.0.0.14:5380/status", token))[0] == 200
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(server, 15)

    asyncio.run(main())
    path = tmp_path / "fedgate.toml"
    path.write_text(path.read_text().replace('metrics = "127.0.0.14:9269"', 'metrics = "127.0.0.14:5380"'))
    result = CliRunner().invoke(cli, ["--lang", "en", "serve", "--config", str(path)])
    assert result.exit_code == 2 and "listen.metrics" in result.output and "listen.admin" in result.output


def test_sighup_refuses_a_broken_certificate_and_applies_a_new_component_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP re-reads the whole file: a broken certificate changes nothing (the old one is still presented,
    one log line names the key); a new component secret and a new static route apply at once; a changed
    listen address is logged as needing a restart."""
    caplog.set_level(logging.INFO, logger="fedgate")

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        cfg_path = _write_config(tmp_path, ca)
        cfg = config_mod.load(cfg_path)
        chain = cfg.gateway.domains["gw.test"].credentials
        assert chain is not None
        server = await _serving(cfg)
        try:
            before = await _served_serial(ca)
            good_chain = chain.cert_chain.read_bytes()
            chain.cert_chain.write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.3)
            refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
            assert len(refused) == 1 and "domain[0].certificate" in refused[0], refused
            assert await _served_serial(ca) == before  # still serving, with the old certificate
            assert await _component_accepted("secret")

            chain.cert_chain.write_bytes(good_chain)
            text = cfg_path.read_text()
            cfg_path.write_text(text.replace('component_secret = "secret"', 'component_secret = "rotated"')
                                .replace('s2s = ["127.0.0.14:5269"]', 's2s = ["127.0.0.14:5271"]'))
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.3)
            assert await _component_accepted("rotated")
            assert not await _component_accepted("secret")
            messages = [r.getMessage() for r in caplog.records]
            assert any("listen.s2s changed" in m and "restart" in m for m in messages), messages
            assert not any("listen.component changed" in m for m in messages)
            assert await _served_serial(ca) == before  # the old address is still the one in use

            # [dns] applies at once too: b.test's static route now leads to a server that answers there.
            b_here = FakePartner("b.test")
            b_server = await listen("127.0.0.15", b_here, port=5273)
            cfg_path.write_text(cfg_path.read_text().replace('"b.test" = "127.0.0.15:5269"',
                                                             '"b.test" = "127.0.0.15:5273"'))
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.3)
            comp = EchoComponent("gw.test", "rotated", "127.0.0.14", 5347)
            await comp.start()
            try:
                comp.say("alice@gw.test", "bob@b.test", "over the new route")
                await comp.next_error()  # b.test there offers no TLS, which we require: bounced
                assert len(b_here.peers) == 1
            finally:
                await comp.stop()
                b_server.close()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(server, 15)

    asyncio.run(main())


async def _sasl_peer(ca: TestCA, tmp: Path) -> RawPeer:
    """b.test on a raw stream into the gateway, authenticated by SASL EXTERNAL over TLS, ready for stanzas."""
    files = ca.issue("b.test", tmp / "raw-b", basename="raw-b")
    trust = TrustAnchors(cafiles=(ca.cert_path,), use_system=False)
    peer = await RawPeer.connect("127.0.0.14", 5269, source="127.0.0.15")

    async def open_stream() -> Element:
        peer.send(header("gw.test", "b.test"))
        await peer.expect_header()
        return await peer.next_element()

    await open_stream()
    peer.send(STARTTLS)
    await peer.next_element()  # <proceed/>
    await peer.starttls(client_context(Credentials(files.chain, files.key), trust), server_side=False,
                        server_name="gw.test")
    await open_stream()
    peer.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>"
              + base64.b64encode(b"b.test").decode() + "</auth>")
    assert (await peer.next_element()).tag.endswith("}success")
    peer.restart()
    await open_stream()
    return peer


def _drain_ids(sources: list[tuple[asyncio.Queue[Any], list[str]]]) -> None:
    """Move what each component queue holds into its list of ids."""
    for queue, ids in sources:
        while not queue.empty():
            ids.append(str(queue.get_nowait()["id"]))


async def _sigterm_while_sending(peer: RawPeer, server: asyncio.Task[None], stanza: Callable[[int], str],
                                 first: int = 0) -> tuple[int, Outcome]:
    """Send ``stanza(first)``, ``stanza(first + 1)``... on ``peer``, five at a time, until it reads our close;
    SIGTERM once 50 are out. Returns how many were sent in all (from 0) and what the peer read until the close
    (which must be </stream:stream>, no stream error), once the gateway has stopped."""
    sent = first

    async def send_until_closed() -> None:
        nonlocal sent
        while not (peer.closed or peer.eof):
            for _ in range(5):
                peer.send(stanza(sent))
                sent += 1
            await asyncio.sleep(0.001)

    sender = asyncio.create_task(send_until_closed())
    while sent < first + 50:
        await asyncio.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
    outcome = await peer.read_until_closed(10)
    await asyncio.wait_for(sender, 5)
    assert outcome.closed and outcome.condition is None, outcome  # </stream:stream> before the close
    await asyncio.wait_for(server, 15)
    return sent, outcome


def test_sigterm_loses_no_stanza_sent_on_a_live_stream(tmp_path: Path) -> None:
    """SIGTERM while a partner is sending on an authenticated stream: each stanza it sent before it read our
    </stream:stream> reaches the component or comes back to its sender with an error (sent == delivered +
    bounced), and </stream:stream> arrives before the TCP connection ends."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        cfg = config_mod.load(_write_config(tmp_path, ca))
        server = await _serving(cfg)
        b, comp, comp_b = await _partner_and_components(tmp_path, ca, "required/required/false")
        peer = await _sasl_peer(ca, tmp_path)
        try:
            sent, _ = await _sigterm_while_sending(peer, server, lambda n: (
                f"<message from='x@b.test' to='alice@gw.test' id='s{n}' type='chat'><body>n {n}</body></message>"))
            delivered: list[str] = []
            bounced: list[str] = []
            sources = [(comp.received, delivered), (comp_b.errors, bounced)]
            deadline = time.monotonic() + 3
            while len(delivered) + len(bounced) < sent and time.monotonic() < deadline:
                _drain_ids(sources)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # (nothing more may come: each stanza once, delivered or bounced)
            _drain_ids(sources)
            assert len(delivered) >= 50  # what came before SIGTERM
            # (A plain </stream:stream>: what the partner sent before reading it is delivered, none bounced.)
            assert sorted(delivered + bounced) == sorted(f"s{i}" for i in range(sent)), (sent, delivered, bounced)
        finally:
            await peer.close()
            await _stop_all(server, b, comp, comp_b)

    asyncio.run(main())


async def _raw_component(secret: str = "secret", domain: str = "gw.test") -> RawPeer:
    """A component for ``domain`` on a raw XEP-0114 stream into the gateway, past the handshake."""
    peer = await RawPeer.connect("127.0.0.14", 5347)
    peer.send(f"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' "
              f"to='{domain}'>")
    attrs = await peer.expect_header()
    peer.send(f"<handshake>{hashlib.sha1((attrs['id'] + secret).encode()).hexdigest()}</handshake>")
    assert (await peer.next_element()).tag.endswith("}handshake")
    return peer


def test_sigterm_routes_what_a_component_still_sends(tmp_path: Path) -> None:
    """SIGTERM while a component is sending to a partner: the component is closed with </stream:stream> while
    the outbound stream to the partner is still up, so each stanza it sent before it read our close reaches
    the partner (or comes back to the component before the close): sent == delivered + bounced."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        cfg = config_mod.load(_write_config(tmp_path, ca))
        server = await _serving(cfg)
        b = await make_node(tmp_path, ca, "b.test", "127.0.0.15", ROUTES, component_port=5347)
        b.set_partner("gw.test", Settings.parse_triple("required/required/false"), partner_type="federated")
        comp_b = EchoComponent("b.test", "secret", "127.0.0.15", 5347)
        await comp_b.start()
        peer = await _raw_component()

        def message(n: int) -> str:
            return f"<message from='alice@gw.test' to='bob@b.test' id='c{n}' type='chat'><body>c {n}</body></message>"

        try:
            peer.send(message(0))
            assert str((await comp_b.next_message())["id"]) == "c0"  # the outbound stream is up
            sent, outcome = await _sigterm_while_sending(peer, server, message, first=1)
            delivered = ["c0"]
            bounced = [str(el.get("id")) for el in outcome.elements if el.get("type") == "error"]
            deadline = time.monotonic() + 3
            while len(delivered) + len(bounced) < sent and time.monotonic() < deadline:
                _drain_ids([(comp_b.received, delivered)])
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            _drain_ids([(comp_b.received, delivered)])
            assert sorted(delivered + bounced) == sorted(f"c{i}" for i in range(sent)), (sent, delivered, bounced)
        finally:
            await peer.close()
            await comp_b.stop()
            await b.gateway.stop()

    asyncio.run(main())


def test_partner_change_closing_live_streams_loses_no_stanza(tmp_path: Path) -> None:
    """A partner change made with the CLI closes both live streams with policy-violation while stanzas flow
    both ways: each stanza is delivered or bounced to its sender, none disappears."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        cfg = config_mod.load(_write_config(tmp_path, ca))
        server = await _serving(cfg)
        b, comp, comp_b = await _partner_and_components(tmp_path, ca, "required/optional/true")
        closed = asyncio.get_running_loop().create_future()
        b.gateway.listeners.append(
            lambda d, e: closed.done() or not isinstance(e, StreamClosed) or closed.set_result(e)
        )
        try:
            comp.say("alice@gw.test", "bob@b.test", "ping 0")
            assert str((await comp.next_message())["body"]) == "pong 0"
            assert str((await comp_b.next_message())["body"]) == "ping 0"
            sent = {"g": 0, "b": 0}  # g: gw.test -> b.test, b: b.test -> gw.test

            async def flow(seconds: float) -> None:
                stop_at = time.monotonic() + seconds
                while time.monotonic() < stop_at:
                    for _ in range(5):
                        comp.send_message(mto="bob@b.test", mfrom="alice@gw.test", mbody="g", mtype="chat")
                        comp_b.send_message(mto="alice@gw.test", mfrom="bob@b.test", mbody="b", mtype="chat")
                    sent["g"] += 5
                    sent["b"] += 5
                    await asyncio.sleep(0.001)

            traffic = asyncio.create_task(flow(2.5))
            await asyncio.sleep(0.3)
            result = await asyncio.to_thread(
                CliRunner().invoke, cli,
                ["--db", str(cfg.database), "partner", "set", "b.test", "--tls", "required", "--sasl",
                 "not_supported", "--dialback"],
            )
            assert result.exit_code == 0, result.output
            assert (await asyncio.wait_for(closed, 5)).condition == "policy-violation"
            await traffic
            counts = {"g": [0, 0], "b": [0, 0]}  # [delivered, bounced]

            def drain() -> None:
                for queue, index in ((comp_b.received, 0), (comp.errors, 1), (comp.received, 0),
                                     (comp_b.errors, 1)):
                    while not queue.empty():
                        msg = queue.get_nowait()
                        counts[str(msg["body"]) or ("g" if queue is comp.errors else "b")][index] += 1

            deadline = time.monotonic() + 5
            while sum(map(sum, counts.values())) < sum(sent.values()) and time.monotonic() < deadline:
                drain()
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # (nothing more may come: each stanza once, delivered or bounced)
            drain()
            data = await asyncio.to_thread(fetch_status, cfg)
            assert {s["method"] for s in data["streams"]} == {"tls_dialback"}  # the new streams
            # Ours to the partner: what was written before the close is delivered, what came after waits for
            # the new stream (or is bounced).
            assert sum(counts["g"]) == sent["g"], (sent, counts)
            # The partner's to us: what it sent before it read our stream error comes back to it (the stream
            # was refused: see s2s/base.py close()), on our new stream to it; the rest is delivered.
            assert sum(counts["b"]) == sent["b"], (sent, counts)
        finally:
            await _stop_all(server, b, comp, comp_b)

    asyncio.run(main())


def test_a_domain_without_a_certificate_offers_no_starttls(tmp_path: Path) -> None:
    """gw.test has a certificate, plain.test none. The machines' context says so per domain (an outbound
    stream from plain.test has no certificate for SASL EXTERNAL); a partner opening a stream to plain.test is
    not offered STARTTLS and, with TLS optional, gets dialback over plain TCP instead of a STARTTLS that ends
    with another domain's certificate (or internal-server-error when no domain has one). A partner with whom
    TLS is required is refused at its header with internal-server-error, and the failure names the missing
    certificate."""
    ca = TestCA.create(tmp_path / "ca")
    files = ca.issue("gw.test", tmp_path / "certs")
    store = SqliteStore(tmp_path / "gw.sqlite3")
    store.add_partner(Partner.parse(domain="b.test", tls="optional", sasl="optional", dialback=True,
                                    partner_type="federated"))
    store.add_partner(Partner.parse(domain="c.test", tls="required", sasl="optional", dialback=True,
                                    partner_type="federated"))
    config = GatewayConfig(
        domains={"gw.test": LocalDomain("gw.test", Credentials(files.chain, files.key)),
                 "plain.test": LocalDomain("plain.test")},
        s2s_listen=[("127.0.0.14", 5269)], component_listen=None,
        trust=TrustAnchors(cafiles=(ca.cert_path,), use_system=False),
        resolver=Resolver(static_routes=ROUTES, use_srv=False),
    )
    failures: list[NegotiationFailed] = []

    async def first_element(to: str, from_: str) -> Element:
        peer = await RawPeer.connect("127.0.0.14", 5269, source="127.0.0.15")
        try:
            peer.send(header(to, from_))
            await peer.expect_header()
            return await peer.next_element()
        finally:
            await peer.close()

    async def main() -> tuple[Element, Element, Element]:
        gateway = Gateway(config, store)
        gateway.listeners.append(lambda _d, e: isinstance(e, NegotiationFailed) and failures.append(e))
        assert gateway._context().has_certificate("gw.test")
        assert not gateway._context().has_certificate("plain.test")
        await gateway.start()
        try:
            return (await first_element("plain.test", "b.test"), await first_element("gw.test", "b.test"),
                    await first_element("plain.test", "c.test"))
        finally:
            await gateway.stop()

    try:
        offered, offered_by_gw, refused = asyncio.run(main())
    finally:
        store.close()
    starttls = "{urn:ietf:params:xml:ns:xmpp-tls}starttls"
    assert offered.find(f"{{{DIALBACK_FEATURE_NS}}}dialback") is not None
    assert offered.find(starttls) is None
    assert offered_by_gw.find(starttls) is not None  # (the domain with a certificate still offers it)
    assert refused.tag == "{http://etherx.jabber.org/streams}error"
    assert refused.find("{urn:ietf:params:xml:ns:xmpp-streams}internal-server-error") is not None
    [failure] = [f for f in failures if f.remote_domain == "c.test"]
    assert failure.detail == "no_local_certificate" and failure.local_domain == "plain.test"
    assert _failure_text(failure, "en").startswith("plain.test has no certificate")
