"""Deadlines and limits on real sockets: establishment time-out (queued stanzas bounced), connection limits,
inactivity time-out and whitespace keep-alives."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree.ElementTree import Element

import dns.rdata
import pytest

from fedgate.certs import TestCA
from fedgate.connection import Connection
from fedgate.policy import Settings
from fedgate.resolver import Resolver
from fedgate.s2s import Authenticated, StanzaReceived, StreamClosed
from fedgate.tls import TlsSession

from .net.components import EchoComponent, error_condition
from .net.gateways import Node, make_node
from .test_resolver import FakeDns

ROUTES = {"a.test": "127.0.0.16:5269", "b.test": "127.0.0.17:5269"}
HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    b"from='b.test' to='a.test' version='1.0'>"
)


async def _read_all(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_silent_partner_times_out_and_queued_stanzas_are_bounced(tmp_path: Path) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES, component_port=5347)
        a.store.update_gateway(stream_establishment_timeout=1)
        a.set_partner("b.test", Settings.parse_triple("required/required/false"))
        accepted: list[asyncio.StreamWriter] = []

        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            accepted.append(w)  # accept, then say nothing at all

        server = await asyncio.start_server(silent, "127.0.0.17", 5269)
        comp = EchoComponent("a.test", "secret", "127.0.0.16", 5347)
        await comp.start()
        try:
            started = time.monotonic()
            for i in range(3):
                comp.say("alice@a.test", "bob@b.test", f"queued {i}")
            conditions = [error_condition(await comp.next_error(5)) for _ in range(3)]
            assert conditions == ["remote-server-timeout"] * 3
            assert 0.9 < time.monotonic() - started < 4
            assert accepted, "the gateway did connect"
        finally:
            await comp.stop()
            server.close()
            await a.gateway.stop()

    asyncio.run(main())


def test_partner_connection_limit_and_total_limit(tmp_path: Path) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES)
        a.set_partner("b.test", Settings.parse_triple("optional/optional/true"))
        a.store.update_gateway(partner_connection_limit=1)
        a.gateway.reload()
        try:
            r1, w1 = await asyncio.open_connection("127.0.0.16", 5269)
            w1.write(HEADER)
            first = await asyncio.wait_for(r1.read(4096), 5)
            assert b"<stream:features" in first and b"resource-constraint" not in first
            r2, w2 = await asyncio.open_connection("127.0.0.16", 5269)
            w2.write(HEADER)
            second = await _read_all(r2)
            assert b"<resource-constraint" in second and second.endswith(b"</stream:stream>")

            a.store.update_gateway(partner_connection_limit=20, connection_limit=1)
            a.gateway.reload()
            r3, w3 = await asyncio.open_connection("127.0.0.16", 5269)
            third = await _read_all(r3)
            assert b"<resource-constraint" in third
            for w in (w1, w2, w3):
                w.close()
        finally:
            await a.gateway.stop()

    asyncio.run(main())


def test_idle_stream_closes_unless_kept_alive(tmp_path: Path) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES)
        b = await make_node(tmp_path, ca, "b.test", "127.0.0.17", ROUTES)
        s = Settings.parse_triple("required/required/false")
        b.set_partner("a.test", s)
        b.store.update_gateway(stream_inactivity_timeout=2)
        b.gateway.reload()
        a.store.update_gateway(keepalive_interval=1)
        try:
            # With keep-alives every second, b's 2 s inactivity limit never fires.
            a.set_partner("b.test", s, enable_keepalive=True)
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: any(isinstance(e, Authenticated) for _, e in a.events))
            await asyncio.sleep(3.5)
            # (b's own outbound stream to a, carrying the bounce, may close as idle: only b's inbound counts.)
            assert not any(isinstance(e, StreamClosed) for d, e in b.events if d == "in"), b.events
            a.gateway.close_streams()
            await _wait(lambda: not a.gateway.links and not b.gateway._inbound_machines)
            b.events.clear()
            # Without them, b closes the idle stream with connection-timeout.
            a.set_partner("b.test", s, enable_keepalive=False)
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: any(isinstance(e, StreamClosed) for d, e in b.events if d == "in"), 6)
            closed = [e for d, e in b.events if d == "in" and isinstance(e, StreamClosed)]
            assert closed[0].condition == "connection-timeout"
        finally:
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())


def _presence() -> Element:
    return Element("{jabber:server}presence", {"from": "x@a.test", "to": "y@b.test"})


async def _wait(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def test_refused_domain_is_logged_with_the_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES)  # no partners at all
        try:
            reader, writer = await asyncio.open_connection("127.0.0.16", 5269)
            writer.write(HEADER)
            data = await _read_all(reader)
            assert b"<policy-violation" in data
            writer.close()
        finally:
            await a.gateway.stop()

    with caplog.at_level(logging.WARNING, logger="fedgate"):
        asyncio.run(main())
    assert any("policy-violation" in r.getMessage() and "b.test is not a federated partner" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_outbound_follows_srv_priority_to_a_non_default_port(tmp_path: Path) -> None:
    """_xmpp-server._tcp.b.test says: first 127.0.0.19:5299 (nothing listens), then 127.0.0.17:5270 (b)."""
    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        b = await make_node(tmp_path, ca, "b.test", "127.0.0.17", {"a.test": "127.0.0.16:5269"}, listen_port=5270)
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", {})
        fake = FakeDns({"_xmpp-server._tcp.b.test": [
            dns.rdata.from_text("IN", "SRV", "10 0 5299 127.0.0.19."),
            dns.rdata.from_text("IN", "SRV", "20 0 5270 127.0.0.17."),
        ]})
        a.gateway.config.resolver = Resolver(dns_resolver=fake, use_srv=True)
        s = Settings.parse_triple("required/required/false")
        a.set_partner("b.test", s)
        b.set_partner("a.test", s)
        try:
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: any(isinstance(e, Authenticated) for _, e in b.events))
            assert fake.queries[0][:2] == ("_xmpp-server._tcp.b.test", "SRV")
        finally:
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())


def test_dialback_verifications_share_one_stream_to_the_authoritative_server(tmp_path: Path) -> None:
    """Three dialback authentications of a.test at b, one after the other: b connects back to a once and asks
    all three keys on that verification stream."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES)
        b = await make_node(tmp_path, ca, "b.test", "127.0.0.17", ROUTES)
        s = Settings.parse_triple("not_supported/not_supported/true")
        a.set_partner("b.test", s)
        b.set_partner("a.test", s)
        # An error stanza: b drops it (errors are never bounced), so b never opens a stream of its own to a.
        probe = Element("{jabber:server}presence", {"from": "x@a.test", "to": "y@b.test", "type": "error"})
        try:
            for _ in range(3):
                a.gateway.send_to_partner("a.test", "b.test", probe)
                await _wait(lambda: any(isinstance(e, Authenticated) for d, e in b.events if d == "in"))
                for link in list(a.gateway.links.values()):  # close a's outbound stream only
                    assert link.machine is not None and link.conn is not None
                    link.machine.close()
                    link.conn.write(link.machine.data_to_send())
                await _wait(lambda: not a.gateway.links)
                b.events.clear()
            opened = [e for d, e in a.events if d == "in" and type(e).__name__ == "StreamOpened"]
            assert len(opened) == 1, opened
            assert len(b.gateway._verify_links) == 1
        finally:
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())


