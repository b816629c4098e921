"""Faults, nothing lost: a partner that dies before or after authentication, DNS failures, an establishment
time-out, a component that disconnects while stanzas are on their way to it. Every stanza the gateway
accepted is delivered or bounced to its sender with an error, and the tests count them: sent N = delivered +
bounced, exactly, with no stanza both or twice. Except a burst written while the partner dies
(``test_partner_dies_during_a_burst``): that scripted partner does not speak XEP-0198 Stream Management, so
stanzas already written to the dead socket are lost; every other one is bounced. Between servers that both do
Stream Management the acknowledgements cover this (``tests/test_sm_gateways.py``: nothing lost).

Gateways: a.test on 127.0.0.94, b.test on 127.0.0.95; scripted partners on 127.0.0.96."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.exception
import pytest

from fedgate.certs import TestCA
from fedgate.connection import Connection
from fedgate.policy import Settings
from fedgate.resolver import Resolver
from fedgate.s2s import Authenticated

from .net.components import EchoComponent, error_condition
from .net.gateways import Node, make_node, settle
from .net.rawpeer import RawPeer, features, header, listen
from .test_resolver import FakeDns, srv

A, A_IP = "a.test", "127.0.0.94"
B, B_IP = "b.test", "127.0.0.95"
D, D_IP = "d.test", "127.0.0.96"
ROUTES = {A: f"{A_IP}:5269", B: f"{B_IP}:5269", D: f"{D_IP}:5269"}


def guard_dns(hosts: dict[str, str] | None = None) -> None:
    """No name look-up leaves the machine: names other than ``hosts`` fail at once on this loop."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    known = hosts or {}

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and not host.startswith("127."):
            if host not in known:
                raise socket.gaierror(socket.EAI_NONAME, f"{host}: unknown here")
            host = known[host]
        return await real(host, port, *args, **kwargs)

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]


def say(comp: EchoComponent, frm: str, to: str, i: int) -> None:
    """Message ``m{i}``: its id and its body (a bounce keeps the id; error replies carry no body)."""
    msg = comp.make_message(mto=to, mfrom=frm, mbody=f"m{i}", mtype="chat")
    msg["id"] = f"m{i}"
    msg.send()


