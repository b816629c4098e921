"""``fedgate probe`` against a real fedgate gateway on loopback, under several partner settings: what it
reports the gateway offers, the certificate, and the method our settings would use (or why none)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fedgate.certs import TestCA
from fedgate.cli import cli
from fedgate.i18n import t
from fedgate.partners import Partner
from fedgate.policy import Settings
from fedgate.probe import Features, ProbeStream, observed_settings, parse_features
from fedgate.server import Gateway, GatewayConfig, LocalDomain
from fedgate.store.sqlite import SqliteStore
from fedgate.tls import Credentials, TrustAnchors
from fedgate.xmlstream import XmlStreamParser

REMOTE = "gw.test"
US = "us.test"
JSON_KEYS = {"domain", "targets", "starttls", "certificate", "sasl_mechanisms", "dialback", "settings", "method",
             "reasons"}


@dataclass
class Remote:
    """A fedgate gateway serving ``gw.test`` on 127.0.0.1 in a thread of its own (the CLI runs its own loop).
    Its store and gateway are only touched from that thread (SQLite connections stay in their thread)."""

    port: int
    ca: TestCA
    loop: asyncio.AbstractEventLoop
    gateway: Gateway
    store: SqliteStore

    def set_partner(self, settings: str) -> None:
        async def change() -> None:
            s = Settings.parse_triple(settings)
            values = {"tls": s.tls.value, "sasl": s.sasl.value, "dialback": s.dialback}
            if self.store.find_partner(US) is None:
                self.store.add_partner(Partner.parse(domain=US, **values))
            else:
                self.store.update_partner(US, **values)
            self.gateway.reload()

        asyncio.run_coroutine_threadsafe(change(), self.loop).result(5)


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    ca = TestCA.create(tmp_path / "ca")
    files = ca.issue(REMOTE, tmp_path / "certs")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[Gateway, SqliteStore]:
        store = SqliteStore(tmp_path / "remote.sqlite3")
        config = GatewayConfig(
            domains={REMOTE: LocalDomain(REMOTE, Credentials(files.chain, files.key))},
            s2s_listen=[("127.0.0.1", 0)],
            component_listen=None,
            trust=TrustAnchors(cafiles=(ca.cert_path,), use_system=False),
        )
        gateway = Gateway(config, store)
        await gateway.start()
        return gateway, store

    async def stop(gateway: Gateway, store: SqliteStore) -> None:
        await gateway.stop()
        store.close()

    gateway, store = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    try:
        yield Remote(gateway.bound_ports()[0][1], ca, loop, gateway, store)
    finally:
        asyncio.run_coroutine_threadsafe(stop(gateway, store), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def run(*args: str) -> Result:
    env = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", "FEDGATE_DB": ""}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def our_store(tmp_path: Path, settings: str, remote: Remote) -> Path:
    """Our partner store: gw.test with ``settings`` and a proxy_fqdn to the remote's port (no DNS)."""
    path = tmp_path / "ours.sqlite3"
    s = Settings.parse_triple(settings)
    with SqliteStore(path) as store:
        store.add_partner(Partner.parse(domain=REMOTE, tls=s.tls.value, sasl=s.sasl.value, dialback=s.dialback,
                                        proxy_fqdn=f"127.0.0.1:{remote.port}"))
    return path


