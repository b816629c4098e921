"""End to end on loopback: a component behind gateway A sends a message to a component behind gateway B
over S2S, for each of the three methods, and the reply comes back; undeliverable stanzas come back as
errors, never dropped."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from fedgate.certs import TestCA
from fedgate.policy import Method, Settings
from fedgate.s2s import Authenticated

from .net.components import EchoComponent, error_condition
from .net.gateways import Node, make_node, settle

ROUTES = {"a.test": "127.0.0.12:5269", "b.test": "127.0.0.13:5269"}
FORCING = {
    Method.SASL_TLS: "required/required/false",
    Method.TLS_DIALBACK: "required/not_supported/true",
    Method.TCP_DIALBACK: "not_supported/not_supported/true",
}


async def _pair(tmp: Path, ca: TestCA | None = None) -> tuple[Node, Node, EchoComponent, EchoComponent]:
    ca = ca or TestCA.create(tmp / "ca")
    a = await make_node(tmp, ca, "a.test", "127.0.0.12", ROUTES, component_port=5347)
    b = await make_node(tmp, ca, "b.test", "127.0.0.13", ROUTES, component_port=5347)
    ca_comp = EchoComponent("a.test", "secret", "127.0.0.12", 5347)
    cb_comp = EchoComponent("b.test", "secret", "127.0.0.13", 5347)
    await ca_comp.start()
    await cb_comp.start()
    return a, b, ca_comp, cb_comp


async def _stop(nodes: list[Node], components: list[EchoComponent]) -> None:
    for comp in components:
        await comp.stop()
    await settle([n.gateway for n in nodes])
    for node in nodes:
        await node.gateway.stop()


def _methods(node: Node, direction: str) -> set[Method]:
    return {e.method for d, e in node.events if d == direction and isinstance(e, Authenticated)}


@pytest.mark.parametrize("method", list(Method), ids=[m.value for m in Method])
def test_message_and_reply_through_two_gateways(tmp_path: Path, method: Method) -> None:
    async def main() -> None:
        a, b, comp_a, comp_b = await _pair(tmp_path)
        try:
            settings = Settings.parse_triple(FORCING[method])
            a.set_partner("b.test", settings, partner_type="federated")
            b.set_partner("a.test", settings, partner_type="federated")
            started = time.monotonic()
            comp_a.say("alice@a.test/desk", "bob@b.test", f"ping {method.value}")
            got = await comp_b.next_message()
            assert str(got["body"]) == f"ping {method.value}"
            assert str(got["from"]) == "alice@a.test/desk"
            reply = await comp_a.next_message()
            assert str(reply["body"]) == f"pong {method.value}"
            assert str(reply["from"]) == "bob@b.test"
            assert time.monotonic() - started < 10
            # Each direction authenticated its own stream with the expected method, on both sides.
            assert _methods(a, "out") == {method} and _methods(b, "in") == {method}
            assert _methods(b, "out") == {method} and _methods(a, "in") == {method}
            live = {(s["direction"], s["method"]) for s in a.gateway.live_streams()}
            assert ("out", method.value) in live and ("in", method.value) in live
            for s in a.gateway.live_streams():
                assert s["tls_version"] == (None if method is Method.TCP_DIALBACK else "TLSv1.3")
        finally:
            await _stop([a, b], [comp_a, comp_b])

    asyncio.run(main())


def test_undeliverable_stanzas_are_bounced(tmp_path: Path) -> None:
    async def main() -> None:
        a, b, comp_a, comp_b = await _pair(tmp_path)
        try:
            a.set_partner("b.test", Settings.parse_triple("required/required/false"), partner_type="federated")
            b.set_partner("a.test", Settings.parse_triple("not_supported/not_supported/true"),
                          partner_type="federated")
            # No common method: the queued message comes back to its sender with an error.
            comp_a.say("alice@a.test", "bob@b.test", "never arrives")
            err = await comp_a.next_error()
            assert error_condition(err) == "remote-server-not-found"
            assert str(err["from"]) == "bob@b.test"
            # A domain that is not a partner at all.
            comp_a.say("alice@a.test", "carol@c.test", "nobody there")
            err = await comp_a.next_error()
            assert error_condition(err) == "remote-server-not-found"
            assert comp_b.received.empty()
        finally:
            await _stop([a, b], [comp_a, comp_b])

    asyncio.run(main())


def test_public_unverified_partner_needs_prior_authorization(tmp_path: Path) -> None:
    async def main() -> None:
        a, b, comp_a, comp_b = await _pair(tmp_path)
        try:
            s = Settings.parse_triple("required/required/false")
            a.set_partner("b.test", s, partner_type="federated")
            b.set_partner("a.test", s, partner_type="public_unverified")
            comp_a.say("alice@a.test", "bob@b.test", "hello stranger")
            err = await comp_a.next_error()
            assert error_condition(err) == "subscription-required"
            assert comp_b.received.empty()
            # bob reaches out first (a subscription request), which the gateway records...
            comp_b.send_presence(pto="alice@a.test", pfrom="bob@b.test", ptype="subscribe")
            await asyncio.sleep(0.3)
            # ...in its store...
            assert ("bob@b.test", "alice@a.test") in b.store.authorizations()
            # ...and now alice's messages reach him.
            comp_a.say("alice@a.test", "bob@b.test", "hello again")
            got = await comp_b.next_message()
            assert str(got["body"]) == "hello again"
        finally:
            await _stop([a, b], [comp_a, comp_b])

    asyncio.run(main())


@pytest.mark.parametrize("log_bodies", [False, True])
def test_message_bodies_are_logged_only_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, log_bodies: bool
) -> None:
    async def main() -> None:
        a, b, comp_a, comp_b = await _pair(tmp_path)
        try:
            s = Settings.parse_triple("required/required/false")
            a.set_partner("b.test", s, partner_type="federated")
            b.set_partner("a.test", s, partner_type="federated")
            a.store.update_gateway(log_message_bodies=log_bodies)
            b.store.update_gateway(log_message_bodies=log_bodies)
            a.gateway.reload()
            b.gateway.reload()
            comp_a.say("alice@a.test", "bob@b.test", "ping the-secret-body")
            assert str((await comp_a.next_message())["body"]) == "pong the-secret-body"
        finally:
            await _stop([a, b], [comp_a, comp_b])

    with caplog.at_level(logging.DEBUG, logger="fedgate"):
        asyncio.run(main())
    routed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("routing message")]
    assert routed  # the trace is there either way
    assert any("the-secret-body" in m for m in routed) is log_bodies
    if not log_bodies:
        assert all("the-secret-body" not in r.getMessage() for r in caplog.records)


def test_an_unlisted_domain_gets_the_default_policy_on_the_wire(tmp_path: Path) -> None:
    """b lists no partner at all. With unlisted_domains a settings triple, a.test is negotiated by those
    settings (SASL EXTERNAL here) and treated as public_unverified (its unsolicited message needs a prior
    authorization); with unlisted_domains "refuse", its stream is refused and the message bounces."""

    async def main() -> None:
        a, b, comp_a, comp_b = await _pair(tmp_path)
        try:
            a.set_partner("b.test", Settings.parse_triple("optional/optional/true"), partner_type="federated")
            b.store.update_gateway(unlisted_domains="required/required/false")
            b.gateway.reload()
            comp_a.say("alice@a.test", "bob@b.test", "hello from an unlisted domain")
            err = await comp_a.next_error()
            assert error_condition(err) == "subscription-required"
            assert _methods(b, "in") == {Method.SASL_TLS} and _methods(a, "out") == {Method.SASL_TLS}
            await settle([a.gateway, b.gateway])
            a.events.clear()
            b.events.clear()
            b.store.update_gateway(unlisted_domains="refuse")
            b.gateway.reload()
            comp_a.say("alice@a.test", "bob@b.test", "and now?")
            err = await comp_a.next_error()
            assert error_condition(err) == "remote-server-not-found"
            assert not _methods(b, "in") and not _methods(a, "out")
            assert comp_b.received.empty()
        finally:
            await _stop([a, b], [comp_a, comp_b])

    asyncio.run(main())


def test_a_partners_additional_domain_in_the_stream_header(tmp_path: Path) -> None:
    """A stream from a2.test (its own gateway and certificate) is refused while b's partner record for a.test
    does not list it, and accepted under that partner's settings and type once it is an additional domain."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a, b, comp_a, comp_b = await _pair(tmp_path, ca)
        routes = {**ROUTES, "a2.test": "127.0.0.18:5269"}
        a2 = await make_node(tmp_path, ca, "a2.test", "127.0.0.18", routes, component_port=5347)
        comp_a2 = EchoComponent("a2.test", "secret", "127.0.0.18", 5347)
        await comp_a2.start()
        try:
            s = Settings.parse_triple("required/required/false")
            a2.set_partner("b.test", s, partner_type="federated")
            b.set_partner("a.test", s, partner_type="federated")
            comp_a2.say("carol@a2.test", "bob@b.test", "hello")
            assert error_condition(await comp_a2.next_error()) == "remote-server-not-found"
            refused = [e for d, e in b.events if d == "in" and type(e).__name__ == "StreamClosed"]
            assert refused and refused[0].condition == "policy-violation"
            await settle([a2.gateway, b.gateway])
            b.set_partner("a.test", s, partner_type="federated", additional_domains=["a2.test"])
            b.events.clear()
            comp_a2.say("carol@a2.test", "bob@b.test", "hello again")
            got = await comp_b.next_message()
            assert str(got["body"]) == "hello again" and str(got["from"]) == "carol@a2.test"
            opened = [e for d, e in b.events if d == "in" and type(e).__name__ == "StreamOpened"]
            assert opened[0].from_ == "a2.test"
            assert [(e.remote_domain, e.method) for d, e in b.events if d == "in" and isinstance(e, Authenticated)
                    ] == [("a2.test", Method.SASL_TLS)]
        finally:
            await _stop([a, b, a2], [comp_a, comp_b, comp_a2])

    asyncio.run(main())