class Tally:
    """What became of the stanzas a component sent: delivered (by body) and bounced (id -> condition)."""

    def __init__(self, comp: EchoComponent, n: int) -> None:
        self.comp = comp
        self.n = n
        self.delivered: list[str] = []
        self.bounced: dict[str, str | None] = {}

    async def collect_bounces(self, until: Callable[[], bool], timeout: float = 10) -> None:
        try:
            await self._collect(until, timeout)
        except TimeoutError:
            lost = {f"m{i}" for i in range(self.n)} - set(self.delivered) - set(self.bounced)
            raise AssertionError(f"neither delivered nor bounced: {sorted(lost)}") from None

    async def _collect(self, until: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not until():
                try:
                    err = await asyncio.wait_for(self.comp.errors.get(), 0.1)
                except TimeoutError:
                    continue
                mid = str(err["id"])
                assert mid not in self.bounced, f"{mid} bounced twice"
                self.bounced[mid] = error_condition(err)

    def done(self) -> bool:
        return len(self.delivered) + len(self.bounced) >= self.n

    def check(self) -> None:
        sent = {f"m{i}" for i in range(self.n)}
        assert len(self.delivered) == len(set(self.delivered)), "a stanza was delivered twice"
        assert not set(self.delivered) & set(self.bounced), "a stanza was delivered and bounced"
        assert set(self.delivered) | set(self.bounced) == sent, sorted(sent - set(self.delivered) - set(self.bounced))


async def _gateway(tmp: Path, ca: TestCA, domain: str, ip: str, **gw: object) -> tuple[Node, EchoComponent]:
    node = await make_node(tmp, ca, domain, ip, ROUTES, component_port=5347)
    if gw:
        node.store.update_gateway(**gw)
        node.gateway.reload()
    comp = EchoComponent(domain, "secret", ip, 5347)
    await comp.start()
    return node, comp


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapped() -> None:
        guard_dns()
        await main()

    asyncio.run(wrapped())


# -- a scripted partner that authenticates the gateway by dialback, reads some stanzas and dies ---------------
def dialback_partner(received: list[str], die_after: int | None, *, before_auth: bool = False
                     ) -> Callable[[RawPeer], Awaitable[None]]:
    async def handler(peer: RawPeer) -> None:
        attrs = await peer.expect_header()
        peer.send(header(attrs.get("from"), D, stream_id="sid"))
        peer.send(features(dialback=True))
        if before_auth:
            await peer.next_element()  # the db:result
            peer.writer.transport.abort()  # RST, no stream close
            return
        while True:
            el = await peer.next_element(10)
            if el.tag.endswith("}result"):
                peer.send(f"<db:result from='{D}' to='{el.get('from')}' type='valid'/>")
                continue
            body = el.findtext("{jabber:server}body") or ""
            received.append(body)
            if die_after is not None and len(received) >= die_after:
                peer.writer.transport.abort()
                return

    return handler


@pytest.mark.parametrize("when", ["before-authentication", "mid-stream"])
def test_partner_dies(tmp_path: Path, when: str) -> None:
    """d.test's server dies (a TCP reset) before authenticating us, or after 3 of 12 stanzas: the rest come
    back to the sender (a reconnection is refused too: the server is gone)."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a, comp = await _gateway(tmp_path, ca, A, A_IP)
        a.set_partner(D, Settings.parse_triple("not_supported/not_supported/true"), partner_type="federated")
        received: list[str] = []
        server = await listen(D_IP, dialback_partner(received, 3, before_auth=when == "before-authentication"))
        tally = Tally(comp, 12)
        try:
            for i in range(tally.n):
                say(comp, f"alice@{A}", f"bob@{D}", i)
                if i == 5:  # the rest while the partner is dying
                    if when == "mid-stream":
                        async with asyncio.timeout(5):
                            while len(received) < 3:
                                await asyncio.sleep(0.01)
                    server.close()
                await asyncio.sleep(0.01)
            await tally.collect_bounces(lambda: len(received) + len(tally.bounced) >= tally.n)
            tally.delivered = received
            tally.check()
            # (mid-stream: a reconnection may get in before the server closes, and deliver one more)
            assert len(received) >= 3 if when == "mid-stream" else not received
            assert set(tally.bounced.values()) <= {"remote-server-not-found", "remote-server-timeout"}
        finally:
            server.close()
            await comp.stop()
            await settle([a.gateway])
            await a.gateway.stop()

    run(main)


@pytest.mark.parametrize("failure", ["srv-timeout", "srv-dot", "no-address"])
def test_dns_failure_bounces_every_queued_stanza(tmp_path: Path, failure: str) -> None:
    answers: dict[str, Any] = {
        "srv-timeout": {"_xmpp-server._tcp.d.test": dns.exception.Timeout()},
        "srv-dot": {"_xmpp-server._tcp.d.test": [srv("0 0 0 .")]},
        "no-address": {"_xmpp-server._tcp.d.test": [srv("0 0 5269 nowhere.d.test.")]},
    }[failure]

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a, comp = await _gateway(tmp_path, ca, A, A_IP)
        a.set_partner(D, Settings.parse_triple("not_supported/not_supported/true"), partner_type="federated")
        a.gateway.config.resolver = Resolver(dns_resolver=FakeDns(answers), use_srv=True)
        tally = Tally(comp, 5)
        try:
            for i in range(tally.n):
                say(comp, f"alice@{A}", f"bob@{D}", i)
            await tally.collect_bounces(tally.done)
            tally.check()
            assert set(tally.bounced.values()) == {"remote-server-not-found"}
        finally:
            await comp.stop()
            await a.gateway.stop()

    run(main)


def test_establishment_timeout_bounces_every_queued_stanza(tmp_path: Path) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a, comp = await _gateway(tmp_path, ca, A, A_IP, stream_establishment_timeout=1)
        a.set_partner(D, Settings.parse_triple("not_supported/not_supported/true"), partner_type="federated")

        async def header_only(peer: RawPeer) -> None:
            attrs = await peer.expect_header()
            peer.send(header(attrs.get("from"), D, stream_id="sid"))  # ...and no features, ever
            await peer.poll(5)

        server = await listen(D_IP, header_only)
        tally = Tally(comp, 8)
        try:
            for i in range(tally.n):
                say(comp, f"alice@{A}", f"bob@{D}", i)
            await tally.collect_bounces(tally.done)
            tally.check()
            assert set(tally.bounced.values()) == {"remote-server-timeout"}
        finally:
            server.close()
            await comp.stop()
            await a.gateway.stop()

    run(main)


def test_component_disconnects_while_stanzas_are_on_their_way(tmp_path: Path) -> None:
    """a.test's component sends 40 messages to b.test's component, which drops its connection (abort) after
    10: every message is delivered to it or bounced back to a.test's component (service-unavailable)."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a, comp_a = await _gateway(tmp_path, ca, A, A_IP)
        b, comp_b = await _gateway(tmp_path, ca, B, B_IP)
        s = Settings.parse_triple("required/required/false")
        a.set_partner(B, s, partner_type="federated")
        b.set_partner(A, s, partner_type="federated")
        tally = Tally(comp_a, 40)
        delivered: list[str] = []
        try:
            comp_a.say(f"alice@{A}", f"bob@{B}", "ping")  # both streams exist before the count starts
            assert str((await comp_b.next_message())["body"]) == "ping"
            assert str((await comp_a.next_message())["body"]) == "pong"
            for i in range(tally.n):
                say(comp_a, f"alice@{A}", f"bob@{B}", i)
                if i == 10:
                    comp_b.abort()
                await asyncio.sleep(0.005)
            while not comp_b.received.empty():
                delivered.append(str(comp_b.received.get_nowait()["body"]))
            tally.delivered = delivered
            await tally.collect_bounces(tally.done)
            tally.check()
            assert set(tally.bounced.values()) == {"service-unavailable"}
            assert [e for _d, e in a.events if isinstance(e, Authenticated)]
        finally:
            await comp_a.stop()
            await settle([a.gateway, b.gateway])
            await a.gateway.stop()
            await b.gateway.stop()

    run(main)




# -- a burst while the partner dies ---------------------------------------------------------------------------
BURST = 20000  # stanzas, written by the component without a pause (~3 MB)
BURST_DIE_AFTER = 50  # the partner reads this many of them and dies (TCP reset)
_ID = re.compile(rb"id=['\"]m(\d+)['\"]")


class Burst:
    """One run: what the gateway wrote to the partner's socket and what became of each stanza."""

    def __init__(self) -> None:
        self.written: list[int] = []  # handed to the open transport, in order
        self.end_offsets: dict[int, int] = {}  # stanza -> byte offset of its end in what the gateway wrote
        self.out_bytes = 0
        self.dropped: list[int] = []  # handed to Connection.write after the transport had closed
        self.dropped_at: list[float] = []
        self.died_at = 0.0
        self.partner_read = 0  # bytes the partner had read from its socket when it died
        self.partner_seen: set[int] = set()  # stanzas whose bytes (at least in part) the partner had read
        self.delivered: list[int] = []  # stanzas the partner processed
        self.bounced: dict[int, str | None] = {}
        self.lost: set[int] = set()


def _burst(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Burst:
    """a.test's component sends m0 (the stream is up when the partner has it), then m1..m{BURST} in one go;
    d.test reads BURST_DIE_AFTER of them and resets the connection, and its server is gone (a reconnection is
    refused). The gateway's writes to d.test's socket are observed by wrapping ``Connection.write``."""
    out = Burst()
    real_write = Connection.write

    def write(self: Connection, plaintext: bytes) -> None:
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername")
        if peer and peer[0] == D_IP and plaintext:
            ids = [int(m.group(1)) for m in _ID.finditer(plaintext)]
            if self.is_closing():
                out.dropped += ids
                out.dropped_at.append(time.monotonic())
            else:
                for m in _ID.finditer(plaintext):
                    end = plaintext.find(b"</message>", m.end())
                    out.end_offsets[int(m.group(1))] = out.out_bytes + end + len(b"</message>")
                out.written += ids
                out.out_bytes += len(plaintext)
        real_write(self, plaintext)

    monkeypatch.setattr(Connection, "write", write)

    async def partner(peer: RawPeer) -> None:
        attrs = await peer.expect_header()
        peer.send(header(attrs.get("from"), D, stream_id="sid"))
        peer.send(features(dialback=True))
        while True:
            el = await peer.next_element(10)
            if el.tag.endswith("}result"):
                peer.send(f"<db:result from='{D}' to='{el.get('from')}' type='valid'/>")
                continue
            out.delivered.append(int(str(el.get("id")).removeprefix("m")))
            if len(out.delivered) > BURST_DIE_AFTER:
                out.partner_read = len(peer.wire)
                out.partner_seen = {int(m.group(1)) for m in _ID.finditer(bytes(peer.received))}
                out.died_at = time.monotonic()
                peer.writer.transport.abort()
                return

    async def main() -> None:
        ca = TestCA.create(tmp / "ca")
        a, comp = await _gateway(tmp, ca, A, A_IP)
        a.set_partner(D, Settings.parse_triple("not_supported/not_supported/true"), partner_type="federated")
        listener = await listen(D_IP, partner)
        tally = Tally(comp, BURST + 1)
        try:
            say(comp, f"alice@{A}", f"bob@{D}", 0)
            async with asyncio.timeout(5):
                while not out.delivered:
                    await asyncio.sleep(0.01)
            listener.close()  # the next connection is refused
            for i in range(1, BURST + 1):
                say(comp, f"alice@{A}", f"bob@{D}", i)
            # Wait for every bounce the gateway will send: until every stanza is accounted for or 3 s pass
            # with nothing new.
            seen = -1
            while len(tally.bounced) != seen and not tally.done():
                seen = len(tally.bounced)
                with contextlib.suppress(AssertionError):
                    await tally.collect_bounces(tally.done, timeout=3)
            out.bounced = {int(k.removeprefix("m")): v for k, v in tally.bounced.items()}
            out.lost = set(range(BURST + 1)) - set(out.delivered) - set(out.bounced)
        finally:
            listener.close()
            await comp.stop()
            await settle([a.gateway])
            await a.gateway.stop()

    run(main)
    window = (max(out.dropped_at) - out.died_at) if out.dropped_at else 0.0
    print(f"\nburst of {BURST + 1}: delivered {len(out.delivered)}, bounced {len(out.bounced)}, lost {len(out.lost)};"
          f" written to the open socket {len(out.written)} ({out.out_bytes} B, the partner read {out.partner_read}"
          f" B), handed over after the socket had closed {len(out.dropped)} (until {window:.3f} s after the reset)")
    return out


def test_partner_dies_during_a_burst(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst without pauses while the partner dies. KNOWN LIMITATION: here sent = delivered + bounced + lost.

    Not "sent = delivered + bounced" as in the tests above: this raw partner does not offer XEP-0198 Stream
    Management (fedgate does, and uses it when offered: between two such servers its acknowledgements cover
    exactly this case, see tests/test_sm_gateways.py), so a stanza written to a socket is gone from the
    gateway; when the peer dies before reading it, nothing tells the gateway which stanzas it had read, and
    they cannot be bounced (the tests above space their stanzas 5-10 ms apart, so the reset arrives before the
    next one is written). What holds, and is asserted: nothing is
    delivered twice or both delivered and bounced; the partner processed exactly m0..m50, in order; every stanza
    written to the open connection and not processed by the partner ("written but unacknowledged") was in
    flight: its bytes lay beyond what the partner had read from its socket, or the partner had read them and
    died before processing them; no stanza written was bounced as well; every stanza never written to the open
    connection was bounced (the next test: and none was handed to the closed transport); and lost =
    written-but-unacknowledged, exactly.
    Measured (2 cores, at 6dedca5): 20,001 sent, 51 delivered, ~14,400 bounced, ~5,560 written but
    unacknowledged (~470 kB in socket buffers beyond the 64 kB the partner had read)."""
    out = _burst(tmp_path, monkeypatch)
    assert len(out.delivered) == len(set(out.delivered)), "a stanza was delivered twice"
    assert not set(out.delivered) & set(out.bounced), "a stanza was delivered and bounced"
    assert out.delivered == list(range(BURST_DIE_AFTER + 1))
    assert set(out.bounced.values()) <= {"remote-server-not-found"}
    written_unacknowledged = set(out.written) - set(out.delivered) - set(out.bounced)
    in_flight = {i for i in out.written if out.end_offsets[i] > out.partner_read} | (
        out.partner_seen - set(out.delivered))
    assert written_unacknowledged <= in_flight, sorted(written_unacknowledged - in_flight)[:10]
    assert not set(out.written) & set(out.bounced), "a stanza was written and bounced too"
    never_written = set(range(BURST + 1)) - set(out.written)
    assert never_written - set(out.bounced) <= set(out.dropped), sorted(never_written - set(out.bounced))[:10]
    assert out.lost == written_unacknowledged | (set(out.dropped) - set(out.bounced))
    print(f"written but unacknowledged {len(written_unacknowledged)} (in flight {len(in_flight)})")


def test_partner_dies_during_a_burst_every_stanza_not_written_is_bounced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same burst: every stanza the gateway had not written to the connection when it failed comes back,
    and none is handed to the dead socket. Until dc69227 (server.py) the stanzas routed between the transport's
    connection_lost and the end of the stream went into the machine and were dropped by Connection.write in
    silence: ~8,120 of 20,001, then ~2,730 after 2844416; now none."""
    out = _burst(tmp_path, monkeypatch)
    never_written = set(range(BURST + 1)) - set(out.written)
    assert not out.dropped, f"{len(out.dropped)} stanzas handed to the closed transport"
    assert never_written <= set(out.bounced), (
        f"{len(never_written - set(out.bounced))} never written and not bounced, "
        f"e.g. {sorted(never_written - set(out.bounced))[:5]}")
