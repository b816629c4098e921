"""What the S2S engine refuses, seen on the wire: a real gateway on loopback, and a raw peer that writes exact
bytes (and runs STARTTLS with a chosen certificate from the test CA) or plays a fake partner server. Each test
asserts the gateway's exact reaction: the SASL or dialback answer, the stream error condition, the close."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from fedgate import dialback
from fedgate.certs import TestCA
from fedgate.policy import Method, Settings
from fedgate.resolver import ResolutionError
from fedgate.s2s import Authenticated, NegotiationFailed
from fedgate.tls import Credentials, TlsContext, TrustAnchors, client_context, server_context
from fedgate.xmlstream import STREAM_NS

from .net.components import EchoComponent
from .net.components import error_condition as stanza_error_condition
from .net.gateways import Node, make_node, settle
from .net.rawpeer import (
    SASL_NS,
    STARTTLS,
    TLS_NS,
    FakePartner,
    Outcome,
    RawPeer,
    error_condition,
    header,
    listen,
)

GW, GW_IP = "g.test", "127.0.0.81"
PEER, PEER_IP = "p.test", "127.0.0.82"
ROUTES = {PEER: f"{PEER_IP}:5269"}
FEATURES = f"{{{STREAM_NS}}}features"
DB_FEATURE = f"{{{dialback.DIALBACK_FEATURE_NS}}}dialback"
MECHANISMS = f"{{{SASL_NS}}}mechanisms"


@dataclass
class Env:
    node: Node
    ca: TestCA
    tmp: Path

    def tls_for(self, domain: str, *, server: bool = False) -> TlsContext:
        """A context with a certificate the test CA issued for ``domain`` (client side unless ``server``)."""
        files = self.ca.issue(domain, self.tmp / "peer", basename=f"{domain}-{'s' if server else 'c'}")
        creds = Credentials(files.chain, files.key)
        trust = TrustAnchors(cafiles=(self.ca.cert_path,), use_system=False)
        return server_context({PEER: creds}, trust) if server else client_context(creds, trust)

    async def connect(self) -> RawPeer:
        return await RawPeer.connect(GW_IP, source=PEER_IP)

    def authenticated(self, direction: str = "in") -> list[Authenticated]:
        return [e for d, e in self.node.events if d == direction and isinstance(e, Authenticated)]


Scenario = Callable[[Env], Awaitable[None]]


def run(tmp_path: Path, settings: str, scenario: Scenario, **gateway: object) -> None:
    """Start gateway g.test (127.0.0.81) with partner p.test under ``settings``, run ``scenario``, stop."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        node = await make_node(tmp_path, ca, GW, GW_IP, ROUTES, component_port=5347)
        try:
            node.set_partner(PEER, Settings.parse_triple(settings), partner_type="federated")
            if gateway:
                node.store.update_gateway(**gateway)
                node.gateway.reload()
            await scenario(Env(node, ca, tmp_path))
        finally:
            await settle([node.gateway])
            await node.gateway.stop()

    asyncio.run(main())


# -- steps -------------------------------------------------------------------------------------------------------
async def open_stream(peer: RawPeer, to: str = GW, from_: str = PEER) -> Element:
    """Send a stream header; return the features the gateway offers."""
    peer.send(header(to, from_))
    attrs = await peer.expect_header()
    assert attrs.get("from") == to and attrs.get("id")
    features = await peer.next_element()
    assert features.tag == FEATURES
    return features


async def secure(env: Env, peer: RawPeer, cert: str = PEER) -> Element:
    """STARTTLS with a client certificate for ``cert``; return the features of the new stream."""
    features = await open_stream(peer)
    assert features.find(f"{{{TLS_NS}}}starttls") is not None
    peer.send(STARTTLS)
    assert (await peer.next_element()).tag == f"{{{TLS_NS}}}proceed"
    await peer.starttls(env.tls_for(cert), server_side=False, server_name=GW)
    assert env.node.gateway.config.domains  # (the gateway's own certificate is checked by fedgate.tls tests)
    return await open_stream(peer)


def auth_external(authzid: str | None = PEER) -> bytes:
    payload = base64.b64encode(authzid.encode()).decode() if authzid else "="
    return f"<auth xmlns='{SASL_NS}' mechanism='EXTERNAL'>{payload}</auth>".encode()


