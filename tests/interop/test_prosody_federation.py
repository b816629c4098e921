"""fedgate against a real Prosody 0.12, both directions, for each of SASL EXTERNAL over TLS, dialback over
TLS and dialback over TCP: a message from a Prosody user (slixmpp client) reaches a slixmpp component behind
fedgate and the reply comes back (and the other way round). Which method was used is asserted on both
sides: from fedgate's events and from Prosody's own log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fedgate.certs import TestCA
from fedgate.policy import Method, Settings
from fedgate.s2s import Authenticated
from fedgate.tls import TlsSession

from ..net.components import EchoComponent
from ..net.gateways import Node, make_node, settle
from .prosody import GATEWAY_DOMAIN, GATEWAY_IP, PROSODY_DOMAIN, PROSODY_IP, Client, ProsodyPolicy, ProsodyServer

pytestmark = pytest.mark.prosody

ROUTES = {PROSODY_DOMAIN: f"{PROSODY_IP}:5269", GATEWAY_DOMAIN: f"{GATEWAY_IP}:5269"}
# Settings that leave exactly one method, on our side and on Prosody's.
FORCING = {
    Method.SASL_TLS: "required/required/false",
    Method.TLS_DIALBACK: "required/not_supported/true",
    Method.TCP_DIALBACK: "not_supported/not_supported/true",
}
POLICIES = [ProsodyPolicy(*FORCING[m].split("/")[:2], dialback=FORCING[m].endswith("true")) for m in Method]


async def _until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def _gateway(directory: Path, ca: TestCA, method: Method) -> tuple[Node, EchoComponent]:
    node = await make_node(directory, ca, GATEWAY_DOMAIN, GATEWAY_IP, ROUTES, component_port=5347)
    node.set_partner(PROSODY_DOMAIN, Settings.parse_triple(FORCING[method]), partner_type="federated")
    component = EchoComponent(GATEWAY_DOMAIN, "secret", GATEWAY_IP, 5347)
    await component.start()
    return node, component


def _tls_sessions(node: Node) -> list[TlsSession]:
    conns = [c for _, c in node.gateway._inbound_machines.values()]
    conns += [link.conn for link in node.gateway.links.values() if link.conn is not None]
    return [c.tls for c in conns if c.tls is not None]


def _ours(node: Node, direction: str) -> set[Method]:
    return {e.method for d, e in node.events if d == direction and isinstance(e, Authenticated)}


def _theirs(prosody: ProsodyServer, direction: str) -> set[tuple[Method, bool]]:
    return {(e.method, e.tls) for e in prosody.s2s_events() if e.peer == GATEWAY_DOMAIN and e.direction == direction}


@pytest.mark.parametrize("prosody_policy", POLICIES, ids=[m.value for m in Method])
@pytest.mark.parametrize("first", ["prosody-user-first", "component-first"])
def test_message_and_reply_with_prosody(
    prosody: ProsodyServer, prosody_policy: ProsodyPolicy, interop_ca: TestCA, interop_dir: Path, first: str,
) -> None:
    method = next(m for m in Method if FORCING[m].startswith(f"{prosody_policy.tls}/{prosody_policy.sasl}"))
    prosody.register("alice", "pw")
    directory = interop_dir / f"gw-{method.value}-{first}"
    directory.mkdir(exist_ok=True)

    async def main() -> None:
        node, component = await _gateway(directory, interop_ca, method)
        try:
            async with Client(prosody, "alice", "pw") as alice:
                if first == "prosody-user-first":
                    alice.send(f"bot@{GATEWAY_DOMAIN}", "ping from prosody")
                    got = await component.next_message(15)
                    assert str(got["body"]) == "ping from prosody"
                    assert str(got["from"]).startswith(f"alice@{PROSODY_DOMAIN}")
                    reply = await alice.receive(15)
                    assert str(reply["body"]) == "pong from prosody"
                    assert str(reply["from"]) == f"bot@{GATEWAY_DOMAIN}"
                else:
                    component.say(f"bot@{GATEWAY_DOMAIN}", f"alice@{PROSODY_DOMAIN}", "ping from fedgate")
                    got = await alice.receive(15)
                    assert str(got["body"]) == "ping from fedgate"
                    alice.send(f"bot@{GATEWAY_DOMAIN}", "hello back")
                    back = await component.next_message(15)
                    assert str(back["body"]) == "hello back"
                # Both S2S directions are up; each side says which method authenticated it.
                await _until(lambda: bool(_ours(node, "in")) and bool(_ours(node, "out")))
                assert _ours(node, "in") == {method}
                assert _ours(node, "out") == {method}
                await _until(lambda: bool(_theirs(prosody, "in")) and bool(_theirs(prosody, "out")))
                tls = method is not Method.TCP_DIALBACK
                assert (method, tls) in _theirs(prosody, "in"), prosody.tail()
                assert (method, tls) in _theirs(prosody, "out"), prosody.tail()
                # Idle, both of our TLS streams hand their records over from OpenSSL to fedgate.tls13; Prosody
                # (LuaSec on the system's OpenSSL) must not notice: another round trip each way, a long one too.
                await asyncio.sleep(0.5)
                sessions = _tls_sessions(node)
                assert len(sessions) == (2 if tls else 0) and all(t.hibernated for t in sessions)
                for body in ("after hibernation", "long " + "y" * 30000):
                    alice.send(f"bot@{GATEWAY_DOMAIN}", "ping " + body)
                    assert str((await component.next_message(15))["body"]) == "ping " + body
                    assert str((await alice.receive(15))["body"]) == "pong " + body  # the echo's reply
                assert _tls_sessions(node) == sessions  # on the same streams
        finally:
            await component.stop()
            await settle([node.gateway])
            await node.gateway.stop()

    asyncio.run(main())


@pytest.mark.parametrize(
    "prosody_policy", [ProsodyPolicy("not_supported", "not_supported", dialback=True)], ids=["prosody-no-tls"]
)
def test_tls_required_against_a_peer_without_starttls(
    prosody: ProsodyServer, interop_ca: TestCA, interop_dir: Path
) -> None:
    """We require TLS for prosody.test; this Prosody offers no STARTTLS. Nothing may travel in plain text:
    our message comes back to the component as an error, and Prosody's attempt to reach us is refused."""
    prosody.register("alice", "pw")
    directory = interop_dir / "gw-tls-required-vs-plain"
    directory.mkdir(exist_ok=True)

    async def main() -> None:
        node = await make_node(directory, interop_ca, GATEWAY_DOMAIN, GATEWAY_IP, ROUTES, component_port=5347)
        node.set_partner(PROSODY_DOMAIN, Settings.parse_triple("required/not_supported/true"))
        component = EchoComponent(GATEWAY_DOMAIN, "secret", GATEWAY_IP, 5347)
        await component.start()
        try:
            async with Client(prosody, "alice", "pw") as alice:
                component.say(f"bot@{GATEWAY_DOMAIN}", f"alice@{PROSODY_DOMAIN}", "secret plans")
                err = await component.next_error(15)
                assert str(err["from"]) == f"alice@{PROSODY_DOMAIN}"
                assert alice.messages.empty()
                assert "secret plans" not in prosody.log_text()
                # And the other way: Prosody cannot reach us without TLS, so alice's message bounces.
                alice.send(f"bot@{GATEWAY_DOMAIN}", "hello?")
                bounced = await asyncio.wait_for(alice.errors.get(), 20)
                assert bounced["error"]["condition"] in ("remote-server-not-found", "remote-server-timeout")
                assert component.received.empty()
                assert not _ours(node, "in") and not _ours(node, "out")
                assert node.gateway.stats.negotiation_failures
        finally:
            await component.stop()
            await settle([node.gateway])
            await node.gateway.stop()

    asyncio.run(main())