# -- outbound streams: inactivity counts both directions, keep-alives are not activity, one deadline --------------
def _out_closed(events: list[tuple[str, object]]) -> list[StreamClosed]:
    return [e for d, e in events if d == "out" and isinstance(e, StreamClosed)]


async def _alone(tmp_path: Path, settings: str, **gateway: int) -> tuple[Node, EchoComponent]:
    """Gateway a.test with a component and partner b.test (whose address the test serves, or nobody)."""
    ca = TestCA.create(tmp_path / "ca")
    a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES, component_port=5347)
    if gateway:
        a.store.update_gateway(**gateway)
    a.set_partner("b.test", Settings.parse_triple(settings))
    comp = EchoComponent("a.test", "secret", "127.0.0.16", 5347)
    await comp.start()
    return a, comp


async def _two(tmp_path: Path, keepalive: bool, **a_gateway: int) -> tuple[Node, Node]:
    """Gateways a.test and b.test, SASL EXTERNAL between them; ``a_gateway`` sets a's gateway settings."""
    ca = TestCA.create(tmp_path / "ca")
    a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES)
    b = await make_node(tmp_path, ca, "b.test", "127.0.0.17", ROUTES)
    s = Settings.parse_triple("required/required/false")
    b.set_partner("a.test", s)
    a.store.update_gateway(**a_gateway)
    a.set_partner("b.test", s, enable_keepalive=keepalive)
    return a, b


