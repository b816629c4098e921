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
from fedgate.policy import Settings
from fedgate.resolver import Resolver
from fedgate.s2s import Authenticated, StreamClosed

from .net.components import EchoComponent, error_condition
from .net.gateways import make_node
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
            assert not any(isinstance(e, StreamClosed) for _, e in b.events), b.events
            a.gateway.close_streams()
            await _wait(lambda: not a.gateway.links and not b.gateway._inbound_machines)
            b.events.clear()
            # Without them, b closes the idle stream with connection-timeout.
            a.set_partner("b.test", s, enable_keepalive=False)
            a.gateway.send_to_partner("a.test", "b.test", _presence())
            await _wait(lambda: any(isinstance(e, StreamClosed) for _, e in b.events), 6)
            closed = [e for _, e in b.events if isinstance(e, StreamClosed)]
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
