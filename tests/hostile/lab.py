"""The hostile-input lab: gateway g.test under attack (127.0.0.90), a legitimate partner gateway l.test
(127.0.0.91) federated with it, a component behind each, and the attacker's domain p.test (127.0.0.92, a
partner of g.test, whose server is a scripted :class:`FakePartner`).

The gateways run on one event loop in a background thread for the whole package, so the legitimate streams
between g.test and l.test stay up across every attack: the ``lab`` fixture exchanges a message over them
before and after each test and checks that they were never re-established (no new authentication), that no
stray stanza reached the component, and that the attacker's connections are all gone afterwards.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

from fedgate import dialback
from fedgate.certs import TestCA
from fedgate.policy import Settings
from fedgate.s2s import Authenticated
from fedgate.tls import Credentials, TlsContext, TrustAnchors, client_context, server_context
from fedgate.xmlstream import STREAM_NS

from ..net.components import EchoComponent
from ..net.gateways import Node, make_node
from ..net.rawpeer import SASL_NS, STARTTLS, TLS_NS, FakePartner, RawPeer, listen
from ..test_s2s_negative import auth_external, db_result, message, open_stream, refused

T = TypeVar("T")

GW, GW_IP = "g.test", "127.0.0.90"
LEGIT, LEGIT_IP = "l.test", "127.0.0.91"
PEER, PEER_IP = "p.test", "127.0.0.92"
ROUTES = {GW: f"{GW_IP}:5269", LEGIT: f"{LEGIT_IP}:5269", PEER: f"{PEER_IP}:5269"}
LEGIT_SETTINGS = "required/required/false"
PEER_SETTINGS = "optional/optional/true"
# Gateway settings every test starts from (a test changes them through ``Lab.gateway_settings``).
BASELINE = {
    "stream_establishment_timeout": 10,
    "max_stanza_size": 65536,
    "connection_limit": 1000,
    "partner_connection_limit": 100,
}
FEATURES = f"{{{STREAM_NS}}}features"
MECHANISMS = f"{{{SASL_NS}}}mechanisms"
DB_FEATURE = f"{{{dialback.DIALBACK_FEATURE_NS}}}dialback"


@dataclass
class Lab:
    tmp: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None
    ca: TestCA | None = None
    g: Node | None = None
    legit: Node | None = None
    comp_g: EchoComponent | None = None
    comp_l: EchoComponent | None = None
    partner: FakePartner | None = None
    partner_server: asyncio.Server | None = None
    exchanges: int = 0
    event_mark: int = 0  # where this test's events start in ``g.events``
    legit_auths: int = 0
    # Host names the gateway may "resolve" (anything else fails at once: no look-up leaves the machine).
    hosts: dict[str, str] = field(default_factory=dict)

    # -- the loop ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name="hostile-lab", daemon=True)
        self.thread.start()
        self.run(self._setup(), timeout=60)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the lab's loop and wait for it."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def stop(self) -> None:
        try:
            self.run(self._teardown(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self.thread is not None:
                self.thread.join(10)
            self.loop.close()

    async def _setup(self) -> None:
        loop = asyncio.get_running_loop()
        real_getaddrinfo = loop.getaddrinfo

        async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and not host.startswith("127."):
                if host not in self.hosts:
                    raise socket.gaierror(socket.EAI_NONAME, f"{host}: not known in the hostile lab")
                host = self.hosts[host]
            return await real_getaddrinfo(host, port, *args, **kwargs)

        loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
        self.ca = ca = TestCA.create(self.tmp / "ca")
        self.g = await make_node(self.tmp, ca, GW, GW_IP, ROUTES, component_port=5347)
        self.legit = await make_node(self.tmp, ca, LEGIT, LEGIT_IP, ROUTES, component_port=5347)
        legit = Settings.parse_triple(LEGIT_SETTINGS)
        self.g.set_partner(LEGIT, legit, partner_type="federated")
        self.legit.set_partner(GW, legit, partner_type="federated")
        self.g.set_partner(PEER, Settings.parse_triple(PEER_SETTINGS), partner_type="federated")
        self.g.store.update_gateway(**BASELINE)
        self.g.gateway.reload()
        self.partner = FakePartner(PEER, verdict=lambda _el: "valid")
        self.partner_server = await listen(PEER_IP, self.partner)
        self.comp_g = EchoComponent(GW, "secret", GW_IP, 5347)
        self.comp_l = EchoComponent(LEGIT, "secret", LEGIT_IP, 5347)
        await self.comp_g.start()
        await self.comp_l.start()
        await self.exchange()
        self.legit_auths = self._count_legit_auths()
        assert self.legit_auths == 2, "one stream each way between g.test and l.test"

    async def _teardown(self) -> None:
        for comp in (self.comp_g, self.comp_l):
            if comp is not None:
                await comp.stop()
        if self.partner_server is not None:
            self.partner_server.close()
        for node in (self.g, self.legit):
            if node is not None:
                await node.gateway.stop()
                node.store.close()
        await asyncio.sleep(0.2)
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    # -- the legitimate traffic ------------------------------------------------------------------------------
    def _count_legit_auths(self) -> int:
        assert self.g is not None
        return sum(1 for _d, e in self.g.events if isinstance(e, Authenticated) and e.remote_domain == LEGIT)

    async def exchange(self) -> None:
        """l.test's component writes to g.test's, which answers: both streams between the gateways carry one
        stanza each, and each arrives exactly once, unchanged."""
        assert self.comp_g is not None and self.comp_l is not None
        self.exchanges += 1
        n = self.exchanges
        self.comp_l.say(f"alice@{LEGIT}/r", f"bob@{GW}", f"ping {n}")
        got = await self.comp_g.next_message(10)
        assert (str(got["body"]), str(got["from"])) == (f"ping {n}", f"alice@{LEGIT}/r")
        reply = await self.comp_l.next_message(10)
        assert (str(reply["body"]), str(reply["from"])) == (f"pong {n}", f"bob@{GW}")

    def check_legit(self) -> None:
        """The legitimate partner's streams still work and are the same streams as before."""
        self.run(self.exchange())
        assert self._count_legit_auths() == self.legit_auths, "the streams with l.test were re-established"
        assert self.comp_g is not None and self.comp_g.received.empty(), "a stray stanza reached g.test's component"
        assert self.comp_l is not None and self.comp_l.received.empty(), "a stray stanza reached l.test's component"
        assert self.comp_g.errors.empty() and self.comp_l is not None and self.comp_l.errors.empty()

    # -- per-test state --------------------------------------------------------------------------------------
    def reset(self) -> None:
        async def go() -> None:
            assert self.g is not None and self.partner is not None
            self.g.store.update_gateway(**BASELINE)
            self.g.set_partner(PEER, Settings.parse_triple(PEER_SETTINGS), partner_type="federated",
                               connection_limit=None)
            self.g.gateway.reload()
            self.partner.tls = None
            self.partner.verdict = lambda _el: "valid"
            self.partner.peers.clear()
            self.partner.verify_requests.clear()
            self.partner.other.clear()
            self.hosts.clear()
            self.event_mark = len(self.g.events)

        self.run(go())

    def authenticated(self, domain: str) -> list[Authenticated]:
        """This test's authentications of ``domain`` on g.test."""
        assert self.g is not None
        events = self.g.events[self.event_mark :]
        return [e for _d, e in events if isinstance(e, Authenticated) and e.remote_domain == domain]

    async def attackers_gone(self, timeout: float = 5) -> None:
        """Every stream but the two with l.test has ended on g.test."""
        assert self.g is not None
        gw = self.g.gateway
        async with asyncio.timeout(timeout):
            while True:
                inbound = [m.remote_domain for m, _c in gw._inbound_machines.values()]
                links = [k for k in gw.links if k[1] != LEGIT]
                if inbound == [LEGIT] and not links:
                    return
                await asyncio.sleep(0.02)

    def gateway_settings(self, **changes: object) -> None:
        """Change g.test's gateway settings (from the test's thread; the store lives on the lab's)."""

        async def go() -> None:
            assert self.g is not None
            self.g.store.update_gateway(**changes)
            self.g.gateway.reload()

        self.run(go())

    def peer_settings(self, triple: str, **extra: object) -> None:
        """Change g.test's settings for the attacker's domain p.test."""

        async def go() -> None:
            assert self.g is not None
            self.g.set_partner(PEER, Settings.parse_triple(triple), partner_type="federated", **extra)

        self.run(go())

    # -- the attacker ----------------------------------------------------------------------------------------
    async def connect(self) -> RawPeer:
        return await RawPeer.connect(GW_IP, source=PEER_IP)

    def tls_for(self, domain: str, *, server: bool = False, **options: Any) -> TlsContext:
        """A context with a certificate the lab's CA issued for ``domain`` (``options``: TestCA.issue's)."""
        assert self.ca is not None
        name = "-".join([domain, "s" if server else "c", *(f"{k}={v}" for k, v in sorted(options.items()))])
        files = self.ca.issue(domain, self.tmp / "peer", basename=name, **options)
        creds = Credentials(files.chain, files.key)
        trust = TrustAnchors(cafiles=(self.ca.cert_path,), use_system=False)
        return server_context({domain: creds}, trust) if server else client_context(creds, trust)


