"""TLS-level and resource attacks: certificates that must not authenticate, renegotiation, connection floods,
stanza smuggling, and DNS answers that say "no service". The ``lab`` fixture checks the legitimate partner
l.test before and after each (and the flood tests also during the attack)."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.resolver
import pytest
from OpenSSL import SSL

from fedgate import dialback
from fedgate.resolver import Resolver
from fedgate.tls import TlsContext, TlsError

from ..net.components import error_condition as stanza_error_condition
from ..net.rawpeer import SASL_NS, RawPeer
from ..test_resolver import FakeDns, srv
from .lab import (
    DB_FEATURE,
    GW,
    MECHANISMS,
    PEER,
    ROUTES,
    Lab,
    auth_external,
    authenticated_peer,
    db_result,
    message,
    open_stream,
    refused,
    secure,
)


# -- certificates --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("self-signed", {"self_signed": True}),
        ("another-name", {"domain": "other.test"}),
        ("expired", {"expired": True}),
        ("wrong-key-usage", {"key_usage": "wrong"}),
    ],
)
def test_a_bad_certificate_completes_tls_but_never_authenticates(lab: Lab, name: str, options: dict[str, Any]) -> None:
    """The handshake completes; no SASL EXTERNAL is offered and an attempt fails with invalid-mechanism;
    dialback over TLS (allowed by p.test's settings) still authenticates, through the connect-back."""
    lab.peer_settings("required/optional/true")
    assert lab.partner is not None
    lab.partner.tls = lab.tls_for(PEER, server=True)
    domain = options.pop("domain", PEER)

    async def scenario() -> None:
        peer = await lab.connect()
        try:
            features = await secure(lab, peer, lab.tls_for(domain, **options))
            assert peer.tls is not None and peer.tls.handshake_complete
            assert features.find(MECHANISMS) is None
            assert features.find(DB_FEATURE) is not None
            peer.send(auth_external())
            failure = await peer.next_element()
            assert [c.tag for c in failure] == [f"{{{SASL_NS}}}invalid-mechanism"]
            peer.send(db_result("0123456789abcdef"))
            answer = await peer.next_element()
            assert answer.tag == dialback.RESULT and answer.get("type") == "valid"
            assert [a.method.value for a in lab.authenticated(PEER)] == ["tls_dialback"]
        finally:
            await peer.close()

    lab.run(scenario())


def test_tls_renegotiation_is_refused(lab: Lab) -> None:
    """A TLS 1.2 peer that renegotiates after the handshake: the gateway answers with an alert record and
    closes the connection; the peer's TLS fails, and nothing is authenticated."""

    async def scenario() -> None:
        foreign = SSL.Context(SSL.TLS_METHOD)  # renegotiates: no OP_NO_RENEGOTIATION
        foreign.set_max_proto_version(SSL.TLS1_2_VERSION)
        peer = await lab.connect()
        try:
            await secure(lab, peer, TlsContext(foreign, server_side=False))
            assert peer.tls is not None and peer.tls.version == "TLSv1.2"
            conn = peer.tls._conn
            assert conn.renegotiate()
            with pytest.raises(SSL.WantReadError):
                conn.do_handshake()
            peer.writer.write(peer.tls.data_to_send())
            raw = b""
            async with asyncio.timeout(5):
                while chunk := await peer.reader.read(65536):
                    raw += chunk
            assert raw[:1] == b"\x15", raw[:16]  # a TLS alert record, then the end of the connection
            with pytest.raises(TlsError):
                peer.tls.receive_data(raw)
            assert not lab.authenticated(PEER)
        finally:
            peer.writer.close()

    lab.run(scenario())


# -- floods --------------------------------------------------------------------------------------------------
def test_connection_flood_beyond_connection_limit(lab: Lab) -> None:
    """connection_limit 12, two of them the streams with l.test (and any open verification stream): 10 attackers
    get in (fewer with a verification stream), the others get resource-constraint at once; l.test's streams
    keep working throughout; afterwards there is room again."""
    lab.gateway_settings(connection_limit=12)

    async def scenario() -> None:
        assert lab.g is not None
        # Open already: the two streams with l.test, and any dialback verification stream an earlier test left
        # open (kept 30 s when idle); they count toward the limit too.
        in_use = lab.g.gateway._connection_count()
        assert in_use >= 2
        peers = [await lab.connect() for _ in range(16)]
        try:
            results = await asyncio.gather(*(p.poll(0.5) for p in peers))
            refused_peers = [p for p, got in zip(peers, results, strict=True) if got]
            assert len(refused_peers) == 16 - (12 - in_use)
            for p in refused_peers:
                await refused(p, "resource-constraint")
            await lab.exchange()  # during the flood
            for p in peers:
                await p.close()
            await lab.attackers_gone()
            peer = await lab.connect()
            await open_stream(peer)
            await peer.close()
        finally:
            for p in peers:
                await p.close()

    lab.run(scenario())


def test_connection_flood_beyond_partner_connection_limit(lab: Lab) -> None:
    """partner_connection_limit 3: the 4th and 5th stream from p.test are refused with resource-constraint
    after their header; l.test (another partner) is not affected."""
    lab.gateway_settings(partner_connection_limit=3)

    async def scenario() -> None:
        peers: list[RawPeer] = []
        try:
            for _ in range(3):
                peers.append(await lab.connect())
                await open_stream(peers[-1])
            for _ in range(2):
                extra = await lab.connect()
                peers.append(extra)
                await open_stream(extra)
                await refused(extra, "resource-constraint")
            await lab.exchange()
        finally:
            for p in peers:
                await p.close()

    lab.run(scenario())


# -- smuggling -------------------------------------------------------------------------------------------------
SMUGGLE = "</body></message><message to='bob@g.test' from='mallory@l.test' type='chat'><body>smuggled"
RAW_BODIES = {
    # wire form -> the exact text the component must get
    "escaped": ("&lt;/body&gt;&lt;/message&gt;&lt;message to=&apos;bob@g.test&apos;&gt;&lt;body&gt;x",
                "</body></message><message to='bob@g.test'><body>x"),
    "char-refs": ("&#60;/body&#62;&#x3C;/message&#x3e;&#60;message to='bob@g.test'&#62;x",
                  "</body></message><message to='bob@g.test'>x"),
    "cdata": ("<![CDATA[</body></message><message to='bob@g.test'><body>x]]>",
              "</body></message><message to='bob@g.test'><body>x"),
    "fullwidth": ("\uff1c/body\uff1e\uff1c/message\uff1e\uff1cmessage\uff1e", "\uff1c/body\uff1e\uff1c/message\uff1e"
                  "\uff1cmessage\uff1e"),
    "quotes-and-newlines": ("a\"b'c\r\n\t&amp;lt;", "a\"b'c\n\t&lt;"),
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_smuggling_from_a_raw_partner_stream(lab: Lab, name: str) -> None:
    """Text that another parser could read as a second stanza: the component gets exactly one message with
    exactly the text, and nothing else."""
    wire, text = RAW_BODIES[name]

    async def scenario() -> None:
        assert lab.comp_g is not None
        peer = await authenticated_peer(lab)
        try:
            peer.send(f"<message from='x@{PEER}' to='bob@{GW}' type='chat' id='s1'><body>{wire}</body></message>")
            got = await lab.comp_g.next_message(5)
            assert str(got["body"]) == text
            assert str(got["from"]) == f"x@{PEER}" and str(got["id"]) == "s1"
            await asyncio.sleep(0.2)
            assert lab.comp_g.received.empty()
        finally:
            await peer.close()

    lab.run(scenario())


def test_smuggling_through_the_legitimate_partner(lab: Lab) -> None:
    """A component of l.test writes stanza-looking text (in the body and in the id); it crosses two gateways
    and reaches g.test's component as one message with the same text."""

    async def scenario() -> None:
        assert lab.comp_g is not None and lab.comp_l is not None
        msg = lab.comp_l.make_message(mto=f"bob@{GW}", mfrom=f"alice@{lab.legit.domain if lab.legit else ''}",
                                      mbody=SMUGGLE, mtype="chat")
        msg["id"] = "x'/><message to='bob@g.test' id='y"
        msg.send()
        got = await lab.comp_g.next_message(5)
        assert str(got["body"]) == SMUGGLE and str(got["id"]) == "x'/><message to='bob@g.test' id='y"
        await asyncio.sleep(0.2)
        assert lab.comp_g.received.empty()

    lab.run(scenario())


def test_smuggling_with_an_overlong_utf8_angle_bracket_is_not_well_formed(lab: Lab) -> None:
    """The Zoom 2022 class: bytes one decoder reads as '<' and another skips. Invalid UTF-8 ends the stream;
    nothing of the stanza is delivered."""

    async def scenario() -> None:
        assert lab.comp_g is not None
        peer = await authenticated_peer(lab)
        try:
            peer.send(message(f"x@{PEER}", f"bob@{GW}", "ok"))
            assert str((await lab.comp_g.next_message(5))["body"]) == "ok"
            peer.send(f"<message from='x@{PEER}' to='bob@{GW}'><body>a".encode() + b"\xc0\xbc/body>\xe0\x80\xbc"
                      + b"message to='bob@g.test'><body>smuggled</body></message>")
            await refused(peer, "not-well-formed")
            await asyncio.sleep(0.2)
            assert lab.comp_g.received.empty()
        finally:
            await peer.close()

    lab.run(scenario())


# -- DNS ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer", ["srv-dot", "nxdomain"])
def test_srv_dot_and_nxdomain_bounce_remote_server_not_found(lab: Lab, answer: str) -> None:
    lab.peer_settings("optional/optional/true")
    table: dict[str, Any] = {
        "_xmpp-server._tcp.p.test": [srv("0 0 0 .")] if answer == "srv-dot" else dns.resolver.NXDOMAIN()
    }
    fake = FakeDns(table)
    routes = {d: r for d, r in ROUTES.items() if d != PEER}

    async def scenario() -> None:
        assert lab.g is not None and lab.comp_g is not None
        old = lab.g.gateway.config.resolver
        lab.g.gateway.config.resolver = Resolver(dns_resolver=fake, static_routes=routes, use_srv=True)
        try:
            lab.comp_g.say(f"bob@{GW}", f"eve@{PEER}", "where are you")
            err = await lab.comp_g.next_error(10)
            assert stanza_error_condition(err) == "remote-server-not-found"
            assert str(err["from"]) == f"eve@{PEER}" and str(err["to"]) == f"bob@{GW}"
            assert [q[0] for q in fake.queries] == ["_xmpp-server._tcp.p.test"]
        finally:
            lab.g.gateway.config.resolver = old

    lab.run(scenario())
