"""Wire two S2S machines together in memory: bytes move between them with no sockets; STARTTLS is either
faked (the machines are told TLS is up) or run for real through ``fedgate.tls`` sessions over memory BIOs.
The dialback connect-back opens a nested pair the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedgate.policy import Settings
from fedgate.s2s import (
    Authenticated,
    DialbackVerifyAnswered,
    DialbackVerifyRequested,
    InboundStream,
    NegotiationFailed,
    OutboundStream,
    S2SContext,
    S2SEvent,
    StartTlsNow,
    StreamClosed,
    TlsInfo,
    VerifyRequest,
)


@dataclass
class FakeCert:
    valid_domains: frozenset[str]
    presented: bool = True
    chain_valid: bool = True

    def valid_for(self, domain: str) -> bool:
        return domain in self.valid_domains


@dataclass
class Server:
    domain: str
    settings: dict[str, Settings]
    secret: str = "s3cret"
    cert_valid: bool = True  # whether peers find this server's certificate valid for its domain
    events: list[tuple[str, S2SEvent]] = field(default_factory=list)

    def ctx(self) -> S2SContext:
        return S2SContext(
            is_local_domain=lambda d: d == self.domain,
            settings_for=self.settings.get,
            dialback_secret=self.secret,
        )


def _fake_tls(peer: Server) -> TlsInfo:
    return TlsInfo("TLSv1.3", "FAKE", FakeCert(frozenset({peer.domain}) if peer.cert_valid else frozenset()))


TlsFactory = Callable[[Server, Server], Any]


def _pump(client: OutboundStream, server: InboundStream, a: Server, b: Server, limit: int = 200) -> None:
    """Move bytes until both sides are quiet. ``a`` runs ``client``; ``b`` runs ``server``."""
    for _ in range(limit):
        moved = False
        data = client.data_to_send()
        if data:
            moved = True
            for ev in server.receive_data(data):
                b.events.append(("in", ev))
                _handle_server_event(ev, server, b, a)
        data = server.data_to_send()
        if data:
            moved = True
            for ev in client.receive_data(data):
                a.events.append(("out", ev))
                if isinstance(ev, StartTlsNow):
                    # Fake handshake: each side learns the other's certificate status.
                    server.tls_established(_fake_tls(a))
                    client.tls_established(_fake_tls(b))
        if not moved:
            return
    raise AssertionError("machines kept talking")


def _handle_server_event(ev: S2SEvent, server: InboundStream, b: Server, a: Server) -> None:
    if isinstance(ev, DialbackVerifyRequested):
        # b connects back to a (the authoritative server for ev.originating) under b's settings for a.
        settings = b.settings[a.domain]
        verify = OutboundStream(
            b.ctx(), ev.receiving, ev.originating, settings,
            verify=VerifyRequest(ev.originating, ev.receiving, ev.stream_id, ev.key),
        )
        authoritative = InboundStream(a.ctx())
        verify.start()
        before = len(b.events)
        _pump(verify, authoritative, b, a)
        answers = [e for _, e in b.events[before:] if isinstance(e, DialbackVerifyAnswered)]
        if answers:
            server.dialback_verified(ev.originating, ev.receiving, answers[0].valid, answers[0].error)
        else:
            server.dialback_verified(ev.originating, ev.receiving, False, "remote-connection-failed")
        # dialback_verified may have produced events (Authenticated): record them.
        # (They are returned; collect.)


def connect(a: Server, b: Server) -> tuple[OutboundStream, InboundStream]:
    """a initiates a stream to b and authenticates as far as the settings let it."""
    client = OutboundStream(a.ctx(), a.domain, b.domain, a.settings[b.domain])
    server = InboundStream(b.ctx())
    orig = server.dialback_verified

    def recording(*args: Any, **kw: Any) -> list[S2SEvent]:
        out = orig(*args, **kw)
        b.events.extend(("in", e) for e in out)
        return out

    server.dialback_verified = recording  # type: ignore[method-assign]
    client.start()
    _pump(client, server, a, b)
    return client, server


def outcome(a: Server, b: Server) -> tuple[str | None, list[Any]]:
    _client, _ = connect(a, b)
    auth_out = [e for d, e in a.events if d == "out" and isinstance(e, Authenticated)]
    auth_in = [e for d, e in b.events if d == "in" and isinstance(e, Authenticated)]
    failed = [e for d, e in a.events if isinstance(e, NegotiationFailed)]
    closed = [e for _, e in a.events if isinstance(e, StreamClosed)]
    if auth_out:
        assert auth_in and auth_in[-1].method == auth_out[-1].method, (auth_in, auth_out)
        return auth_out[-1].method.value, []
    return None, failed + closed