# -- steps (open_stream, auth_external, db_result, message, refused: from tests/test_s2s_negative.py) ------------
async def secure(lab: Lab, peer: RawPeer, context: TlsContext | None = None) -> Element:
    """STARTTLS (with a valid client certificate for p.test unless ``context``); the new stream's features."""
    features = await open_stream(peer)
    assert features.find(f"{{{TLS_NS}}}starttls") is not None
    peer.send(STARTTLS)
    assert (await peer.next_element()).tag == f"{{{TLS_NS}}}proceed"
    await peer.starttls(context or lab.tls_for(PEER), server_side=False, server_name=GW)
    return await open_stream(peer)


async def authenticated_peer(lab: Lab) -> RawPeer:
    """An attacker stream that authenticated p.test properly (SASL EXTERNAL, valid certificate)."""
    peer = await lab.connect()
    features = await secure(lab, peer)
    assert features.find(MECHANISMS) is not None
    peer.send(auth_external())
    assert (await peer.next_element()).tag == f"{{{SASL_NS}}}success"
    peer.restart()
    assert [f.tag for f in await open_stream(peer)] == ["{urn:xmpp:sm:3}sm"]  # only Stream Management left
    return peer


__all__ = ["Lab", "auth_external", "authenticated_peer", "db_result", "message", "open_stream", "refused", "secure"]