async def sasl(env: Env, peer: RawPeer) -> None:
    """Authenticate p.test with SASL EXTERNAL over TLS (a valid certificate) and restart the stream."""
    features = await secure(env, peer)
    assert features.find(MECHANISMS) is not None
    peer.send(auth_external())
    assert (await peer.next_element()).tag == f"{{{SASL_NS}}}success"
    peer.restart()
    assert [f.tag for f in await open_stream(peer)] == ["{urn:xmpp:sm:3}sm"]  # only Stream Management left
    ids = [h["id"] for h in peer.headers]
    assert len(ids) == 3 and len(set(ids)) == 3, ids  # a new stream id after TLS and after SASL (RFC 6120)


def message(frm: str, to: str, body: str = "hi") -> bytes:
    return f"<message from='{frm}' to='{to}' type='chat' id='m1'><body>{body}</body></message>".encode()


def db_result(key: str, frm: str = PEER, to: str = GW, type_: str | None = None) -> bytes:
    t = f" type='{type_}'" if type_ else ""
    return f"<db:result from='{frm}' to='{to}'{t}>{key}</db:result>".encode()


async def refused(peer: RawPeer, condition: str) -> Outcome:
    """The gateway ends the stream with ``condition`` and closes: a stream error, then
    ``</stream:stream>``, then the TCP connection."""
    out = await peer.read_until_closed()
    assert out.condition == condition, (out.condition, bytes(peer.received))
    assert out.elements and out.elements[-1].tag == f"{{{STREAM_NS}}}error"
    assert out.closed and out.eof and not out.reset
    return out


@contextlib.asynccontextmanager
async def partner_and_component(handler: Callable[[RawPeer], Awaitable[None]]) -> AsyncIterator[EchoComponent]:
    """A fake p.test server run by ``handler``, and g.test's component to send through the gateway."""
    server = await listen(PEER_IP, handler)
    comp = EchoComponent(GW, "secret", GW_IP, 5347)
    await comp.start()
    try:
        yield comp
    finally:
        await comp.stop()
        server.close()


# -- 1. outbound: TLS required, the partner offers no STARTTLS ----------------------------------------------------
def test_outbound_never_sends_a_stanza_in_plain_text_when_tls_is_required(tmp_path: Path) -> None:
    async def scenario(env: Env) -> None:
        partner = FakePartner(PEER)  # no TLS context: its features offer dialback only
        async with partner_and_component(partner) as comp:
            comp.say(f"alice@{GW}", f"bob@{PEER}", "top secret body")
            err = await comp.next_error()
            assert stanza_error_condition(err) == "remote-server-not-found"
            assert str(err["from"]) == f"bob@{PEER}"
            await asyncio.sleep(0.05)
            assert b"top secret body" not in partner.wire
            assert partner.peers, "the gateway never connected"
            out = partner.peers[0]
            # It opened a stream, read the features, and gave up with a stream error: no db:result, no stanza.
            assert [(el.tag, error_condition(el)) for el in partner.other] == [
                (f"{{{STREAM_NS}}}error", "policy-violation")
            ]
            assert not partner.verify_requests and out.closed
            fails = [e for d, e in env.node.events if d == "out" and isinstance(e, NegotiationFailed)]
            assert [f.detail for f in fails] == ["starttls_not_offered"]

    run(tmp_path, "required/optional/true", scenario)