async def _closed_politely_at(b: Node) -> None:
    """b's inbound stream ended with </stream:stream> from its peer and no stream error."""
    await _wait(lambda: any(isinstance(e, StreamClosed) for d, e in b.events if d == "in"))
    closed = [e for d, e in b.events if d == "in" and isinstance(e, StreamClosed)]
    assert closed[0].condition is None and closed[0].by_peer, closed


def test_busy_outbound_stream_without_keepalives_is_not_closed_as_idle(tmp_path: Path) -> None:
    """Keep-alives off, inactivity 2 s: the partner sends nothing back on our outbound stream, but we send a
    stanza every 0.5 s, so the stream stays up (inactivity is time since the last stanza either way)."""

    async def main() -> None:
        a, b = await _two(tmp_path, False, stream_inactivity_timeout=2)
        try:
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: any(isinstance(e, Authenticated) for d, e in a.events if d == "out"))
            for _ in range(8):
                await asyncio.sleep(0.5)
                a.gateway.send_to_partner("a.test", "b.test", _presence())
            assert not _out_closed(a.events), a.events
            assert len([e for d, e in a.events if d == "out" and isinstance(e, Authenticated)]) == 1
            # Then nothing either way: closed politely once the 2 s pass.
            await _wait(lambda: bool(_out_closed(a.events)), 4)
            await _closed_politely_at(b)
        finally:
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())


