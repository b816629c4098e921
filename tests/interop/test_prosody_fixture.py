"""The Prosody fixture itself: policy mapping (pure), config, /etc/hosts editing, and a live Prosody with real
slixmpp clients (c2s) and a second Prosody (s2s) so the log helpers are checked against real logs."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from fedgate.policy import Method, Sasl, Settings, Tls, evaluate

from .conftest import ProsodyPool
from .prosody import (
    HOSTS_MARKER,
    HostsFile,
    ProsodyPolicy,
    ProsodyServer,
    lua,
    prosody_options,
    s2s_events,
)

# -- pure: the 18 rows of the matrix -> Prosody options -------------------------------------------------------


def test_prosody_options_cover_the_18_matrix_rows(matrix_file: dict[str, Any]) -> None:
    rows = matrix_file["rows"]
    assert len(rows) == 18
    for row in rows:
        tls, sasl, dialback = row["tls"], row["sasl"], row["dialback"]
        options = prosody_options(tls, sasl, dialback)
        where = f"{tls}/{sasl}/{dialback}"
        # TLS: required -> STARTTLS <required/>; optional -> offered; not_supported -> neither offered nor used.
        assert options["s2s_require_encryption"] is (tls == "required"), where
        assert options["s2s_allow_encryption"] is (tls != "not_supported"), where
        # TLS and SASL required -> the certificate must validate (EXTERNAL or nothing); never without TLS.
        assert options["s2s_secure_auth"] is (sasl == "required" and tls == "required"), where
        assert not (options["s2s_secure_auth"] and not options["s2s_require_encryption"]), where
        # Dialback is the module.
        assert ("dialback" in options["modules_enabled"]) is dialback, where
        assert ("dialback" in options["modules_disabled"]) is (not dialback), where
        # What Prosody then allows agrees with the matrix on the methods that do not involve EXTERNAL,
        # which Prosody cannot switch off: each dialback method is possible iff the row lists it.
        expected = {Method(m) for m in row["expected_methods"]}
        assert (Method.TCP_DIALBACK in expected) is (
            dialback and not options["s2s_require_encryption"] and not options["s2s_secure_auth"]
        ), where
        assert (Method.TLS_DIALBACK in expected) is (
            dialback and options["s2s_allow_encryption"] and not options["s2s_secure_auth"]
        ), where
        if not options["s2s_allow_encryption"]:
            assert Method.SASL_TLS not in expected and Method.TLS_DIALBACK not in expected, where


def test_prosody_options_agree_with_policy_engine_on_tls() -> None:
    for tls in Tls:
        methods = set(evaluate(Settings(tls=tls, sasl=Sasl.OPTIONAL, dialback=True)).expected_methods)
        options = prosody_options(str(tls), "optional", True)
        assert (Method.TCP_DIALBACK in methods) is (not options["s2s_require_encryption"])
        assert (Method.SASL_TLS in methods) is options["s2s_allow_encryption"]


def test_prosody_options_refuse_unknown_values() -> None:
    with pytest.raises(ValueError):
        prosody_options("maybe", "optional", True)
    with pytest.raises(ValueError):
        prosody_options("optional", "yes", True)


def test_policy_ids_match_the_transcript_names() -> None:
    assert ProsodyPolicy("required", "required", False).id == "tls-required_sasl-required_db-off"
    assert ProsodyPolicy("not_supported", "not_supported", True).id == "tls-none_sasl-none_db-on"
    transcripts = Path("/work/shared/reference/prosody-0.12-transcripts")
    if transcripts.is_dir():
        names = {p.name.split("__")[1] for p in transcripts.glob("prosody__*.xml")}
        assert ProsodyPolicy().id in names


def test_lua_literals() -> None:
    assert lua(True) == "true"
    assert lua(5) == "5"
    assert lua('a "b"\\') == '"a \\"b\\"\\\\"'
    assert lua(["x", 1]) == '{ "x"; 1 }'
    assert lua({"hoststxt": "/etc/hosts", "resolvconf": True}) == '{ hoststxt = "/etc/hosts"; resolvconf = true }'
    with pytest.raises(ValueError):
        lua({"not an identifier": 1})


LOG = """\
Nov 22 05:17:55 s2sout55cf7a271820	info	Stream encrypted (TLSv1.3 with TLS_AES_128_GCM_SHA256)
Nov 22 05:17:55 prosody.test:saslauth	debug	SASL EXTERNAL with peer.test succeeded
Nov 22 05:17:55 s2sout55cf7a271820	debug	connection prosody.test->peer.test is now authenticated for peer.test
Nov 22 05:17:56 s2sin55cf7a2a0000	debug	Incoming s2s connection
Nov 22 05:17:56 s2sin55cf7a2a0000	debug	asking gw.test if key abc belongs to them
Nov 22 05:17:56 s2sin55cf7a2a0000	debug	Sending[s2sin_unauthed]: <db:result
 type='valid'>
