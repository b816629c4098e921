"""A raw S2S peer for the negative tests: it writes exact bytes, runs STARTTLS (either side, with a chosen
certificate) through ``fedgate.tls.TlsSession``, and reads what comes back with ``fedgate.xmlstream``'s
parser, until a stream error or a close. It also listens as a fake partner server on its own loopback address.

Everything it receives is kept: ``wire`` (the socket's bytes, TLS records included) and ``received`` (the
plaintext), so a test can assert what never appeared on the wire."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from fedgate.dialback import DIALBACK_FEATURE_NS, DIALBACK_NS
from fedgate.errors import StreamError
from fedgate.tls import CertificateStatus, TlsContext, TlsSession
from fedgate.xmlstream import (
    STREAM_CLOSE,
    STREAM_NS,
    STREAMS_ERROR_NS,
    ElementReceived,
    StreamClosed,
    StreamOpened,
    XmlEvent,
    XmlStreamParser,
    escape_attr,
)

SERVER_NS = "jabber:server"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
PROCEED = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


def header(
    to: str | None,
    from_: str | None,
    *,
    ns: str = SERVER_NS,
    version: str | None = "1.0",
    stream_id: str | None = None,
    dialback: bool = True,
) -> bytes:
    """An S2S stream header with exactly the attributes asked for."""
    parts = [f"<?xml version='1.0'?><stream:stream xmlns='{escape_attr(ns)}' xmlns:stream='{STREAM_NS}'"]
    if dialback:
        parts.append(f" xmlns:db='{DIALBACK_NS}'")
    for name, value in (("to", to), ("from", from_), ("id", stream_id), ("version", version)):
        if value is not None:
            parts.append(f" {name}='{escape_attr(value)}'")
    return ("".join(parts) + ">").encode()


def features(*, starttls: bool = False, required: bool = False, dialback: bool = True) -> bytes:
    body = ""
    if starttls:
        body += f"<starttls xmlns='{TLS_NS}'>" + ("<required/>" if required else "") + "</starttls>"
    if dialback:
        body += f"<dialback xmlns='{DIALBACK_FEATURE_NS}'><errors/></dialback>"
    return f"<stream:features>{body}</stream:features>".encode()


def error_condition(el: Element) -> str | None:
    """The RFC 6120 condition of a ``<stream:error/>`` (or any element whose children name one)."""
    for child in el:
        ns, _, local = child.tag[1:].partition("}")
        if ns == STREAMS_ERROR_NS and local != "text":
            return local
    return None


@dataclass
class Outcome:
    """What a stream ended with, from the peer's side."""

    elements: list[Element]  # first-level elements received since the last read (features, answers, errors)
    condition: str | None  # the stream error condition, if one came
    closed: bool  # </stream:stream> arrived
    eof: bool  # the TCP connection ended
    reset: bool  # ...with a RST


