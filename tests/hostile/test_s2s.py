"""Hostile S2S negotiation at the gateway: stanzas before or beyond authentication, forged dialback, SASL
misuse, STARTTLS stripping. Several are also asserted in ``tests/test_s2s_negative.py``; here each runs while
the legitimate partner l.test keeps exchanging messages with g.test (the ``lab`` fixture)."""

from __future__ import annotations

import asyncio

from fedgate import dialback
from fedgate.s2s import Authenticated

from ..net.components import error_condition as stanza_error_condition
from ..net.rawpeer import SASL_NS, STARTTLS, TLS_NS, header
from ..net.rawpeer import error_condition as stream_error_condition
from .lab import (
    DB_FEATURE,
    GW,
    MECHANISMS,
    PEER,
    Lab,
    auth_external,
    authenticated_peer,
    db_result,
    message,
    open_stream,
    refused,
    secure,
)


def _auths(lab: Lab, domain: str) -> list[Authenticated]:
    return lab.authenticated(domain)


def test_stanza_before_authentication_is_not_authorized(lab: Lab) -> None:
    async def scenario() -> None:
        peer = await lab.connect()
        await open_stream(peer)
        peer.send(message(f"x@{PEER}", f"y@{GW}"))
        await refused(peer, "not-authorized")
        await peer.close()

    lab.run(scenario())


def test_stanza_from_a_domain_not_authenticated_on_the_stream_is_invalid_from(lab: Lab) -> None:
    async def scenario() -> None:
        assert lab.comp_g is not None
        peer = await authenticated_peer(lab)
        peer.send(message(f"x@{PEER}", f"y@{GW}", "fine"))
        peer.send(message("x@l.test", f"y@{GW}", "forged"))  # l.test is a partner, but not on this stream
        await refused(peer, "invalid-from")
        got = await lab.comp_g.next_message(5)
        assert str(got["body"]) == "fine"
        await asyncio.sleep(0.1)
        assert lab.comp_g.received.empty()  # the forged one never arrived
        await peer.close()

    lab.run(scenario())


def test_stanza_to_a_domain_we_do_not_serve_is_host_unknown(lab: Lab) -> None:
    async def scenario() -> None:
        peer = await authenticated_peer(lab)
        peer.send(message(f"x@{PEER}", "y@l.test"))  # we are not an open relay to our other partners
        await refused(peer, "host-unknown")
        await peer.close()

    lab.run(scenario())


def test_header_to_a_domain_we_do_not_serve_is_host_unknown(lab: Lab) -> None:
    async def scenario() -> None:
        peer = await lab.connect()
        peer.send(header("l.test", PEER))
        await refused(peer, "host-unknown")
        await peer.close()

    lab.run(scenario())


def test_unsolicited_db_result_valid_is_unsupported_stanza_type(lab: Lab) -> None:
    async def scenario() -> None:
        peer = await lab.connect()
        await open_stream(peer)
        peer.send(db_result("", type_="valid"))
        await refused(peer, "unsupported-stanza-type")
        await peer.close()
        assert not _auths(lab, PEER)

    lab.run(scenario())


def test_db_verify_with_a_wrong_id_or_key_is_invalid(lab: Lab) -> None:
    async def scenario() -> None:
        assert lab.g is not None
        peer = await lab.connect()
        await open_stream(peer)
        good = dialback.dialback_key(lab.g.store.dialback_passphrase(), PEER, GW, "sid-1")
        for stream_id, key, verdict in [("sid-1", good, "valid"), ("sid-2", good, "invalid"),
                                        ("sid-1", "0" * 64, "invalid"), ("sid-1", "", "invalid")]:
            peer.send(f"<db:verify from='{PEER}' to='{GW}' id='{stream_id}'>{key}</db:verify>")
            answer = await peer.next_element()
            assert answer.tag == dialback.VERIFY and answer.get("type") == verdict, (stream_id, key)
            assert (answer.get("from"), answer.get("to"), answer.get("id")) == (GW, PEER, stream_id)
        peer.send(message(f"x@{PEER}", f"y@{GW}"))  # a verification answer authenticates nobody
        await refused(peer, "not-authorized")
        await peer.close()

    lab.run(scenario())