Nov 22 05:17:56 s2sin55cf7a2a0000	debug	connection gw.test->prosody.test is now authenticated for gw.test
Nov 22 05:17:57 s2sin55cf7a2b0000	info	Stream encrypted (TLSv1.2 with ECDHE-ECDSA-AES256-GCM-SHA384)
Nov 22 05:17:57 prosody.test:saslauth	info	Accepting SASL EXTERNAL identity from gw.test
Nov 22 05:17:57 s2sin55cf7a2b0000	debug	connection gw.test->prosody.test is now authenticated for gw.test
"""


def test_s2s_events_from_a_log() -> None:
    out, tcp_in, ext_in = s2s_events(LOG)
    assert (out.direction, out.peer, out.local, out.mechanism, out.tls, out.tls_protocol) == (
        "out",
        "peer.test",
        "prosody.test",
        "EXTERNAL",
        True,
        "TLSv1.3",
    )
    assert out.method is Method.SASL_TLS
    assert (tcp_in.direction, tcp_in.peer, tcp_in.mechanism, tcp_in.tls) == ("in", "gw.test", "dialback", False)
    assert tcp_in.method is Method.TCP_DIALBACK
    assert (ext_in.direction, ext_in.mechanism, ext_in.tls_protocol) == ("in", "EXTERNAL", "TLSv1.2")


# -- /etc/hosts ----------------------------------------------------------------------------------------------


def test_hosts_file_adds_and_removes_exactly_its_lines(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    original = "127.0.0.1 localhost\n# a comment\n127.0.0.5 keep.test\n"
    hosts.write_text(original)
    stale = f"127.0.0.9 stale.test {HOSTS_MARKER} pid=999999999 id=0\n"  # left by a dead test run
    hosts.write_text(original + stale)
    with HostsFile(hosts) as h:
        h.add({"gw.test": "127.0.0.2"})
        h.add({"prosody.test": "127.0.0.3", "gw.test": "127.0.0.2"})
        lines = hosts.read_text().splitlines()
        assert lines[:3] == original.splitlines()
        assert [line.split()[:2] for line in lines[3:]] == [["127.0.0.2", "gw.test"], ["127.0.0.3", "prosody.test"]]
        hosts.write_text(hosts.read_text() + "127.0.0.6 added.meanwhile\n")
    assert hosts.read_text() == original + "127.0.0.6 added.meanwhile\n"


def test_hosts_file_removes_its_lines_on_failure(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    with pytest.raises(RuntimeError), HostsFile(hosts) as h:
        h.add({"gw.test": "127.0.0.2"})
        raise RuntimeError("boom")
    assert hosts.read_text() == "127.0.0.1 localhost\n"


@pytest.mark.prosody
def test_session_hosts_resolve(interop_hosts: HostsFile) -> None:
    assert socket.gethostbyname("gw.test") == "127.0.0.2"
    assert socket.gethostbyname("prosody.test") == "127.0.0.3"


def test_loopback_addresses_are_bindable() -> None:
    for last in range(2, 10):
        with socket.socket() as s:
            s.bind((f"127.0.0.{last}", 0))


# -- a live Prosody --------------------------------------------------------------------------------------------


@pytest.mark.prosody
def test_config_and_process(prosody: ProsodyServer) -> None:
    config = prosody.config_path.read_text()
    assert 'unbound = { hoststxt = "/etc/hosts"; resolvconf = true }' in config
    assert 's2s_interfaces = { "127.0.0.3" }' in config
    assert "s2s_require_encryption = false" in config
    assert 'VirtualHost "prosody.test"' in config
    assert prosody.running
    assert prosody.start_seconds is not None and prosody.start_seconds < 5
    assert os.stat(prosody.data_path).st_uid != 0  # owned by the prosody user
    assert "Activated service 's2s' on [127.0.0.3]:5269" in prosody.full_log_text()


def _s2s_features(ip: str) -> str:
    """Open an S2S stream as gw.test and return everything up to the end of the first <stream:features>."""
    header = (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
        "xmlns:stream='http://etherx.jabber.org/streams' from='gw.test' to='prosody.test' version='1.0'>"
    )
    with socket.create_connection((ip, 5269), timeout=5) as s:
        s.sendall(header.encode())
        data = b""
        while b"</stream:features>" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


@pytest.mark.prosody
@pytest.mark.parametrize(
    "prosody_policy",
    [
        ProsodyPolicy("required", "required", False),
        ProsodyPolicy("optional", "optional", True),
        ProsodyPolicy("not_supported", "not_supported", True),
    ],
    ids=str,
)
def test_policy_is_on_the_wire(prosody: ProsodyServer, prosody_policy: ProsodyPolicy) -> None:
    assert prosody.policy == prosody_policy
    features = _s2s_features(prosody.ip)
    starttls = re.search(r"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'\s*(/>|>.*?</starttls>)", features)
    if prosody_policy.tls == "not_supported":
        assert starttls is None, features
    else:
        assert starttls is not None, features
        assert ("<required" in starttls.group(0)) is (prosody_policy.tls == "required"), features
    assert ("urn:xmpp:features:dialback" in features) is prosody_policy.dialback, features
    assert ("xmlns:db=" in features) is prosody_policy.dialback, features
    assert "<mechanisms" not in features  # EXTERNAL is never offered before TLS


def test_all_policies_are_the_18_triples(matrix_file: dict[str, Any]) -> None:
    from .prosody import ALL_POLICIES

    rows = {(r["tls"], r["sasl"], r["dialback"]) for r in matrix_file["rows"]}
    assert {(p.tls, p.sasl, p.dialback) for p in ALL_POLICIES} == rows
    assert len(ALL_POLICIES) == 18


@pytest.mark.prosody
def test_two_clients_exchange_a_message(prosody: ProsodyServer) -> None:
    from .prosody import Client

    alice = prosody.register("alice", "alice-pw")
    bob = prosody.register("bob", "bob-pw")

    async def main() -> None:
        async with Client(prosody, "alice", "alice-pw") as a, Client(prosody, "bob", "bob-pw") as b:
            a.send(bob, "hello over c2s")
            message = await b.receive()
            assert str(message["body"]) == "hello over c2s"
            assert message["from"].bare == alice

    asyncio.run(main())
    log = prosody.log_text()
    assert "Stream encrypted (TLSv" in log  # c2s over STARTTLS
    assert prosody.s2s_events() == []  # nothing left the server


@pytest.mark.prosody
def test_wrong_password_is_refused(prosody: ProsodyServer) -> None:
    from .prosody import Client, ProsodyError

    prosody.register("carol", "right")

    async def main() -> None:
        with pytest.raises(ProsodyError, match="failed_auth"):
            async with Client(prosody, "carol", "wrong", timeout=5):
                pass

    asyncio.run(main())


def _federate(
    pool: ProsodyPool, policy: ProsodyPolicy, peer_cert: dict[str, Any] | None = None
) -> tuple[ProsodyServer, ProsodyServer]:
    """prosody.test and peer.test (127.0.0.4) under ``policy``; alice@prosody.test messages bob@peer.test and
    bob answers, so each side opens its own outgoing stream."""
    from .prosody import Client

    a = pool.get(policy)
    b = pool.get(policy, domain="peer.test", ip="127.0.0.4", cert_options=peer_cert)
    a.reset()
    b.reset()
    a.register("alice", "pw")
    b.register("bob", "pw")

    async def main() -> None:
        async with Client(a, "alice", "pw") as alice, Client(b, "bob", "pw") as bob:
            alice.send("bob@peer.test", "over s2s")
            assert str((await bob.receive())["body"]) == "over s2s"
            bob.send("alice@prosody.test", "and back")
            assert str((await alice.receive())["body"]) == "and back"

    asyncio.run(main())
    return a, b


@pytest.mark.prosody
def test_s2s_external_is_read_from_both_logs(prosody_pool: ProsodyPool) -> None:
    a, b = _federate(prosody_pool, ProsodyPolicy("required", "required", False))
    for server, peer in ((a, "peer.test"), (b, "prosody.test")):
        events = sorted(server.s2s_events(), key=lambda e: e.direction)
        assert [(e.direction, e.peer, e.local, e.mechanism, e.tls, e.method) for e in events] == [
            ("in", peer, server.domain, "EXTERNAL", True, Method.SASL_TLS),
            ("out", peer, server.domain, "EXTERNAL", True, Method.SASL_TLS),
        ]
        assert all(e.tls_protocol and e.tls_protocol.startswith("TLSv1.") for e in events)
    assert "SASL EXTERNAL with peer.test succeeded" in a.log_text()
    assert "Accepting SASL EXTERNAL identity from prosody.test" in b.log_text()


@pytest.mark.prosody
def test_s2s_dialback_without_tls_is_read_from_both_logs(prosody_pool: ProsodyPool) -> None:
    a, b = _federate(prosody_pool, ProsodyPolicy("not_supported", "not_supported", True))
    # Dialback's connect-back is a full stream on which the authoritative side authenticates too, so each
    # side sees one stream in each direction, all dialback over plain TCP.
    for server, peer in ((a, "peer.test"), (b, "prosody.test")):
        events = server.s2s_events()
        assert sorted((e.direction, e.peer, e.mechanism, e.tls, e.method) for e in events) == [
            ("in", peer, "dialback", False, Method.TCP_DIALBACK),
            ("out", peer, "dialback", False, Method.TCP_DIALBACK),
        ]
    assert "Initiating dialback" in a.log_text()
    assert "asking prosody.test if key" in b.log_text()
    assert "Stream encrypted" not in "\n".join(line for line in b.log_text().splitlines() if " s2s" in line)


@pytest.mark.prosody
def test_s2s_dialback_over_tls_when_the_certificate_does_not_validate(prosody_pool: ProsodyPool) -> None:
    # peer.test's certificate is self-signed: prosody.test offers it no EXTERNAL, so peer.test's streams to
    # prosody.test authenticate with dialback over TLS; prosody.test's own certificate validates, so its
    # outgoing stream uses EXTERNAL.
    a, _ = _federate(prosody_pool, ProsodyPolicy(), peer_cert={"self_signed": True})
    inbound = a.wait_for_s2s("peer.test", "in")
    assert (inbound.mechanism, inbound.tls, inbound.method) == ("dialback", True, Method.TLS_DIALBACK)
    assert a.wait_for_s2s("peer.test", "out").method is Method.SASL_TLS
    assert "certificate chain validation result: invalid" in a.log_text()


@pytest.mark.prosody
def test_s2s_refused_by_policy_is_read_as_a_closed_stream(prosody_pool: ProsodyPool) -> None:
    from .prosody import Client

    # prosody.test requires a validated certificate (TLS and SASL required); peer.test's is self-signed.
    a = prosody_pool.get(ProsodyPolicy("required", "required", True))
    b = prosody_pool.get(ProsodyPolicy(), domain="peer.test", ip="127.0.0.4", cert_options={"self_signed": True})
    a.reset()
    b.reset()
    b.register("bob", "pw")

    async def main() -> None:
        async with Client(b, "bob", "pw") as bob:
            bob.send("alice@prosody.test", "refused")
            error = await asyncio.wait_for(bob.errors.get(), 10)
            assert error["type"] == "error"

    asyncio.run(main())
    assert not [e for e in a.s2s_events() if e.direction == "in"]
    assert any(c.direction == "in" for c in a.s2s_closed()), a.log_text()


@pytest.mark.prosody
def test_reset_closes_s2s_and_restarts_the_log(prosody_pool: ProsodyPool) -> None:
    a, _ = _federate(prosody_pool, ProsodyPolicy())
    assert a.s2s_events() and a.s2s_count() >= 1
    a.reset()
    assert a.s2s_count() == 0
    assert a.s2s_events() == []


@pytest.mark.prosody
def test_start_fails_clearly_when_the_address_is_taken(prosody_pool: ProsodyPool, interop_dir: Path) -> None:
    from .prosody import ProsodyError

    running = prosody_pool.get(ProsodyPolicy())
    clash = ProsodyServer(interop_dir / "clash", prosody_pool.ca, policy=ProsodyPolicy("required", "optional", True))
    with pytest.raises(ProsodyError, match=r"127\.0\.0\.3:5269 is already taken"):
        clash.start()
    assert running.running