def test_idle_outbound_stream_with_keepalives_is_closed_after_the_inactivity_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Keep-alives every second do not count as activity: with no stanza either way for 2 s our outbound stream
    is closed with </stream:stream> (no stream error), and the next stanza opens a new stream."""

    async def main() -> None:
        a, b = await _two(tmp_path, True, stream_inactivity_timeout=2, keepalive_interval=1)
        try:
            started = time.monotonic()
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: bool(_out_closed(a.events)), 6)
            assert 1.8 < time.monotonic() - started < 4.5
            await _closed_politely_at(b)
            await _wait(lambda: not a.gateway.links)
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: len([e for d, e in a.events if d == "out" and isinstance(e, Authenticated)]) == 2)
        finally:
            await a.gateway.stop()
            await b.gateway.stop()

    with caplog.at_level(logging.INFO, logger="fedgate"):
        asyncio.run(main())
    assert any("closing the idle stream to b.test" in r.getMessage() for r in caplog.records)


def test_establishment_deadline_closes_with_connection_timeout_before_the_fin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A partner that opens its stream and then says nothing: at the deadline our stream ends with a
    connection-timeout stream error and </stream:stream> before the connection closes; the failure is
    recorded and logged once; queued stanzas bounce remote-server-timeout."""

    async def main() -> None:
        a, comp = await _alone(tmp_path, "not_supported/not_supported/true", stream_establishment_timeout=1)
        got: list[bytes] = []

        async def mute(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.read(4096)
            w.write(HEADER.replace(b"from='b.test' to='a.test'", b"from='b.test' to='a.test' id='x'"))
            got.append(await _read_all(r, 5))
            w.close()

        server = await asyncio.start_server(mute, "127.0.0.17", 5269)
        try:
            comp.say("alice@a.test", "bob@b.test", "queued")
            assert error_condition(await comp.next_error(5)) == "remote-server-timeout"
            await _wait(lambda: bool(got))
            assert b"<connection-timeout" in got[0] and got[0].endswith(b"</stream:stream>"), got
            assert a.gateway.stats.negotiation_failures["establishment_timeout"] == 1
            fails = [e for d, e in a.events if d == "out" and type(e).__name__ == "NegotiationFailed"]
            assert [getattr(e, "detail", None) for e in fails] == ["establishment_timeout"]
        finally:
            await comp.stop()
            server.close()
            await a.gateway.stop()

    with caplog.at_level(logging.WARNING, logger="fedgate"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "b.test" in r.getMessage()]
    assert len(lines) == 1 and "stream establishment time-out (1 s)" in lines[0], lines


def test_establishment_deadline_covers_the_connect(tmp_path: Path) -> None:
    """A connect that takes 0.7 s of a 1 s deadline leaves 0.3 s for the rest, not a fresh second."""

    async def main() -> None:
        a, comp = await _alone(tmp_path, "required/required/false", stream_establishment_timeout=1)

        async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while await r.read(4096):  # say nothing; hang up when the gateway does
                pass
            w.close()

        server = await asyncio.start_server(silent, "127.0.0.17", 5269)
        real_open = a.gateway._open_connection

        async def slow_open(domain: str) -> object:
            await asyncio.sleep(0.7)
            return await real_open(domain)

        a.gateway._open_connection = slow_open  # type: ignore[assignment,method-assign]
        try:
            started = time.monotonic()
            comp.say("alice@a.test", "bob@b.test", "queued")
            assert error_condition(await comp.next_error(5)) == "remote-server-timeout"
            assert time.monotonic() - started < 1.5
        finally:
            await comp.stop()
            server.close()
            await a.gateway.stop()

    asyncio.run(main())


def test_connect_failure_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        a, comp = await _alone(tmp_path, "required/required/false")
        try:
            comp.say("alice@a.test", "bob@b.test", "nobody listens")
            assert error_condition(await comp.next_error(5)) == "remote-server-not-found"
            assert a.gateway.stats.negotiation_failures["connect_failed"] == 1
        finally:
            await comp.stop()
            await a.gateway.stop()

    with caplog.at_level(logging.WARNING, logger="fedgate"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "b.test" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("could not establish a stream to b.test: the connection failed")


def test_a_stanza_sent_as_the_partner_closes_goes_on_a_new_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b ends our authenticated outbound stream. A stanza routed at that very moment (queued on the closing
    link) is sent once more on a new stream, not bounced; and the closing link is out of the routing table
    before its socket is closed, so later stanzas open a new link too."""

    async def main() -> None:
        a, b = await _two(tmp_path, False)
        key = ("a.test", "b.test")
        in_table_at_close: list[bool] = []
        try:
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: any(isinstance(e, StanzaReceived) for d, e in b.events if d == "in"))
            link = a.gateway.links[key]
            assert link.conn is not None
            watched = link.conn
            real_close = Connection.close

            async def close(self: Connection) -> None:
                if self is watched:
                    in_table_at_close.append(a.gateway.links.get(key) is link)
                await real_close(self)

            monkeypatch.setattr(Connection, "close", close)  # (an instance's: Connection has __slots__)

            def on_event(direction: str, ev: object) -> None:
                if direction == "out" and isinstance(ev, StreamClosed) and ev.by_peer:
                    late = Element("{jabber:server}presence", {"from": "x@a.test", "to": "y@b.test", "id": "late"})
                    a.gateway.send_to_partner("a.test", "b.test", late)

            a.gateway.listeners.append(on_event)
            b.events.clear()
            b.gateway.close_streams()
            await _wait(lambda: any(isinstance(e, StanzaReceived) and e.element.get("id") == "late"
                                    for d, e in b.events if d == "in"))
            assert in_table_at_close == [False]
            assert a.gateway.stats.bounces["remote-server-not-found"] == 0
            assert len([e for d, e in a.events if d == "out" and isinstance(e, Authenticated)]) == 2
        finally:
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())


def test_connection_limit_counts_outbound_links(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """connection_limit 1, taken by an inbound stream: a new outbound link is not made, its stanza comes back
    resource-constraint, and the failure is recorded and logged."""

    async def main() -> None:
        a, comp = await _alone(tmp_path, "optional/optional/true", connection_limit=1)
        try:
            r1, w1 = await asyncio.open_connection("127.0.0.16", 5269)
            w1.write(HEADER)
            assert b"<stream:features" in await asyncio.wait_for(r1.read(4096), 5)
            comp.say("alice@a.test", "bob@b.test", "over the limit")
            assert error_condition(await comp.next_error(5)) == "resource-constraint"
            assert a.gateway.stats.negotiation_failures["connection_limit"] == 1
            w1.close()
        finally:
            await comp.stop()
            await a.gateway.stop()

    with caplog.at_level(logging.WARNING, logger="fedgate"):
        asyncio.run(main())
    assert any("connection limit (1) is reached" in r.getMessage() for r in caplog.records)


def test_stanzas_routed_after_the_transport_closed_are_not_dropped(tmp_path: Path) -> None:
    """Our authenticated outbound stream's transport goes away under it; stanzas routed before the link has
    noticed are neither handed to the dead socket (which would drop them in silence) nor lost: each is sent on
    a new stream or bounced."""

    async def main() -> None:
        a, b = await _two(tmp_path, False)
        try:
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: any(isinstance(e, StanzaReceived) for d, e in b.events if d == "in"))
            b.events.clear()
            link = a.gateway.links[("a.test", "b.test")]
            assert link.conn is not None
            assert link.conn.transport is not None
            link.conn.transport.abort()
            for i in range(3):
                a.gateway.send_to_partner("a.test", "b.test", Element(
                    "{jabber:server}presence", {"from": "x@a.test", "to": "y@b.test", "id": f"after-{i}"}))

            def accounted() -> int:
                got = {e.element.get("id") for d, e in b.events if d == "in" and isinstance(e, StanzaReceived)}
                return len(got) + sum(a.gateway.stats.bounces.values())

            await _wait(lambda: accounted() >= 3)
            assert accounted() == 3
        finally:
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())


def test_two_links_started_together_at_the_limit_minus_one(tmp_path: Path) -> None:
    """connection_limit 1 and nothing open: of two outbound links started in the same moment, one may connect
    (nobody listens: remote-server-not-found) and the other is over the limit (resource-constraint)."""

    async def main() -> None:
        a, comp = await _alone(tmp_path, "optional/optional/true", connection_limit=1)
        a.set_partner("c.test", Settings.parse_triple("optional/optional/true"))
        a.gateway.config.resolver = Resolver(static_routes={"b.test": "127.0.0.17:5269", "c.test": "127.0.0.19:5269"},
                                             use_srv=False)
        try:
            for to in ("bob@b.test", "carol@c.test"):  # routed in the same moment
                a.gateway.send_to_partner("a.test", to.split("@")[1], Element(
                    "{jabber:server}message", {"from": "alice@a.test", "to": to, "type": "chat"}))
            got = sorted([error_condition(await comp.next_error(5)), error_condition(await comp.next_error(5))])
            assert got == ["remote-server-not-found", "resource-constraint"], got
        finally:
            await comp.stop()
            await a.gateway.stop()

    asyncio.run(main())


def test_idle_streams_hibernate_and_wake_on_the_next_stanza(tmp_path: Path) -> None:
    """After a second without input, both ends of an authenticated S2S stream and the component streams hold
    no expat parser; the next stanza wakes them, on the same streams, and goes through unchanged."""

    async def main() -> None:
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.16", ROUTES, component_port=5347)
        b = await make_node(tmp_path, ca, "b.test", "127.0.0.17", ROUTES, component_port=5347)
        s = Settings.parse_triple("required/required/false")
        a.set_partner("b.test", s, partner_type="federated")
        b.set_partner("a.test", s, partner_type="federated")
        comp_a = EchoComponent("a.test", "secret", "127.0.0.16", 5347)
        comp_b = EchoComponent("b.test", "secret", "127.0.0.17", 5347)
        await comp_a.start()
        await comp_b.start()
        try:
            def parsers() -> list[object]:
                inbound = [m._parser for m, _ in b.gateway._inbound_machines.values()]
                outbound = [link.machine._parser for link in a.gateway.links.values() if link.machine]
                components = [m._parser for m, _ in (*a.gateway.components.values(), *b.gateway.components.values())]
                return [*inbound, *outbound, *components]

            def tls_sessions() -> list[TlsSession]:
                conns = [c for _, c in (*a.gateway._inbound_machines.values(), *b.gateway._inbound_machines.values())]
                conns += [link.conn for g in (a.gateway, b.gateway) for link in g.links.values() if link.conn]
                return [c.tls for c in conns if c.tls is not None]

            comp_a.say("alice@a.test", "bob@b.test", "ping 1")
            reply = await comp_a.next_message(10)
            assert str(reply["body"]) == "pong 1"
            authentications = sum(isinstance(e, Authenticated) for _, e in a.events + b.events)
            await asyncio.sleep(1.6)
            asleep = parsers()
            assert len(asleep) >= 4 and all(p.hibernating for p in asleep), [p.hibernating for p in asleep]
            # Both TLS streams (a to b, b to a), at both ends, left OpenSSL for fedgate.tls13.
            sessions = tls_sessions()
            assert len(sessions) == 4 and all(t.hibernated for t in sessions), [t.hibernated for t in sessions]
            for text in ("ping 2 <&> 😀", "ping 3 " + "x" * 40000):  # the second one spans several TLS records
                comp_a.say("alice@a.test", "bob@b.test", text)
                reply = await comp_a.next_message(10)
                assert str(reply["body"]) == text.replace("ping", "pong", 1)
                await asyncio.sleep(0.3)
            assert sum(isinstance(e, Authenticated) for _, e in a.events + b.events) == authentications
            assert tls_sessions() == sessions  # the same streams carried them
        finally:
            await comp_a.stop()
            await comp_b.stop()
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())