@dataclass
class RawPeer:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    tls: TlsSession | None = None
    wire: bytearray = field(default_factory=bytearray)  # every byte from the socket
    received: bytearray = field(default_factory=bytearray)  # the plaintext
    headers: list[dict[str, str]] = field(default_factory=list)  # the peer's stream headers, in order
    eof: bool = False
    closed: bool = False
    reset: bool = False

    def __post_init__(self) -> None:
        self._parser = XmlStreamParser(max_stanza_size=1 << 24)
        self._events: list[XmlEvent] = []

    @classmethod
    async def connect(cls, host: str, port: int = 5269, *, source: str | None = None) -> RawPeer:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0) if source else None)
        return cls(reader, writer)

    # -- writing ---------------------------------------------------------------------------------------------
    def send(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if self.tls is not None:
            self.tls.send(raw)
            raw = self.tls.data_to_send()
        self.writer.write(raw)

    async def starttls(self, context: TlsContext, *, server_side: bool, server_name: str | None = None,
                       timeout: float = 5) -> None:
        """Run the TLS handshake now (after ``<proceed/>``); afterwards a new stream starts."""
        self.tls = TlsSession(context, server_side=server_side, server_name=server_name)
        if not server_side:
            self.tls.start()
            self.writer.write(self.tls.data_to_send())
        self.restart()
        async with asyncio.timeout(timeout):
            while not self.tls.handshake_complete:
                raw = await self.reader.read(65536)
                if not raw:
                    raise ConnectionError("closed during the TLS handshake")
                self.wire += raw
                plain = self.tls.receive_data(raw)
                self.writer.write(self.tls.data_to_send())
                self._feed(plain)  # the new stream's first bytes may come with the last handshake record

    def peer_certificate(self) -> CertificateStatus:
        assert self.tls is not None
        return self.tls.peer_certificate()

    def restart(self) -> None:
        """A stream restart (after SASL success): parse a new stream."""
        self._parser.reset()
        self._events.clear()

    # -- reading ---------------------------------------------------------------------------------------------
    def _feed(self, plain: bytes) -> None:
        if not plain:
            return
        self.received += plain
        try:
            self._events += self._parser.feed(plain)
        except StreamError as exc:  # the gateway wrote something our parser refuses: a failure of its own
            raise AssertionError(f"ill-formed stream from the gateway ({exc}): {bytes(self.received)!r}") from exc

    async def _read_more(self) -> bool:
        if self.eof:
            return False
        try:
            raw = await self.reader.read(65536)
        except ConnectionResetError:
            self.reset = True  # a TCP RST: unread bytes in our receive buffer may have been thrown away
            raw = b""
        if not raw:
            self.eof = True
            return False
        self.wire += raw
        if self.tls is None:
            self._feed(raw)
            return True
        plain = self.tls.receive_data(raw)
        out = self.tls.data_to_send()
        if out:
            self.writer.write(out)
        self._feed(plain)
        if self.tls.closed_by_peer:
            self.eof = True
        return True

    async def next_event(self, timeout: float = 5) -> XmlEvent | None:
        """The next parse event, or None at end of connection."""
        async with asyncio.timeout(timeout):
            while not self._events:
                if not await self._read_more():
                    return None
        event = self._events.pop(0)
        if isinstance(event, StreamOpened):
            self.headers.append(event.attrs)
        elif isinstance(event, StreamClosed):
            self.closed = True
        return event

    async def expect_header(self, timeout: float = 5) -> dict[str, str]:
        event = await self.next_event(timeout)
        if not isinstance(event, StreamOpened):
            raise AssertionError(f"expected a stream header, got {event!r}; received {bytes(self.received)!r}")
        return event.attrs

    async def next_element(self, timeout: float = 5) -> Element:
        """The next first-level element; an AssertionError if the stream ends or a header comes instead."""
        event = await self.next_event(timeout)
        if not isinstance(event, ElementReceived):
            raise AssertionError(f"expected an element, got {event!r}; received {bytes(self.received)!r}")
        return event.element

    async def read_until_closed(self, timeout: float = 5) -> Outcome:
        """Read until ``</stream:stream>`` or the end of the connection: the elements, the stream error."""
        elements: list[Element] = []
        condition = None
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next_event(timeout)
                if event is None or isinstance(event, StreamClosed):
                    break
                if isinstance(event, ElementReceived):
                    elements.append(event.element)
                    if event.element.tag == f"{{{STREAM_NS}}}error":
                        condition = error_condition(event.element)
            # After </stream:stream>, the gateway closes the TCP connection too.
            while await self._read_more():
                pass
        return Outcome(elements, condition, self.closed, self.eof, self.reset)

    async def poll(self, seconds: float) -> bool:
        """Read what arrives within ``seconds`` (kept for :meth:`next_event`); whether anything did."""
        before = len(self.received)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._read_more()
        return len(self.received) > before or self.eof

    async def quiet(self, seconds: float = 0.2) -> list[XmlEvent]:
        """Whatever arrives within ``seconds`` (to show that nothing, or no error, came)."""
        got: list[XmlEvent] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    event = await self.next_event(seconds)
                    if event is None:
                        break
                    got.append(event)
        return got

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if not self.writer.is_closing():
                self.send(STREAM_CLOSE)
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1)


async def listen(host: str, handler: Callable[[RawPeer], Awaitable[None]], port: int = 5269) -> asyncio.Server:
    """A fake server on ``host:port``: each connection becomes a :class:`RawPeer` handed to ``handler``
    (which the connection is closed after)."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = RawPeer(reader, writer)
        try:
            await handler(peer)
        except (TimeoutError, ConnectionError, AssertionError):
            pass
        finally:
            await peer.close()

    return await asyncio.start_server(accept, host, port, reuse_address=True)


@dataclass
class FakePartner:
    """A scripted partner server for one domain: it answers stream headers (offering STARTTLS only when it
    has a TLS context), runs STARTTLS as the server, and answers ``<db:verify/>`` with what ``verdict``
    says for the key ("valid", "invalid"). It records every connection."""

    domain: str
    tls: TlsContext | None = None
    verdict: Callable[[Element], str] = lambda _el: "invalid"
    stream_id: str = "fake-stream-id"
    peers: list[RawPeer] = field(default_factory=list)
    verify_requests: list[Element] = field(default_factory=list)
    other: list[Element] = field(default_factory=list)

    async def __call__(self, peer: RawPeer) -> None:
        self.peers.append(peer)
        attrs = await peer.expect_header()
        while True:
            peer.send(header(attrs.get("from"), self.domain, stream_id=self.stream_id))
            peer.send(features(starttls=self.tls is not None and peer.tls is None))
            while True:
                event = await peer.next_event()
                if event is None or isinstance(event, StreamClosed):
                    return
                if isinstance(event, StreamOpened):
                    attrs = event.attrs
                    break
                assert isinstance(event, ElementReceived)
                el = event.element
                if el.tag == f"{{{TLS_NS}}}starttls" and self.tls is not None:
                    peer.send(PROCEED)
                    await peer.starttls(self.tls, server_side=True)
                elif el.tag == f"{{{DIALBACK_NS}}}verify":
                    self.verify_requests.append(el)
                    peer.send(
                        f"<db:verify from='{escape_attr(el.get('to', ''))}' to='{escape_attr(el.get('from', ''))}'"
                        f" id='{escape_attr(el.get('id', ''))}' type='{self.verdict(el)}'/>"
                    )
                else:
                    self.other.append(el)

    @property
    def plaintext(self) -> bytes:
        return b"".join(bytes(p.received) for p in self.peers)

    @property
    def wire(self) -> bytes:
        return b"".join(bytes(p.wire) for p in self.peers)