# -- 2. inbound: a certificate for another name ------------------------------------------------------------------
def test_certificate_for_another_name_gets_no_sasl_but_dialback_over_tls(tmp_path: Path) -> None:
    async def scenario(env: Env) -> None:
        partner = FakePartner(PEER, tls=env.tls_for(PEER, server=True), verdict=lambda el: "valid")
        server = await listen(PEER_IP, partner)
        peer = await env.connect()
        try:
            features = await secure(env, peer, cert="other.test")
            assert features.find(MECHANISMS) is None  # no SASL EXTERNAL offered...
            assert features.find(DB_FEATURE) is not None  # ...but dialback is
            peer.send(auth_external())
            failure = await peer.next_element()
            assert failure.tag == f"{{{SASL_NS}}}failure"
            assert [c.tag for c in failure] == [f"{{{SASL_NS}}}invalid-mechanism"]
            # Dialback over TLS: the gateway connects back to p.test (the fake partner, over TLS) to check the key.
            peer.send(db_result("0123456789abcdef"))
            answer = await peer.next_element()
            assert answer.tag == dialback.RESULT and answer.get("type") == "valid"
            assert answer.get("from") == GW and answer.get("to") == PEER
            assert [(e.method, e.remote_domain) for e in env.authenticated()] == [(Method.TLS_DIALBACK, PEER)]
            (verify,) = partner.verify_requests
            assert verify.text == "0123456789abcdef" and verify.get("id") == peer.headers[-1]["id"]
            assert partner.peers[0].tls is not None  # the connect-back itself ran over TLS
        finally:
            await peer.close()
            server.close()

    run(tmp_path, "required/optional/true", scenario)


# -- 3. inbound dialback with a wrong key ----------------------------------------------------------------------
def test_dialback_with_a_wrong_key_is_invalid_and_the_stream_closed(tmp_path: Path) -> None:
    async def scenario(env: Env) -> None:
        partner = FakePartner(PEER, verdict=lambda el: "invalid")
        server = await listen(PEER_IP, partner)
        peer = await env.connect()
        try:
            await open_stream(peer)
            peer.send(db_result("bad-key"))
            out = await refused(peer, "not-authorized")
            answer = out.elements[0]
            assert answer.tag == dialback.RESULT and answer.get("type") == "invalid"
            assert (answer.get("from"), answer.get("to")) == (GW, PEER)
            (verify,) = partner.verify_requests
            assert verify.text == "bad-key" and verify.get("id") == peer.headers[0]["id"]
            assert (verify.get("from"), verify.get("to")) == (GW, PEER)
            assert not env.authenticated()
        finally:
            await peer.close()
            server.close()

    run(tmp_path, "not_supported/not_supported/true", scenario)


# -- 4. refusals -----------------------------------------------------------------------------------------------
CASES: dict[str, tuple[str, Scenario]] = {}


