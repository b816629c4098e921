"""Sans-IO server-to-server stream machines (RFC 6120 streams, STARTTLS, SASL EXTERNAL per XEP-0178,
Server Dialback per XEP-0220). Bytes and calls in, events and bytes out; TLS, sockets, DNS and timers belong
to the caller (``fedgate.server``)."""

from .base import S2SContext, TlsInfo
from .events import (
    Authenticated,
    DialbackVerifyAnswered,
    DialbackVerifyRequested,
    NegotiationFailed,
    S2SEvent,
    StanzaReceived,
    StanzaRefused,
    StartTlsNow,
    StreamClosed,
    StreamOpened,
)
from .inbound import InboundStream
from .outbound import OutboundStream, VerifyRequest

__all__ = [
    "Authenticated",
    "DialbackVerifyAnswered",
    "DialbackVerifyRequested",
    "InboundStream",
    "NegotiationFailed",
    "OutboundStream",
    "S2SContext",
    "S2SEvent",
    "StanzaReceived",
    "StanzaRefused",
    "StartTlsNow",
    "StreamClosed",
    "StreamOpened",
    "TlsInfo",
    "VerifyRequest",
]