def test_dialback_for_domains_not_allowed(lab: Lab) -> None:
    """db:result for a non-partner (forbidden), for a domain we do not serve (item-not-found), and for a
    partner whose settings rule dialback out on this transport (policy-violation): dialback errors, the stream
    stays open and nobody is authenticated."""
    lab.peer_settings("required/optional/true")  # dialback only over TLS

    async def scenario() -> None:
        peer = await lab.connect()
        await open_stream(peer)
        peer.send(STARTTLS)
        assert (await peer.next_element()).tag == f"{{{TLS_NS}}}proceed"
        await peer.starttls(lab.tls_for(PEER), server_side=False, server_name=GW)
        await open_stream(peer)
        for frm, to, condition in [("stranger.test", GW, "forbidden"), (PEER, "elsewhere.test", "item-not-found")]:
            peer.send(db_result("0123", frm=frm, to=to))
            answer = await peer.next_element()
            assert answer.tag == dialback.RESULT and answer.get("type") == "error"
            assert dialback.error_condition(answer) == condition
            assert (answer.get("from"), answer.get("to")) == (to, frm)
        await peer.close()
        # Over plain TCP, where p.test's settings forbid dialback: not offered, and a stream error if tried.
        peer = await lab.connect()
        features = await open_stream(peer)
        assert features.find(DB_FEATURE) is None
        peer.send(db_result("0123"))
        await refused(peer, "policy-violation")
        await peer.close()
        assert not _auths(lab, PEER) and not _auths(lab, "stranger.test")

    lab.run(scenario())


def test_sasl_external_before_tls_is_encryption_required(lab: Lab) -> None:
    async def scenario() -> None:
        peer = await lab.connect()
        features = await open_stream(peer)
        assert features.find(MECHANISMS) is None
        peer.send(auth_external())
        failure = await peer.next_element()
        assert [c.tag for c in failure] == [f"{{{SASL_NS}}}encryption-required"]
        peer.send(message(f"x@{PEER}", f"y@{GW}"))
        await refused(peer, "not-authorized")
        await peer.close()

    lab.run(scenario())


def test_sasl_external_with_an_authzid_other_than_the_stream_from(lab: Lab) -> None:
    async def scenario() -> None:
        peer = await lab.connect()
        features = await secure(lab, peer)
        assert features.find(MECHANISMS) is not None
        for authzid in ("l.test", "g.test", "p.test\x00l.test"):
            peer.send(auth_external(authzid))
            failure = await peer.next_element()
            assert [c.tag for c in failure] == [f"{{{SASL_NS}}}invalid-authzid"], authzid
        peer.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>!!notbase64</auth>")
        failure = await peer.next_element()
        assert [c.tag for c in failure] == [f"{{{SASL_NS}}}incorrect-encoding"]
        assert not _auths(lab, PEER) and not _auths(lab, "l.test")
        await peer.close()

    lab.run(scenario())


def test_starttls_stripped_while_our_outbound_requires_tls(lab: Lab) -> None:
    """p.test's server offers no STARTTLS (as a stripping man in the middle would): the gateway gives up with
    policy-violation before sending anything, and the stanza comes back remote-server-not-found."""
    lab.peer_settings("required/optional/true")

    async def scenario() -> None:
        assert lab.comp_g is not None and lab.partner is not None
        lab.comp_g.say(f"bob@{GW}", f"eve@{PEER}", "top secret body")
        err = await lab.comp_g.next_error(10)
        assert stanza_error_condition(err) == "remote-server-not-found"
        assert str(err["from"]) == f"eve@{PEER}"
        assert b"top secret body" not in lab.partner.wire
        assert [e.tag for e in lab.partner.other][-1:] == ["{http://etherx.jabber.org/streams}error"]
        assert stream_error_condition(lab.partner.other[-1]) == "policy-violation"
        assert not lab.partner.verify_requests

    lab.run(scenario())


def test_starttls_while_a_dialback_verification_is_pending_is_refused(lab: Lab) -> None:
    """Found by fuzz/fuzz_s2s_inbound.py: a db:result checked for TCP dialback, then STARTTLS before the
    answer, made the verification authenticate TLS dialback, which the partner's settings may rule out."""
    lab.peer_settings("optional/optional/true")

    async def scenario() -> None:
        peer = await lab.connect()
        await open_stream(peer)
        peer.send(db_result("0123456789"))
        peer.send(STARTTLS)
        out = await peer.read_until_closed()
        # Both arrive in one read: the verification is still pending when STARTTLS is parsed.
        assert [e.tag for e in out.elements] == [f"{{{TLS_NS}}}failure"]
        assert out.closed and out.eof
        assert all(a.method.value != "tls_dialback" for a in _auths(lab, PEER))
        await peer.close()

    lab.run(scenario())
