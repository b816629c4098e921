"""fedgate against a real ejabberd (Debian bookworm's 23.01), both directions, for SASL EXTERNAL over TLS,
dialback over TLS and dialback over plain TCP: a message from an ejabberd user (slixmpp client) reaches a
slixmpp component behind fedgate and the reply comes back (and the other way round). Which method was used is
asserted on both sides: from fedgate's events and from ejabberd's log (``Accepted inbound|outbound s2s MECH
authentication``). And the refusal: TLS required on our side against an ejabberd without STARTTLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fedgate.certs import TestCA
from fedgate.policy import Method, Settings
from fedgate.s2s import Authenticated

from ..interop.prosody import Client
from ..net.components import EchoComponent, error_condition
from ..net.gateways import Node, make_node, settle
from .conftest import EjabberdPool
from .ejabberd import EJABBERD_DOMAIN, EJABBERD_IP, GATEWAY_DOMAIN, GATEWAY_IP, EjabberdPolicy, EjabberdServer

ROUTES = {EJABBERD_DOMAIN: f"{EJABBERD_IP}:5269", GATEWAY_DOMAIN: f"{GATEWAY_IP}:5269"}
# Settings that leave exactly one method, on our side and on ejabberd's.
FORCING = {
    # ejabberd without mod_s2s_dialback can only authenticate with SASL EXTERNAL.
    Method.SASL_TLS: ("required/required/false", EjabberdPolicy("required", dialback=False)),
    # We neither offer nor try EXTERNAL; ejabberd would (it trusts our certificate), so dialback is ours to force.
    Method.TLS_DIALBACK: ("required/not_supported/true", EjabberdPolicy("required", dialback=True)),
    # Neither side offers STARTTLS: dialback over plain TCP is all that is left.
    Method.TCP_DIALBACK: ("not_supported/not_supported/true", EjabberdPolicy("false", dialback=True)),
}
# An ejabberd that offers (and tries) no STARTTLS on s2s: the plain-TCP dialback case and the refusal share it.
PLAIN = FORCING[Method.TCP_DIALBACK][1]


async def _until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def _ours(node: Node, direction: str) -> set[Method]:
    return {e.method for d, e in node.events if d == direction and isinstance(e, Authenticated)}


def _theirs(server: EjabberdServer, direction: str) -> set[tuple[Method | None, bool]]:
    return {(e.method, e.tls) for e in server.s2s_events() if e.peer == GATEWAY_DOMAIN and e.direction == direction}


# ``first`` varies fastest, so each ejabberd policy starts once (switching costs about 3 s); the plain-TCP
# policy comes last and stays up for the refusal test below.
@pytest.mark.parametrize("first", ["ejabberd-user-first", "component-first"])
@pytest.mark.parametrize("method", list(FORCING), ids=[m.value for m in FORCING])
def test_message_and_reply_with_ejabberd(
    ejabberd_pool: EjabberdPool, ejabberd_ca: TestCA, ejabberd_dir: Path, method: Method, first: str
) -> None:
    triple, policy = FORCING[method]
    server = ejabberd_pool.get(policy)
    server.register("alice", "pw")
    server.mark()
    directory = ejabberd_dir / f"gw-{method.value}-{first}"
    directory.mkdir(exist_ok=True)

    async def main() -> None:
        node = await make_node(directory, ejabberd_ca, GATEWAY_DOMAIN, GATEWAY_IP, ROUTES, component_port=5347)
        node.set_partner(EJABBERD_DOMAIN, Settings.parse_triple(triple), partner_type="federated")
        component = EchoComponent(GATEWAY_DOMAIN, "secret", GATEWAY_IP, 5347)
        await component.start()
        try:
            async with Client(server, "alice", "pw") as alice:  # type: ignore[arg-type]
                if first == "ejabberd-user-first":
                    alice.send(f"bot@{GATEWAY_DOMAIN}", "ping from ejabberd")
                    got = await component.next_message(15)
                    assert str(got["body"]) == "ping from ejabberd"
                    assert str(got["from"]).startswith(f"alice@{EJABBERD_DOMAIN}")
                    reply = await alice.receive(15)
                    assert str(reply["body"]) == "pong from ejabberd"
                    assert str(reply["from"]) == f"bot@{GATEWAY_DOMAIN}"
                else:
                    component.say(f"bot@{GATEWAY_DOMAIN}", f"alice@{EJABBERD_DOMAIN}", "ping from fedgate")
                    got = await alice.receive(15)
                    assert str(got["body"]) == "ping from fedgate"
                    alice.send(f"bot@{GATEWAY_DOMAIN}", "hello back")
                    back = await component.next_message(15)
                    assert str(back["body"]) == "hello back"
                # Both S2S directions are up; each side says which method authenticated it.
                await _until(lambda: bool(_ours(node, "in")) and bool(_ours(node, "out")))
                assert _ours(node, "in") == {method}
                assert _ours(node, "out") == {method}
                await _until(lambda: bool(_theirs(server, "in")) and bool(_theirs(server, "out")))
                tls = method is not Method.TCP_DIALBACK
                assert _theirs(server, "in") == {(method, tls)}, server.tail()
                assert _theirs(server, "out") == {(method, tls)}, server.tail()
        finally:
            await component.stop()
            await settle([node.gateway])
            await node.gateway.stop()

    asyncio.run(main())


# Runs after the parametrized test above, whose last policy is PLAIN: ejabberd is not restarted.
def test_tls_required_against_ejabberd_without_starttls(
    ejabberd_pool: EjabberdPool, ejabberd_ca: TestCA, ejabberd_dir: Path
) -> None:
    """We require TLS for ejabberd.test; this ejabberd offers no STARTTLS on s2s. Nothing may travel in plain
    text: our component's message comes back as an error and alice gets nothing; ejabberd's attempt to reach
    us is refused, so alice's message bounces back to her as an error and never reaches the component."""
    server = ejabberd_pool.get(PLAIN)
    server.register("alice", "pw")
    server.mark()
    directory = ejabberd_dir / "gw-tls-required-vs-plain"
    directory.mkdir(exist_ok=True)

    async def main() -> None:
        node = await make_node(directory, ejabberd_ca, GATEWAY_DOMAIN, GATEWAY_IP, ROUTES, component_port=5347)
        required_tls = Settings.parse_triple("required/not_supported/true")
        node.set_partner(EJABBERD_DOMAIN, required_tls, partner_type="federated")
        component = EchoComponent(GATEWAY_DOMAIN, "secret", GATEWAY_IP, 5347)
        await component.start()
        try:
            async with Client(server, "alice", "pw") as alice:  # type: ignore[arg-type]
                component.say(f"bot@{GATEWAY_DOMAIN}", f"alice@{EJABBERD_DOMAIN}", "secret plans")
                err = await component.next_error(15)
                assert str(err["from"]) == f"alice@{EJABBERD_DOMAIN}"
                assert error_condition(err) == "remote-server-not-found"
                assert alice.messages.empty()
                assert "secret plans" not in server.log_text()
                # And the other way: our features say STARTTLS is required, ejabberd (STARTTLS disabled) closes
                # its outbound stream and bounces alice's message to her: remote-server-timeout, type wait,
                # "Stream closed by local host: STARTTLS is disabled in local configuration (unsupported-feature)".
                alice.send(f"bot@{GATEWAY_DOMAIN}", "hello?")
                bounced = await asyncio.wait_for(alice.errors.get(), 20)
                assert str(bounced["from"]) == f"bot@{GATEWAY_DOMAIN}"
                assert str(bounced["body"]) == "hello?"
                assert bounced["error"]["condition"] == "remote-server-timeout", bounced
                assert "STARTTLS is disabled" in str(bounced["error"]["text"]), bounced
                assert component.received.empty()
                # slixmpp also raises "message" for the error stanza: alice got nothing else.
                while not alice.messages.empty():
                    assert alice.messages.get_nowait()["type"] == "error"
                assert not _ours(node, "in") and not _ours(node, "out")
                assert not _theirs(server, "in") and not _theirs(server, "out"), server.tail()
                failures = node.gateway.stats.negotiation_failures
                assert failures["starttls_not_offered"] >= 1, failures  # ours, outbound
                assert failures["closed_before_authentication"] >= 1, failures  # ejabberd's, inbound
                assert not node.gateway.stats.authentications
        finally:
            await component.stop()
            await settle([node.gateway])
            await node.gateway.stop()

    asyncio.run(main())