def probe_json(tmp_path: Path, remote: Remote, ours: str, *extra: str) -> tuple[int, dict[str, object]]:
    db = our_store(tmp_path, ours, remote)
    result = run("probe", REMOTE, "--from", US, "--db", str(db), "--format", "json",
                 "--cafile", str(remote.ca.cert_path), "--timeout", "5", *extra)
    assert result.exit_code in (0, 1), (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert set(report) >= JSON_KEYS
    return result.exit_code, report


@pytest.mark.parametrize(
    ("theirs", "starttls", "db_before", "db_after", "method"),
    [
        ("required/required/false", {"offered": True, "required": True}, False, False, "sasl_tls"),
        ("required/not_supported/true", {"offered": True, "required": True}, False, True, "tls_dialback"),
        ("optional/optional/true", {"offered": True, "required": False}, True, True, "sasl_tls"),
        ("not_supported/not_supported/true", {"offered": False, "required": False}, True, None, "tcp_dialback"),
    ],
)
def test_reports_what_the_gateway_offers(
    tmp_path: Path, remote: Remote, theirs: str, starttls: dict[str, bool], db_before: bool,
    db_after: bool | None, method: str,
) -> None:
    remote.set_partner(theirs)
    code, report = probe_json(tmp_path, remote, theirs)
    assert report["domain"] == REMOTE and report["from"] == US
    # proxy_fqdn from our store overrides DNS
    assert report["targets"] == [{"host": "127.0.0.1", "port": remote.port,
                                  "addresses": [f"127.0.0.1:{remote.port}"], "error": None}]
    assert report["stream_error"] is None
    assert report["starttls"] == starttls
    assert report["dialback"] == {"before_tls": db_before, "after_tls": db_after}
    assert report["sasl_mechanisms"] == []  # the probe presents no certificate
    assert report["method"] == method and code == 0
    cert = report["certificate"]
    if starttls["offered"]:
        assert isinstance(cert, dict)
        assert cert["chain_valid"] is True and cert["matches_domain"] is True and cert["valid_for_domain"] is True
        assert cert["chain"][0]["subject"] == f"CN={REMOTE}"
        assert cert["chain"][0]["dns_names"] == [REMOTE]
        assert cert["chain"][1]["subject"] == "CN=fedgate test CA"
    else:
        assert cert is None
    settings = report["settings"]
    assert isinstance(settings, dict) and settings["local_source"] == "partner"
    observed = settings["remote_observed"]
    assert isinstance(observed, dict)
    expected = Settings.parse_triple(theirs)
    assert observed["tls"] == expected.tls.value and observed["dialback"] == expected.dialback


def test_no_common_method_exits_1_with_every_reason(tmp_path: Path, remote: Remote) -> None:
    remote.set_partner("not_supported/not_supported/true")
    code, report = probe_json(tmp_path, remote, "required/required/false")
    assert code == 1 and report["method"] is None
    reasons = report["reasons"]
    assert isinstance(reasons, list)
    excluded = {(r["method"], r["side"], r["rule"]) for r in reasons if r["code"] == "excluded"}
    assert ("sasl_tls", "remote", "tls_not_supported") in excluded
    assert ("tls_dialback", "local", "dialback_off") in excluded
    assert ("tcp_dialback", "local", "tls_required") in excluded
    assert all(r["text"] for r in reasons)


def test_untrusted_certificate_and_not_a_partner(tmp_path: Path, remote: Remote) -> None:
    remote.set_partner("required/optional/true")
    # No --cafile: only the system store, which does not know the test CA. Not in the store either.
    result = run("probe", REMOTE, "--from", US, "--db", str(tmp_path / "missing.sqlite3"),
                 "--connect", f"127.0.0.1:{remote.port}", "--format", "json", "--timeout", "5")
    report = json.loads(result.stdout)
    cert = report["certificate"]
    assert cert["chain_valid"] is False and cert["error"]
    assert cert["matches_domain"] is True and cert["valid_for_domain"] is False
    assert report["settings"]["local_source"] == "default"
    assert "not_a_partner" in {r["code"] for r in report["reasons"]}
    assert not (tmp_path / "missing.sqlite3").exists()  # a probe never creates a store


def test_stream_refused_for_an_unknown_from_domain(tmp_path: Path, remote: Remote) -> None:
    result = run("--lang", "zh-TW", "probe", REMOTE, "--connect", f"127.0.0.1:{remote.port}",
                 "--db", str(tmp_path / "none.sqlite3"), "--timeout", "5")
    assert result.exit_code == 1
    assert "policy-violation" in result.stdout
    assert t("probe.label.stream_error", "zh-TW") in result.stdout
    assert t("probe.no_method", "zh-TW") in result.stdout


def test_text_output_names_the_findings(tmp_path: Path, remote: Remote) -> None:
    remote.set_partner("required/not_supported/true")
    db = our_store(tmp_path, "required/not_supported/true", remote)
    result = run("probe", REMOTE, "--from", US, "--db", str(db), "--cafile", str(remote.ca.cert_path))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert t("probe.offered_required", "en") in out
    assert t("probe.cert_valid", "en") in out
    assert t("probe.cert_matches", "en", domain=REMOTE) in out
    assert "tls_dialback" in out


def test_connection_refused_exits_1(tmp_path: Path) -> None:
    result = run("probe", REMOTE, "--connect", "127.0.0.1:1", "--db", str(tmp_path / "x"), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["connected"] is None and report["method"] is None
    assert "connect_failed" in {r["code"] for r in report["reasons"]}


@pytest.mark.parametrize("args", [["--connect", "nope:port"], ["--format", "xml"], ["--port", "0"], []])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run("probe", *([REMOTE] if args else []), *args)
    assert result.exit_code == 2


def test_sans_io_features_and_observed_settings() -> None:
    stream = ProbeStream(REMOTE, US)
    stream.start()
    header = stream.data_to_send()
    opened = XmlStreamParser().feed(header)
    assert opened and opened[0].attrs["to"] == REMOTE and opened[0].attrs["from"] == US  # type: ignore[union-attr]
    events = stream.receive_data(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'>"
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
        b"</stream:features>"
    )
    features = [e for e in events if hasattr(e, "features")]
    assert features and features[0].features == Features(starttls=True, starttls_required=True)  # type: ignore[union-attr]
    after = Features(mechanisms=("EXTERNAL",), dialback=False)
    assert observed_settings(Features(True, True), after) == (Settings.parse_triple("required/required/false"), True)
    assert observed_settings(Features(True, False), Features(mechanisms=("EXTERNAL",), dialback=True)) == (
        Settings.parse_triple("optional/optional/true"), True)
    assert observed_settings(Features(dialback=True), None) == (
        Settings.parse_triple("not_supported/not_supported/true"), True)
    assert observed_settings(Features(True, True), Features(dialback=True))[1] is False
    from xml.etree.ElementTree import fromstring

    el = fromstring("<f xmlns='http://etherx.jabber.org/streams'><dialback xmlns='urn:xmpp:features:dialback'/></f>")
    assert parse_features(el).dialback is True
