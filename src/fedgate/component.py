"""Sans-IO XEP-0114 component stream, server side: we accept external components.

Bytes in (``receive_data``), events out, bytes to write (``data_to_send``); no sockets, no clock.

Flow: the component opens ``<stream:stream xmlns='jabber:component:accept' to='comp.example'>``; we answer
with a header ``from='comp.example'`` and a fresh ``id``; the component sends ``<handshake>`` with the
lower-case hex SHA-1 of stream id + secret; we answer ``<handshake/>`` (or ``not-authorized``).

Stanzas leave this machine in the ``jabber:server`` namespace (the router's), and ``send_stanza`` takes
``jabber:server`` stanzas; the conversion only touches elements in the stanza namespace down from the
stanza itself, never payload namespaces.

Any :class:`StreamError` ends the stream here: ``data_to_send()`` then holds ``<stream:error>`` and
``</stream:stream>`` (preceded by our stream header if it had not gone out yet), and a
:class:`ComponentClosed` event carries the condition. The I/O layer writes the bytes and closes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from xml.etree.ElementTree import Element

from .errors import StreamError
from .partners import FieldError, normalize_domain
from .stanza import JidError, parse_jid
from .xmlstream import (
    STREAM_CLOSE,
    ElementReceived,
    StreamClosed,
    StreamOpened,
    XmlEvent,
    XmlStreamParser,
    rename_namespace,
    serialize,
    stream_error,
    stream_header,
)

COMPONENT_NS = "jabber:component:accept"
SERVER_NS = "jabber:server"
HANDSHAKE = f"{{{COMPONENT_NS}}}handshake"
_STANZA_TAGS = frozenset(f"{{{COMPONENT_NS}}}{kind}" for kind in ("message", "presence", "iq"))

SecretLookup = Mapping[str, str] | Callable[[str], str | None]


@dataclass(frozen=True)
class ComponentAuthenticated:
    """The component proved it knows the secret for ``domain`` (normalised)."""

    domain: str


@dataclass(frozen=True)
class StanzaReceived:
    """A stanza from the component, now in the ``jabber:server`` namespace, ``from`` checked."""

    element: Element


@dataclass(frozen=True)
class ComponentClosed:
    """The stream is over (``condition`` None: closed cleanly); flush ``data_to_send()``, close the transport."""

    condition: str | None
    text: str = ""


ComponentEvent = ComponentAuthenticated | StanzaReceived | ComponentClosed


class _State(Enum):
    HEADER = "header"  # waiting for the component's stream header
    HANDSHAKE = "handshake"  # header answered, waiting for <handshake>
    OPEN = "open"  # authenticated
    CLOSING = "closing"  # our </stream:stream> is out, the component's is awaited; its stanzas still count
    CLOSED = "closed"


def handshake_digest(stream_id: str, secret: str) -> str:
    """XEP-0114: lower-case hex SHA-1 of the stream id followed by the secret."""
    return hashlib.sha1((stream_id + secret).encode("utf-8")).hexdigest()


def _default_stream_id() -> str:
    return _secrets.token_hex(16)


class ComponentStream:
    """One accepted component connection.

    ``secrets`` maps a (normalised) component domain to its shared secret, or is a function doing so that
    returns None for an unknown domain.
    """

    def __init__(
        self,
        secrets: SecretLookup,
        stream_id_factory: Callable[[], str] = _default_stream_id,
        *,
        max_stanza_size: int = 262144,
    ) -> None:
        self._secrets = secrets
        self._stream_id_factory = stream_id_factory
        self._parser = XmlStreamParser(max_stanza_size=max_stanza_size)
        self._out = bytearray()
        self._state = _State.HEADER
        self._header_sent = False
        self._secret = ""
        self.domain: str | None = None
        """The component's domain once its header named one we know (normalised)."""
        self.stream_id: str | None = None

    @property
    def authenticated(self) -> bool:
        return self._state is _State.OPEN

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def closing(self) -> bool:
        """We closed the stream (``close()`` without an error) and wait for the component's
        ``</stream:stream>``; what it sent before it read ours is still received (RFC 6120 4.4)."""
        return self._state is _State.CLOSING

    # -- the I/O layer's side ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ComponentEvent]:
        """Bytes from the component; returns what they mean. Never raises :class:`StreamError`."""
        if self._state is _State.CLOSED:
            return []
        events: list[ComponentEvent] = []
        try:
            for xml_event in self._parser.feed(data):
                self._handle(xml_event, events)
                if self.closed:
                    break
        except StreamError as exc:
            self._end(exc.condition, exc.text)
            events.append(ComponentClosed(exc.condition, exc.text))
        return events

    def send_stanza(self, element: Element) -> bool:
        """Queue a ``jabber:server`` stanza for the component; False (not taken: the caller bounces it) unless
        authenticated and open (not after our close)."""
        if self._state is not _State.OPEN:
            return False
        # Written with jabber:server as the default namespace onto a stream whose default is
        # jabber:component:accept: unprefixed elements are read in the component namespace, no copy needed.
        self._out += serialize(element, default_ns=SERVER_NS)
        return True

    def close(self, condition: str | None = None, text: str = "") -> None:
        """End the stream from our side, with a stream error when ``condition`` is given. Without one, an
        authenticated stream is ``closing``: we send nothing more, but the stanzas the component sent before
        it read our ``</stream:stream>`` are still received, until its own closes the stream."""
        if self._state is _State.OPEN and condition is None:
            self._out += STREAM_CLOSE
            self._state = _State.CLOSING
        elif self._state not in (_State.CLOSED, _State.CLOSING):
            self._end(condition, text)

    def hibernate(self) -> bool:
        """Free the XML parser's state while the stream is idle between stanzas (the next bytes wake it)."""
        return self._parser.hibernate()

    def release(self) -> None:
        """The connection is gone: free the parser now."""
        self._parser.release()

    def data_to_send(self) -> bytes:
        """Everything queued for the component since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- internals -----------------------------------------------------------------------------------------

    def _handle(self, event: XmlEvent, events: list[ComponentEvent]) -> None:
        if self._state is _State.CLOSING:
            self._handle_while_closing(event, events)
        elif isinstance(event, ElementReceived):
            if self._state is _State.OPEN:
                events.append(StanzaReceived(self._check_stanza(event.element)))
            elif self._state is _State.HANDSHAKE and event.element.tag == HANDSHAKE:
                events.append(self._handshake(event.element))
            else:
                raise StreamError("not-authorized", "stanza before the handshake")
        elif isinstance(event, StreamOpened):
            self._open(event)
        elif isinstance(event, StreamClosed):
            self._end(None, "")
            events.append(ComponentClosed(None))

    def _handle_while_closing(self, event: XmlEvent, events: list[ComponentEvent]) -> None:
        if isinstance(event, ElementReceived):
            # A stanza that breaks the rules cannot be answered with a stream error after our close: passed
            # over, and what follows is still read.
            with contextlib.suppress(StreamError):
                events.append(StanzaReceived(self._check_stanza(event.element)))
        elif isinstance(event, StreamClosed):
            self._state = _State.CLOSED
            events.append(ComponentClosed(None))

    def _open(self, event: StreamOpened) -> None:
        self.stream_id = self._stream_id_factory()
        if event.default_ns != COMPONENT_NS:
            raise StreamError("invalid-namespace", f"default namespace {event.default_ns!r}, not {COMPONENT_NS}")
        to = event.attrs.get("to")
        if not to:
            raise StreamError("improper-addressing", "no 'to' on the component's stream header")
        try:
            domain = normalize_domain(to)
        except FieldError:
            raise StreamError("host-unknown", "not a domain") from None
        lookup = self._secrets
        secret = lookup.get(domain) if isinstance(lookup, Mapping) else lookup(domain)
        if secret is None:
            raise StreamError("host-unknown", f"no component {domain} here")
        self.domain = domain
        self._secret = secret
        self._send_header()
        self._state = _State.HANDSHAKE

    def _send_header(self) -> None:
        if self.stream_id is None:
            self.stream_id = self._stream_id_factory()
        self._out += stream_header(default_ns=COMPONENT_NS, to=None, from_=self.domain, id=self.stream_id, version=None)
        self._header_sent = True

    def _handshake(self, element: Element) -> ComponentAuthenticated:
        assert self.stream_id is not None and self.domain is not None
        given = (element.text or "").strip().lower().encode("utf-8")
        expected = handshake_digest(self.stream_id, self._secret).encode("ascii")
        self._secret = ""
        if not hmac.compare_digest(given, expected):
            raise StreamError("not-authorized", "handshake does not match the secret")
        self._out += b"<handshake/>"
        self._state = _State.OPEN
        return ComponentAuthenticated(self.domain)

    def _check_stanza(self, element: Element) -> Element:
        if element.tag not in _STANZA_TAGS:
            raise StreamError("unsupported-stanza-type", f"{element.tag} is not a stanza")
        sender = element.get("from")
        if not sender:
            raise StreamError("improper-addressing", "stanza without 'from'")
        try:
            from_domain = parse_jid(sender).domain
        except JidError:
            raise StreamError("invalid-from", "'from' is not a JID") from None
        if from_domain != self.domain:
            raise StreamError("invalid-from", f"'from' domain {from_domain} is not {self.domain}")
        if not element.get("to"):
            raise StreamError("improper-addressing", "stanza without 'to'")
        return rename_namespace(element, COMPONENT_NS, SERVER_NS)

    def _end(self, condition: str | None, text: str) -> None:
        if self._state is _State.CLOSING:  # (our </stream:stream> is out: nothing more is written)
            self._state = _State.CLOSED
            return
        if condition is not None:
            if not self._header_sent:  # RFC 6120 section 4.9.1.1: open our stream before the error
                self._send_header()
            self._out += stream_error(condition, text or None)
        if self._header_sent:
            self._out += STREAM_CLOSE
        self._state = _State.CLOSED
        self._secret = ""
