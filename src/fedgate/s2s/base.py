"""What the inbound and outbound S2S machines share: parsing, the output buffer, closing, TLS state."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from ..dialback import DIALBACK_NS
from ..errors import StreamError
from ..policy import Settings
from ..stanza import JidError, parse_jid
from ..xmlstream import (
    STREAM_CLOSE,
    STREAM_NS,
    ElementReceived,
    XmlStreamParser,
    serialize,
    stream_error,
    stream_header,
)
from ..xmlstream import (
    StreamClosed as XmlStreamClosed,
)
from ..xmlstream import (
    StreamOpened as XmlStreamOpened,
)
from .events import S2SEvent, StreamClosed

SERVER_NS = "jabber:server"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
STREAM_ERRORS_NS = "urn:ietf:params:xml:ns:xmpp-streams"
FEATURES = f"{{{STREAM_NS}}}features"
STREAM_ERROR = f"{{{STREAM_NS}}}error"
STANZA_TAGS = frozenset(f"{{{SERVER_NS}}}{name}" for name in ("message", "presence", "iq"))


class PeerCertificate(Protocol):
    """What the machines need from ``fedgate.tls.CertificateStatus``."""

    @property
    def presented(self) -> bool: ...

    @property
    def chain_valid(self) -> bool: ...

    def valid_for(self, domain: str) -> bool: ...


@dataclass(frozen=True)
class TlsInfo:
    version: str | None
    cipher: str | None
    peer: PeerCertificate | None


@dataclass
class S2SContext:
    """Everything a machine consults, read once and passed down (no I/O behind these callables beyond an
    in-memory lookup)."""

    is_local_domain: Callable[[str], bool]
    settings_for: Callable[[str], Settings | None]
    dialback_secret: str
    max_stanza_size: int = 262144
    # Whether one of our domains has a certificate to present (STARTTLS as the receiving side, SASL EXTERNAL as
    # the initiating one).
    has_certificate: Callable[[str], bool] = field(default=lambda _domain: True)
    new_stream_id: Callable[[], str] = field(default=lambda: secrets.token_hex(16))


def domain_of(jid: str | None) -> str | None:
    """The domain part of a JID string as ``fedgate.stanza.parse_jid`` reads it (RFC 7622: the local part ends
    at the first '@'), normalised; None for a missing, empty or malformed address (``@a.test``,
    ``x@evil@a.test``)."""
    if not jid:
        return None
    try:
        return parse_jid(jid).domain
    except JidError:
        return None


def check_version(value: str | None) -> None:
    """RFC 6120 4.7.5: versions compare numerically, major then minor. Any 1.x is answered as 1.0 (our header
    always says 1.0, the lower of the two); a missing version (0.9, before stream features) or another major
    version is ``unsupported-version`` (4.9.3.25), since what this gateway negotiates needs XMPP 1.0."""
    major, dot, minor = (value or "").partition(".")
    if not (dot and major.isdigit() and minor.isdigit()) or int(major) != 1:
        raise StreamError("unsupported-version", "XMPP version 1.0 is required")


class StreamMachine:
    """Base: bytes in, events out, bytes to send. No sockets, clocks or asyncio."""

    direction: str = ""

    def __init__(self, ctx: S2SContext) -> None:
        self._ctx = ctx
        self._parser = XmlStreamParser(max_stanza_size=ctx.max_stanza_size)
        self._out = bytearray()
        self._header_sent = False
        self._close_sent = False
        # closed: the stream is over, nothing more is read. closing: our </stream:stream> is out on a stream
        # with authenticated domains and the peer's is awaited (RFC 6120 4.4), see close().
        self.closed = False
        self.closing = False
        # The peer's </stream:stream> or stream error arrived: the stream ended as a stream, not as a transport
        # that just went away.
        self.peer_ended_stream = False
        # While closing after our stream error: its condition (what arrives then is refused, not delivered).
        self.refusing: str | None = None
        self.secure = False
        self.tls: TlsInfo | None = None
        self._prefixes: dict[str, str] = {"stream": STREAM_NS}

    # -- public surface -------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> list[S2SEvent]:
        if self.closed:
            return []
        events: list[S2SEvent] = []
        try:
            for xml_event in self._parser.feed(data):
                if self.closed:
                    break
                if isinstance(xml_event, XmlStreamOpened):
                    if not self.closing:  # (a restart racing our close: nothing is negotiated any more)
                        self._on_header(xml_event, events)
                elif isinstance(xml_event, ElementReceived):
                    el = xml_event.element
                    if el.tag == STREAM_ERROR:
                        self.peer_ended_stream = True
                        self._on_peer_error(el, events)
                    elif self.closing:
                        self._on_element_while_closing(el, events)
                    else:
                        self._on_element(el, events)
                elif isinstance(xml_event, XmlStreamClosed):
                    self.peer_ended_stream = True
                    self._on_peer_close(events)
        except StreamError as exc:
            self._fail(exc, events)
        return events

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def close(self, condition: str | None = None, text: str = "") -> list[S2SEvent]:
        """Close from our side (time-out, shutdown, policy change): optional stream error, then
        ``</stream:stream>``; the one ``StreamClosed`` of the stream says so.

        A stream on which a domain is authenticated is then ``closing``, not yet ``closed`` (RFC 6120 4.4):
        we send nothing more, but keep reading until the peer's ``</stream:stream>`` (or the caller's linger
        time-out), since what the peer sent before it read our close is still its to have processed. After a
        plain close those stanzas are ``StanzaReceived`` as before. After our stream error they are
        ``StanzaRefused`` instead, with that condition: RFC 6120 4.9.1.1 makes a stream error unrecoverable,
        the stream is no longer one we accept stanzas on (a policy-violation means its authentication is no
        longer allowed), so the caller returns each to its sender with an error rather than delivering it, and
        none is dropped in silence. A stream where nobody is authenticated has nothing of the peer's to
        process: it is ``closed`` at once."""
        if self.closed or self.closing:
            return []
        events: list[S2SEvent] = []
        if condition:
            self._fail(StreamError(condition, text), events, ours=True)
        else:
            self._write_close()
            self._closed_by_us()
            events.append(StreamClosed(None, text, by_peer=False))
        return events

    def _closed_after_ours(self) -> None:
        """The peer's close (or its end) after ours: the stream is over; its StreamClosed was ours."""
        self.closing = False
        self.closed = True

    def _closed_by_us(self, condition: str | None = None) -> None:
        if self._has_authenticated():
            self.closing = True
            self.refusing = condition
        else:
            self.closed = True

    def hibernate(self) -> bool:
        """While the stream is idle between stanzas, free the XML parser's state (see
        :meth:`fedgate.xmlstream.XmlStreamParser.hibernate`); the next bytes wake it. False when not idle."""
        return self._parser.hibernate()

    def release(self) -> None:
        """The connection is gone: free the parser now (nothing is parsed after this)."""
        self._parser.release()

    def connection_lost(self) -> list[S2SEvent]:
        """The transport ended without ``</stream:stream>`` (TCP FIN or reset): handled like a peer close, so a
        negotiation cut short is reported."""
        if self.closed:
            return []
        if self.closing:
            self._closed_after_ours()
            return []
        events: list[S2SEvent] = []
        self._on_peer_close(events)
        return events

    # -- helpers for subclasses ----------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self._out += data

    def _send(self, el: Element) -> None:
        self._out += serialize(el, default_ns=SERVER_NS, prefixes=self._prefixes)

    def _write_header(self, *, to: str | None, from_: str | None, stream_id: str | None, dialback: bool) -> None:
        extra = {"db": DIALBACK_NS} if dialback else None
        self._prefixes = {"stream": STREAM_NS, **({"db": DIALBACK_NS} if dialback else {})}
        self._out += stream_header(default_ns=SERVER_NS, to=to, from_=from_, id=stream_id, extra_ns=extra)
        self._header_sent = True

    def _write_close(self) -> None:
        if not self._close_sent:
            self._out += STREAM_CLOSE
            self._close_sent = True

    def _fail(self, exc: StreamError, events: list[S2SEvent], *, ours: bool = False) -> None:
        """A stream error: the peer's violation (the stream is over), or with ``ours`` our own decision to end
        the stream (``close(condition)``: closing, see there)."""
        if self.closed:
            return
        if self.closing:
            # The peer's input no longer parses after our close: nothing can be said, and nothing more is read.
            self._closed_after_ours()
            return
        self._before_error_header()
        if not self._close_sent:
            self._out += stream_error(exc.condition, exc.text or None, exc.app)
        self._write_close()
        if ours:
            self._closed_by_us(exc.condition)
        else:
            self.closed = True
        self._on_failed_before_auth(events)
        events.append(StreamClosed(exc.condition, exc.text, by_peer=False))

    def _before_error_header(self) -> None:
        """An error must travel inside a stream: the receiving side opens one first if it has not yet."""

    def _on_failed_before_auth(self, events: list[S2SEvent]) -> None:
        """Hook: report a negotiation that ended without authentication."""

    def _on_peer_error(self, el: Element, events: list[S2SEvent]) -> None:
        if self.closing:  # (its StreamClosed was ours)
            self._closed_after_ours()
            return
        condition = None
        text = ""
        for child in el:
            ns, _, local = child.tag[1:].partition("}")
            if ns == STREAM_ERRORS_NS and local != "text":
                condition = local
            elif local == "text":
                text = child.text or ""
        self._on_failed_before_auth(events)
        self._write_close()
        self.closed = True
        events.append(StreamClosed(condition, text, by_peer=True))

    def _on_peer_close(self, events: list[S2SEvent]) -> None:
        if self.closing:  # the answer to our </stream:stream>: the stream is over
            self._closed_after_ours()
            return
        self._on_failed_before_auth(events)
        self._write_close()
        self.closed = True
        events.append(StreamClosed(None, "", by_peer=True))

    def _restart_stream(self) -> None:
        """After STARTTLS or SASL success both sides start a new stream on a fresh parser."""
        self._parser.reset()

    # -- subclass hooks -------------------------------------------------------------------------------------
    def _on_header(self, ev: XmlStreamOpened, events: list[S2SEvent]) -> None:
        raise NotImplementedError

    def _on_element(self, el: Element, events: list[S2SEvent]) -> None:
        raise NotImplementedError

    def _has_authenticated(self) -> bool:
        """Whether a domain is authenticated on this stream (so a close from our side waits for the peer's)."""
        raise NotImplementedError

    def _on_element_while_closing(self, el: Element, events: list[S2SEvent]) -> None:
        """An element that arrived after our close, before the peer's: nothing can be answered any more."""


def sasl_element(name: str, text: str | None = None, condition: str | None = None) -> Element:
    el = Element(f"{{{SASL_NS}}}{name}")
    if text is not None:
        el.text = text
    if condition:
        SubElement(el, f"{{{SASL_NS}}}{condition}")
    return el
