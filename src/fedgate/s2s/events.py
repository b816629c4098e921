"""Events the S2S stream machines hand to the I/O layer. Names read like RFC 6120 / XEP-0220."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from xml.etree.ElementTree import Element

from ..policy import Exclusion, Method

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class StreamOpened:
    """The peer's stream header arrived and was accepted."""

    stream_id: str | None
    from_: str | None
    to: str | None


@dataclass(frozen=True)
class StartTlsNow:
    """STARTTLS was agreed: run the TLS handshake on the transport, then call ``tls_established``."""


@dataclass(frozen=True)
class Authenticated:
    local_domain: str
    remote_domain: str
    method: Method
    direction: Direction


@dataclass(frozen=True)
class DialbackVerifyRequested:
    """Inbound ``<db:result/>``: connect back to ``originating``'s authoritative server with ``db:verify``,
    then call ``dialback_verified``."""

    originating: str
    receiving: str
    key: str
    stream_id: str


@dataclass(frozen=True)
class DialbackVerifyAnswered:
    """The authoritative server's answer on a verification stream."""

    originating: str
    receiving: str
    stream_id: str
    valid: bool
    error: str | None = None


@dataclass(frozen=True)
class StanzaReceived:
    element: Element
    from_domain: str


@dataclass(frozen=True)
class StanzaRefused:
    """A stanza from an authenticated domain that arrived after we closed the stream with the stream error
    ``condition`` (RFC 6120 4.9.1.1: the stream is no longer one stanzas are accepted on): not to be delivered,
    but returned to its sender with an error, so that it is not lost."""

    element: Element
    from_domain: str
    condition: str


@dataclass(frozen=True)
class NegotiationFailed:
    """No method could be agreed. ``excluded`` says which side's which setting (or offer) ruled out each
    method, in the policy engine's terms; ``detail`` is a stable code. ``peer_error`` is the condition of a
    dialback error the peer returned (XEP-0220 2.4), when that is why."""

    local_domain: str
    remote_domain: str
    direction: Direction
    excluded: tuple[Exclusion, ...]
    detail: str
    peer_error: str | None = None


@dataclass(frozen=True)
class StreamClosed:
    """The stream is over (one such event per stream); flush ``data_to_send()`` and close the transport. When
    we closed it (``by_peer`` False) and the machine is ``closing`` rather than ``closed``, first go on feeding
    it what arrives until it is ``closed`` or a linger time-out passes (RFC 6120 4.4; see
    ``StreamMachine.close``)."""

    condition: str | None
    text: str = ""
    by_peer: bool = False


S2SEvent = (
    StreamOpened
    | StartTlsNow
    | Authenticated
    | DialbackVerifyRequested
    | DialbackVerifyAnswered
    | StanzaReceived
    | StanzaRefused
    | NegotiationFailed
    | StreamClosed
)
