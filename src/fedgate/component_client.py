"""A minimal asyncio XEP-0114 component client: connect, hand-shake, send stanzas, await messages.

For ``fedgate demo`` and tests, so that a fresh installation can show a message crossing two gateways with no
XMPP library installed. The stream is ``jabber:component:accept``; the handshake is
``fedgate.component.handshake_digest`` of the stream id the server announced and the shared secret.

Stanzas are ``xml.etree.ElementTree.Element`` objects in the ``jabber:component:accept`` namespace (as parsed);
:meth:`ComponentClient.send_message` builds one for you.
"""

from __future__ import annotations

import asyncio
import contextlib
from xml.etree.ElementTree import Element, SubElement

from .component import COMPONENT_NS, handshake_digest
from .errors import StreamError
from .xmlstream import (
    STREAM_CLOSE,
    ElementReceived,
    StreamClosed,
    StreamOpened,
    XmlEvent,
    XmlStreamParser,
    serialize,
    stream_header,
)

__all__ = ["COMPONENT_NS", "ComponentClient", "ComponentError", "body_of", "error_condition"]

MESSAGE = f"{{{COMPONENT_NS}}}message"
BODY = f"{{{COMPONENT_NS}}}body"
_HANDSHAKE = f"{{{COMPONENT_NS}}}handshake"
_READ_SIZE = 65536


class ComponentError(Exception):
    """The server refused the component (bad secret, unknown domain) or closed the stream."""


class ComponentClient:
    """One component connection to a gateway's component listener."""

    def __init__(self, domain: str, secret: str, host: str, port: int) -> None:
        self.domain = domain
        self.host = host
        self.port = port
        self._secret = secret
        self._parser = XmlStreamParser()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._received: asyncio.Queue[Element | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.closed_reason: str | None = None

    async def connect(self, timeout: float = 5.0) -> None:
        """Open the stream and complete the handshake; raises :class:`ComponentError` when refused."""
        await asyncio.wait_for(self._connect(), timeout)

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(stream_header(default_ns=COMPONENT_NS, to=self.domain, from_=None, version=None))
        stream_id: str | None = None
        while True:
            for event in await self._read_events():
                if isinstance(event, StreamOpened):
                    stream_id = event.attrs.get("id")
                    if not stream_id:
                        raise ComponentError("the server's stream header has no id")
                    handshake = Element(_HANDSHAKE)
                    handshake.text = handshake_digest(stream_id, self._secret)
                    self._writer.write(serialize(handshake, default_ns=COMPONENT_NS))
                elif isinstance(event, ElementReceived) and event.element.tag == _HANDSHAKE:
                    self._task = asyncio.ensure_future(self._read_loop())
                    return
                elif isinstance(event, ElementReceived):
                    raise ComponentError(_describe(event.element))
                elif isinstance(event, StreamClosed):
                    raise ComponentError("the server closed the stream")

    async def _read_events(self) -> list[XmlEvent]:
        assert self._reader is not None
        data = await self._reader.read(_READ_SIZE)
        if not data:
            raise ComponentError("the server closed the connection")
        try:
            return self._parser.feed(data)
        except StreamError as exc:
            raise ComponentError(f"{exc.condition}: {exc.text}") from exc

    async def _read_loop(self) -> None:
        try:
            while True:
                for event in await self._read_events():
                    if isinstance(event, ElementReceived):
                        self._received.put_nowait(event.element)
                    elif isinstance(event, StreamClosed):
                        raise ComponentError("the server closed the stream")
        except (ComponentError, ConnectionError) as exc:
            self.closed_reason = str(exc)
        finally:
            self._received.put_nowait(None)

    def send(self, stanza: Element) -> None:
        """Write one stanza (elements in ``jabber:component:accept``)."""
        if self._writer is None or self._writer.is_closing():
            raise ComponentError("not connected")
        self._writer.write(serialize(stanza, default_ns=COMPONENT_NS))

    def send_message(self, from_: str, to: str, body: str, *, id: str | None = None) -> Element:
        """Send a chat message with ``body``; returns the stanza sent."""
        message = Element(MESSAGE, {"from": from_, "to": to, "type": "chat"})
        if id is not None:
            message.set("id", id)
        SubElement(message, BODY).text = body
        self.send(message)
        return message

    async def next_stanza(self, timeout: float = 5.0) -> Element:
        """The next stanza the gateway delivered; raises :class:`ComponentError` when the stream ended and
        ``TimeoutError`` when none came in time."""
        stanza = await asyncio.wait_for(self._received.get(), timeout)
        if stanza is None:
            self._received.put_nowait(None)  # stays ended for later callers
            raise ComponentError(self.closed_reason or "the stream ended")
        return stanza

    async def next_message(self, timeout: float = 5.0) -> Element:
        """The next ``<message/>`` (an error reply included: check ``type``), skipping other stanzas."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            stanza = await self.next_stanza(max(0.0, deadline - loop.time()))
            if stanza.tag == MESSAGE:
                return stanza

    def drain(self) -> list[Element]:
        """Take every stanza already received without waiting (the end-of-stream marker stays)."""
        taken: list[Element] = []
        while not self._received.empty():
            stanza = self._received.get_nowait()
            if stanza is None:
                self._received.put_nowait(None)
                break
            taken.append(stanza)
        return taken

    async def close(self) -> None:
        """``</stream:stream>``, then the socket."""
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(Exception):
                self._writer.write(STREAM_CLOSE)
                await self._writer.drain()
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 2)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def body_of(stanza: Element) -> str | None:
    """The text of a message's ``<body/>`` (None without one)."""
    body = stanza.find(BODY)
    return None if body is None else (body.text or "")


def error_condition(stanza: Element) -> str | None:
    """The defined condition of an error stanza (``service-unavailable``...), None when it is no error."""
    if stanza.get("type") != "error":
        return None
    error = stanza.find(f"{{{COMPONENT_NS}}}error")
    if error is None:
        return "undefined-condition"
    for child in error:
        if child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return "undefined-condition"


def _describe(element: Element) -> str:
    if element.tag.endswith("}error"):
        for child in element:
            if not child.tag.endswith("}text"):
                return child.tag.split("}", 1)[1]
    return element.tag