def case(settings: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        CASES[fn.__name__] = (settings, fn)
        return fn

    return register


@case("required/optional/true")
async def stanza_from_an_unauthenticated_domain_is_invalid_from(env: Env) -> None:
    peer = await env.connect()
    await sasl(env, peer)
    peer.send(message(f"x@{PEER}", f"y@{GW}"))  # p.test is fine...
    peer.send(message("x@other.test", f"y@{GW}"))  # ...other.test never authenticated here
    await refused(peer, "invalid-from")


@case("optional/optional/true")
async def stanza_before_authentication_is_not_authorized(env: Env) -> None:
    peer = await env.connect()
    await open_stream(peer)
    peer.send(message(f"x@{PEER}", f"y@{GW}"))
    await refused(peer, "not-authorized")


@case("required/optional/true")
async def stanza_to_a_domain_we_do_not_serve_is_host_unknown(env: Env) -> None:
    peer = await env.connect()
    await sasl(env, peer)
    peer.send(message(f"x@{PEER}", "y@elsewhere.test"))
    await refused(peer, "host-unknown")


@case("optional/optional/true")
async def header_to_an_unknown_domain_is_host_unknown(env: Env) -> None:
    peer = await env.connect()
    peer.send(header("elsewhere.test", PEER))
    await refused(peer, "host-unknown")
    assert peer.headers  # the error travels inside a stream of ours


@case("optional/optional/true")
async def header_from_a_non_partner_is_policy_violation(env: Env) -> None:
    peer = await env.connect()
    peer.send(header(GW, "stranger.test"))
    await refused(peer, "policy-violation")


@case("optional/optional/true")
async def wrong_default_namespace_is_invalid_namespace(env: Env) -> None:
    peer = await env.connect()
    peer.send(header(GW, PEER, ns="jabber:client"))
    await refused(peer, "invalid-namespace")


@case("optional/optional/true")
async def missing_version_is_unsupported_version(env: Env) -> None:
    peer = await env.connect()
    peer.send(header(GW, PEER, version=None))
    await refused(peer, "unsupported-version")


@case("required/optional/true")
async def dialback_before_starttls_when_tls_is_required_is_policy_violation(env: Env) -> None:
    peer = await env.connect()
    features = await open_stream(peer)
    starttls = features.find(f"{{{TLS_NS}}}starttls")
    assert starttls is not None and starttls.find(f"{{{TLS_NS}}}required") is not None
    assert features.find(DB_FEATURE) is None  # dialback is not offered on plain TCP
    peer.send(db_result("0123"))
    await refused(peer, "policy-violation")


@case("required/optional/true")
async def stanza_before_starttls_when_tls_is_required_is_policy_violation(env: Env) -> None:
    peer = await env.connect()
    await open_stream(peer)
    peer.send(message(f"x@{PEER}", f"y@{GW}", "plain"))
    await refused(peer, "policy-violation")


@case("optional/optional/true")
async def sasl_external_before_tls_is_encryption_required(env: Env) -> None:
    peer = await env.connect()
    features = await open_stream(peer)
    assert features.find(MECHANISMS) is None
    peer.send(auth_external())
    failure = await peer.next_element()
    assert failure.tag == f"{{{SASL_NS}}}failure"
    assert [c.tag for c in failure] == [f"{{{SASL_NS}}}encryption-required"]
    peer.send(b"</stream:stream>")
    out = await peer.read_until_closed()
    assert out.condition is None and out.closed  # a SASL failure is not a stream error
    assert not env.authenticated()


@case("required/optional/true")
async def sasl_external_with_another_authzid_is_invalid_authzid(env: Env) -> None:
    peer = await env.connect()
    features = await secure(env, peer)
    assert features.find(MECHANISMS) is not None
    peer.send(auth_external("q.test"))
    failure = await peer.next_element()
    assert [c.tag for c in failure] == [f"{{{SASL_NS}}}invalid-authzid"]
    # The stream stays open and the right authzid still works.
    peer.send(auth_external(PEER))
    assert (await peer.next_element()).tag == f"{{{SASL_NS}}}success"
    assert [e.method for e in env.authenticated()] == [Method.SASL_TLS]


@case("optional/optional/true")
async def db_verify_with_a_wrong_id_or_key_is_invalid(env: Env) -> None:
    peer = await env.connect()
    await open_stream(peer)
    secret = env.node.store.dialback_passphrase()
    good = dialback.dialback_key(secret, PEER, GW, "sid-1")

    async def verify(stream_id: str, key: str) -> str | None:
        peer.send(f"<db:verify from='{PEER}' to='{GW}' id='{stream_id}'>{key}</db:verify>")
        answer = await peer.next_element()
        assert answer.tag == dialback.VERIFY
        assert (answer.get("from"), answer.get("to"), answer.get("id")) == (GW, PEER, stream_id)
        return answer.get("type")

    assert await verify("sid-1", good) == "valid"
    assert await verify("sid-2", good) == "invalid"  # the key of another stream
    assert await verify("sid-1", "0" * 64) == "invalid"
    assert await verify("sid-1", good[:-1]) == "invalid"
    assert not env.authenticated()  # answering a verification authenticates nobody


@case("optional/optional/true")
async def unsolicited_db_result_valid_is_a_stream_error(env: Env) -> None:
    peer = await env.connect()
    await open_stream(peer)
    peer.send(db_result("", type_="valid"))
    await refused(peer, "unsupported-stanza-type")
    assert not env.authenticated()


@case("required/required/true")
async def dialback_where_the_settings_rule_it_out_on_this_transport_is_an_error(env: Env) -> None:
    # TLS and SASL required: dialback is inert, not offered even over TLS, and refused if tried.
    peer = await env.connect()
    features = await secure(env, peer)
    assert features.find(DB_FEATURE) is None
    peer.send(db_result("0123"))
    answer = await peer.next_element()
    assert answer.tag == dialback.RESULT and answer.get("type") == "error"
    assert dialback.error_condition(answer) == "policy-violation"
    assert not env.authenticated()


@case("optional/optional/false")
async def dialback_when_dialback_is_off_is_a_stream_error(env: Env) -> None:
    peer = await env.connect()
    features = await open_stream(peer)
    assert features.find(DB_FEATURE) is None
    peer.send(db_result("0123"))
    await refused(peer, "unsupported-stanza-type")


@case("optional/optional/true")
async def an_oversized_stanza_is_policy_violation(env: Env) -> None:
    peer = await env.connect()
    await open_stream(peer)
    peer.send(message(f"x@{PEER}", f"y@{GW}", "x" * 5000))
    await refused(peer, "policy-violation")


@case("optional/optional/true")
async def an_oversized_stanza_in_small_pieces_is_policy_violation(env: Env) -> None:
    peer = await env.connect()
    await open_stream(peer)
    peer.send(f"<message from='x@{PEER}' to='y@{GW}'><body>")
    sent = 0
    while not await peer.poll(0.01):  # never completes; the gateway must not buffer it without limit
        peer.send("x" * 200)
        sent += 200
        assert sent < 4000
    assert sent > 1500
    await refused(peer, "policy-violation")


@pytest.mark.parametrize("name", list(CASES))
def test_refusal(tmp_path: Path, name: str) -> None:
    settings, scenario = CASES[name]
    run(tmp_path, settings, scenario, max_stanza_size=2000)


# -- 5. establishment time-out -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sends", [b"", header(GW, PEER)], ids=["silent", "header-only"])
def test_a_silent_peer_is_closed_with_connection_timeout(tmp_path: Path, sends: bytes) -> None:
    async def scenario(env: Env) -> None:
        peer = await env.connect()
        started = time.monotonic()
        peer.send(sends)
        out = await refused(peer, "connection-timeout")
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 2.0, elapsed
        assert out.closed
        assert peer.headers  # even a silent peer gets a stream header before the error

    run(tmp_path, "optional/optional/true", scenario, stream_establishment_timeout=1)


# -- the stream error must reach a peer that is still writing ----------------------------------------------------
def test_the_stream_error_reaches_a_peer_that_keeps_writing(tmp_path: Path) -> None:
    async def scenario(env: Env) -> None:
        peer = await env.connect()
        await open_stream(peer)
        peer.send(f"<message from='x@{PEER}' to='y@{GW}'><body>")
        for _ in range(30):
            peer.send("x" * 200)
            await asyncio.sleep(0)
        await refused(peer, "policy-violation")

    run(tmp_path, "optional/optional/true", scenario, max_stanza_size=2000)


# -- 6. XEP-0220 2.4: dialback errors ------------------------------------------------------------------------------
def test_a_dialback_error_from_the_receiving_server_bounces_timeout_and_closes_politely(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """p.test answers our db:result with a dialback error: no stream error from us (the error is not fatal to
    the stream), </stream:stream>, the queued stanza back remote-server-timeout, and the failure logged with
    the peer's condition."""
    seen: list[Outcome] = []

    async def receiving(peer: RawPeer) -> None:
        attrs = await peer.expect_header()
        peer.send(header(attrs.get("from"), PEER, stream_id="rs-1"))
        peer.send(b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
                  b"</stream:features>")
        request = await peer.next_element()
        assert request.tag == dialback.RESULT
        peer.send(f"<db:result from='{PEER}' to='{GW}' type='error'><error type='cancel'>"
                  "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>")
        seen.append(await peer.read_until_closed())

    async def scenario(env: Env) -> None:
        async with partner_and_component(receiving) as comp:
            comp.say(f"alice@{GW}", f"bob@{PEER}", "hello")
            err = await comp.next_error()
            assert stanza_error_condition(err) == "remote-server-timeout"
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.02)
            (out,) = seen
            assert out.closed and out.condition is None and not out.elements, out
            fails = [e for d, e in env.node.events if d == "out" and isinstance(e, NegotiationFailed)]
            assert [(f.detail, f.peer_error) for f in fails] == [("dialback_error_item-not-found", "item-not-found")]
            assert not env.authenticated("out")

    with caplog.at_level("WARNING", logger="fedgate"):
        run(tmp_path, "not_supported/not_supported/true", scenario)
    lines = [r.getMessage() for r in caplog.records if PEER in r.getMessage()]
    assert len(lines) == 1 and "the peer returned dialback error item-not-found" in lines[0], lines
    assert "not offered" not in lines[0]


async def _dialback_answer(env: Env) -> Element:
    """p.test asks for dialback; the gateway's db:result answer after its connect-back."""
    peer = await env.connect()
    try:
        await open_stream(peer)
        peer.send(db_result("0123"))
        answer = await peer.next_element(10)
        assert answer.tag == dialback.RESULT and (answer.get("from"), answer.get("to")) == (GW, PEER)
        assert not env.authenticated()
        return answer
    finally:
        await peer.close()


def test_an_error_from_the_authoritative_server_is_remote_server_not_found(tmp_path: Path) -> None:
    """XEP-0220 2.4: an error in Step 3 is answered with a <remote-server-not-found/> dialback error."""

    async def scenario(env: Env) -> None:
        partner = FakePartner(PEER, verdict=lambda el: "error")
        server = await listen(PEER_IP, partner)
        try:
            answer = await _dialback_answer(env)
            assert answer.get("type") == "error" and dialback.error_condition(answer) == "remote-server-not-found"
            assert partner.verify_requests
        finally:
            server.close()

    run(tmp_path, "not_supported/not_supported/true", scenario)


def test_an_authoritative_server_that_closes_without_answering_is_remote_server_timeout(tmp_path: Path) -> None:
    async def authoritative(peer: RawPeer) -> None:
        attrs = await peer.expect_header()
        peer.send(header(attrs.get("from"), PEER, stream_id="as-1"))
        peer.send(b"<stream:features/>")
        assert (await peer.next_element()).tag == dialback.VERIFY
        # returns: the connection is closed with </stream:stream> and no answer

    async def scenario(env: Env) -> None:
        server = await listen(PEER_IP, authoritative)
        try:
            answer = await _dialback_answer(env)
            assert answer.get("type") == "error" and dialback.error_condition(answer) == "remote-server-timeout"
        finally:
            server.close()

    run(tmp_path, "not_supported/not_supported/true", scenario)


@pytest.mark.parametrize(("failure", "condition"), [
    (lambda: ResolutionError("remote-server-not-found", "NXDOMAIN"), "remote-server-not-found"),
    (lambda: ConnectionRefusedError("refused"), "remote-connection-failed"),
], ids=["unresolvable", "refused"])
def test_a_connect_back_that_fails_names_why(
    tmp_path: Path, failure: Callable[[], Exception], condition: str
) -> None:
    async def scenario(env: Env) -> None:
        async def fail(_domain: str) -> object:
            raise failure()

        env.node.gateway._open_connection = fail  # type: ignore[assignment,method-assign]
        answer = await _dialback_answer(env)
        assert answer.get("type") == "error" and dialback.error_condition(answer) == condition

    run(tmp_path, "not_supported/not_supported/true", scenario)


def test_a_connect_back_at_the_connection_limit_is_a_dialback_error(tmp_path: Path) -> None:
    """connection_limit 1, taken by p.test's own stream: the verification stream is not opened, and p.test
    gets a resource-constraint dialback error (XEP-0220 2.4), its stream left open."""

    async def scenario(env: Env) -> None:
        answer = await _dialback_answer(env)
        assert answer.get("type") == "error" and dialback.error_condition(answer) == "resource-constraint"
        assert not env.node.gateway._verify_links

    run(tmp_path, "not_supported/not_supported/true", scenario, connection_limit=1)


def test_a_partner_that_hangs_up_during_negotiation_is_logged_as_such(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The failure line says first that the stream ended early (our settings' exclusions are true, but they
    are not why), and the stanza comes back."""

    async def hang_up(peer: RawPeer) -> None:
        attrs = await peer.expect_header()
        peer.send(header(attrs.get("from"), PEER, stream_id="hu-1"))
        # and close at once (listen() sends </stream:stream>)

    async def scenario(env: Env) -> None:
        async with partner_and_component(hang_up) as comp:
            comp.say(f"alice@{GW}", f"bob@{PEER}", "hello")
            assert stanza_error_condition(await comp.next_error()) == "remote-server-not-found"

    with caplog.at_level("WARNING", logger="fedgate"):
        run(tmp_path, "optional/optional/true", scenario)
    lines = [r.getMessage() for r in caplog.records if PEER in r.getMessage()]
    assert len(lines) == 1 and "failed: the stream ended before authentication" in lines[0], lines
