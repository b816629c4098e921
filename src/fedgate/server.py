"""The thin asyncio layer: sockets, timers and TLS handshakes around the sans-IO machines.

Everything that decides lives elsewhere: ``fedgate.s2s`` (streams), ``fedgate.component`` (XEP-0114),
``fedgate.router`` (where a stanza goes), ``fedgate.policy`` (which method). This module reads bytes, feeds
them in, writes what comes out, and acts on events: STARTTLS handshakes, dialback connect-backs, outbound
connections with a queue, time-outs, and bounces for anything that cannot be delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from xml.etree.ElementTree import Element

from . import component as component_proto
from .connection import Connection, open_connection
from .errors import STANZA_ERROR_TYPES, StreamError
from .explain import exclusion_text, failure_reason
from .i18n import t
from .partners import GatewaySettings, Partner, PartnerType
from .policy import Method, Settings, allows
from .resolver import ResolutionError, Resolver, Target
from .router import (
    DeliverToComponent,
    Dropped,
    FromComponent,
    FromPartner,
    Origin,
    PartnerInfo,
    Router,
    SendToPartner,
)
from .s2s import (
    Authenticated,
    DialbackVerifyAnswered,
    DialbackVerifyRequested,
    InboundStream,
    NegotiationFailed,
    OutboundStream,
    S2SContext,
    S2SEvent,
    StanzaReceived,
    StanzaRefused,
    StartTlsNow,
    StreamClosed,
    StreamOpened,
    TlsInfo,
    VerifyRequest,
)
from .s2s.base import StreamMachine, domain_of
from .stanza import describe, error_condition, error_reply
from .tls import Credentials, TlsContext, TlsError, TrustAnchors, client_context, server_context

log = logging.getLogger("fedgate")

# A stream we closed (RFC 6120 4.4) is still read, and what arrives routed, until the peer's </stream:stream> or
# this long; then the connection is let go.
CLOSE_WAIT_SECONDS = 2.5
# Gateway.stop(): how long the partners' streams may take to close (what they still send is routed; a little
# more than CLOSE_WAIT_SECONDS, so that a silent peer's stream has ended), and then the components and the
# outbound links each.
SHUTDOWN_DRAIN_SECONDS = 3.0
SHUTDOWN_STAGE_SECONDS = 1.0
# How long a dialback verification stream stays open with nothing to ask.
VERIFY_IDLE_SECONDS = 30.0
MAX_QUEUE = 10000


class PartnerSource(Protocol):
    """What the gateway reads from the partner store (``fedgate.store.PartnerStore`` provides it)."""

    def list_partners(self, pattern: str | None = None) -> list[Partner]: ...

    def get_gateway(self) -> GatewaySettings: ...

    def dialback_passphrase(self) -> str: ...

    def revision(self) -> int: ...

    def record_authorization(self, local_bare: str, remote_bare: str) -> None: ...

    def authorizations(self) -> list[tuple[str, str]]: ...


class StoredAuthorizationBook:
    """The router's authorization book kept in the store, read once and written through: lookups stay in
    memory on the stanza path, and what a user authorised survives a restart."""

    def __init__(self, source: PartnerSource) -> None:
        self._source = source
        self._pairs = set(source.authorizations())

    def record(self, local_bare: str, remote_bare: str) -> None:
        if (local_bare, remote_bare) not in self._pairs:
            self._pairs.add((local_bare, remote_bare))
            self._source.record_authorization(local_bare, remote_bare)

    def is_authorized(self, local_bare: str, remote_bare: str) -> bool:
        return (local_bare, remote_bare) in self._pairs


@dataclass(frozen=True)
class LocalDomain:
    """A domain this gateway serves: its certificate, and the secret its XEP-0114 component authenticates with."""

    domain: str
    credentials: Credentials | None = None
    component_secret: str | None = None


@dataclass
class GatewayConfig:
    domains: dict[str, LocalDomain]
    s2s_listen: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", 5269)])
    component_listen: tuple[str, int] | None = ("127.0.0.1", 5347)
    trust: TrustAnchors = field(default_factory=TrustAnchors)
    resolver: Resolver = field(default_factory=Resolver)
    # Where outgoing connections come from (a loopback address per test gateway); None: the system's choice.
    source_address: str | None = None


@dataclass
class StreamRecord:
    """One live authenticated (or negotiating) S2S stream, as ``fedgate status`` shows it."""

    id: int
    direction: Literal["in", "out"]
    local_domain: str | None
    remote_domain: str | None
    started: float
    method: Method | None = None
    tls_version: str | None = None
    cipher: str | None = None
    certificate: str = "none"
    stanzas_in: int = 0
    stanzas_out: int = 0
    authenticated_at: float | None = None

    def as_dict(self, queue: int | None = None) -> dict[str, object]:
        """``queue``: stanzas waiting for this stream (outbound streams; None for inbound ones, which carry
        nothing of ours)."""
        return {
            "id": self.id,
            "direction": self.direction,
            "local_domain": self.local_domain,
            "partner": self.remote_domain,
            "method": self.method.value if self.method else None,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "certificate": self.certificate,
            "started": self.started,
            "age": round(time.time() - self.started, 3),
            "authenticated_at": self.authenticated_at,
            "stanzas_in": self.stanzas_in,
            "stanzas_out": self.stanzas_out,
            "queue": queue,
        }


# What NegotiationFailed.detail can say, as a bounded set of codes for counters and metric labels. The detail
# of a dialback failure carries the peer's type attribute and error condition: anything not known here is
# counted under a fixed code, so a peer cannot create label values.
FAILURE_CODES: frozenset[str] = frozenset(
    {
        "starttls_refused", "starttls_not_offered", "starttls_required_by_peer", "no_method_offered",
        "stream_closed", "establishment_timeout", "closed_before_authentication", "dialback_invalid",
        "dialback_error", "dialback_unknown", "resolution_failed", "connect_failed", "tls_failed",
        "connection_limit", "no_local_certificate",
        *(f"dialback_error_{condition}" for condition in STANZA_ERROR_TYPES),
    }
)
FAILURE_OTHER = "other"
FAILURE_DIALBACK_OTHER = "dialback_other"


def failure_code(detail: str) -> str:
    """``detail`` if it is one of FAILURE_CODES, else ``dialback_other`` or ``other``."""
    if detail in FAILURE_CODES:
        return detail
    return FAILURE_DIALBACK_OTHER if detail.startswith("dialback_") else FAILURE_OTHER


class FailureCounter(Counter[str]):
    """A Counter whose keys are failure codes: any detail is counted under ``failure_code(detail)``."""

    def __getitem__(self, key: str) -> int:
        return super().__getitem__(failure_code(key))

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(failure_code(key), value)


@dataclass
class GatewayStats:
    """Counters the metrics endpoint reads at scrape time (plain ints: nothing on the hot path but +=). Bytes
    are counted on the wire: TLS records (handshakes included) as they leave and arrive, not plaintext."""

    stanzas_in: int = 0
    stanzas_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bounces: Counter[str] = field(default_factory=Counter)
    negotiation_failures: Counter[str] = field(default_factory=FailureCounter)  # by failure_code
    authentications: Counter[tuple[str, str]] = field(default_factory=Counter)  # (direction, method)
    dropped: int = 0


class PolicySnapshot:
    """Partners and gateway settings read once from the store; replaced whole when the store changes."""

    def __init__(self, source: PartnerSource) -> None:
        self.revision = source.revision()
        self.gateway = source.get_gateway()
        self.passphrase = source.dialback_passphrase()
        self.partners: dict[str, Partner] = {}
        for p in source.list_partners():
            for d in p.domains:
                self.partners[d] = p

    def partner(self, domain: str) -> Partner | None:
        return self.partners.get(domain)

    def settings_for(self, domain: str) -> Settings | None:
        p = self.partners.get(domain)
        if p is not None:
            return p.settings
        return self.gateway.unlisted_domains

    def find_partner(self, domain: str) -> PartnerInfo | None:
        p = self.partners.get(domain)
        if p is None:
            if self.gateway.unlisted_domains is not None:
                return PartnerInfo(domain, PartnerType.PUBLIC_UNVERIFIED.value)
            return None
        return PartnerInfo(p.domain, p.partner_type.value, p.additional_domains)


def _tls_contexts(config: GatewayConfig) -> tuple[TlsContext | None, dict[str, TlsContext]]:
    """The server context (every domain with a certificate, picked by SNI) and a client context per domain."""
    creds = {d.domain: d.credentials for d in config.domains.values() if d.credentials is not None}
    server_tls = server_context(creds, config.trust) if creds else None
    client_tls = {d.domain: client_context(d.credentials, config.trust) for d in config.domains.values()}
    return server_tls, client_tls


def _certificate_text(info: TlsInfo, domain: str | None) -> str:
    peer = info.peer
    if peer is None or not peer.presented:
        return "none"
    if domain and peer.valid_for(domain):
        return "valid"
    return "invalid"


class _VerifyLink:
    """A kept-open dialback verification stream to one authoritative server, shared by every request that
    domain makes to one of ours; answers are matched to requests by stream id."""

    def __init__(self, machine: OutboundStream) -> None:
        self.machine = machine
        self.conn: Connection | None = None
        self.waiters: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}
        self.closed = False
        self._flush_pending = False

    def verify(self, request: VerifyRequest) -> None:
        """Send one ``db:verify``. Those asked in one loop iteration (dialback streams arriving together) leave
        in one write, and their answers mostly come back in one read."""
        self.machine.send_verify(request)
        if self.conn is not None and not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self.conn is not None:
            self.conn.write(self.machine.data_to_send())


class _OutboundLink:
    """Our stream to one partner domain from one of our domains, with the stanzas waiting for it."""

    def __init__(self, gateway: Gateway, local_domain: str, remote_domain: str) -> None:
        self.gateway = gateway
        self.local_domain = local_domain
        self.remote_domain = remote_domain
        self.queue: list[Element] = []
        # XEP-0198: stanzas in the queue that were written on this link but never acknowledged (by id), and
        # those this link carries as a second try after another link lost them that way (sent once more at
        # most: see _run_outbound). The elements are held, so an id is not reused meanwhile.
        self.unacknowledged: dict[int, Element] = {}
        self.resent: dict[int, Element] = {}
        self.machine: OutboundStream | None = None
        self.conn: Connection | None = None
        self.record: StreamRecord | None = None
        self.task: asyncio.Task[None] | None = None
        self.ready = False
        self.done = False
        # Counted toward connection_limit: from when it starts connecting until it leaves the routing table.
        self.counted = False
        self._flush_pending = False
        # Why the stream failed, for the bounces of what was queued (English, like every bounce text).
        self.failure_text = ""
        # time.monotonic() of the last stanza either way (inactivity) and of our last write (keep-alives).
        self.last_activity = 0.0
        self.last_write = 0.0

    def send(self, stanza: Element) -> None:
        if (
            self.ready
            and self.machine is not None
            and self.conn is not None
            and not self.machine.closed
            and not self.machine.closing
            and not self.conn.is_closing()
        ):
            self.machine.send_stanza(stanza)
            self.last_activity = self.last_write = time.monotonic()
            # Stanzas routed in one loop iteration leave together: one TLS record, one socket write. Anything
            # else written to this stream goes through machine.data_to_send() too, so the order is kept.
            if not self._flush_pending:
                self._flush_pending = True
                asyncio.get_running_loop().call_soon(self._flush)
            if self.record is not None:
                self.record.stanzas_out += 1
            self.gateway.stats.stanzas_out += 1
            return
        if len(self.queue) >= MAX_QUEUE:
            self.gateway.bounce(stanza, "resource-constraint", "too many stanzas waiting for this partner")
            return
        self.queue.append(stanza)

    def _flush(self) -> None:
        self._flush_pending = False
        if self.machine is not None and self.conn is not None:
            self.machine.request_ack()  # (the end of a batch: XEP-0198 acks cover its last stanzas too)
            _write_out(self.machine, self.conn, self)


class Gateway:
    def __init__(self, config: GatewayConfig, source: PartnerSource) -> None:
        self.config = config
        self.source = source
        self.policy = PolicySnapshot(source)
        self.authorizations = StoredAuthorizationBook(source)
        self.components: dict[str, tuple[component_proto.ComponentStream, Connection]] = {}
        self.router = Router(
            local_domains=lambda: self.config.domains.keys(),
            connected_components=lambda: self.components.keys(),
            partners=self.policy_directory(),
            authorizations=self.authorizations,
        )
        self.links: dict[tuple[str, str], _OutboundLink] = {}
        self._verify_links: dict[tuple[str, str], _VerifyLink] = {}
        self._inbound_per_partner: Counter[str] = Counter()  # for partner_connection_limit, without a scan
        self.streams: dict[int, StreamRecord] = {}
        self._ids = itertools.count(1)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._inbound_machines: dict[int, tuple[InboundStream, Connection]] = {}
        # stop(): components we closed, until their streams end; once the outbound links are being closed, no
        # new one is opened.
        self._closing_components: list[tuple[component_proto.ComponentStream, Connection]] = []
        self._no_new_links = False
        self.stats = GatewayStats()
        self._server_tls, self._client_tls = _tls_contexts(config)
        # Listeners for callers (tests, metrics): called with each S2S event as it happens.
        self.listeners: list[Callable[[str, S2SEvent], None]] = []

    def replace_credentials(self, config: GatewayConfig) -> None:
        """SIGHUP: what can change while running, for new connections (live streams keep theirs): domains,
        their certificates and component secrets, trust anchors, DNS (static routes, SRV) and the source
        address. Every TLS context is built first; if one fails (``TlsError``, ``ValueError``) nothing has
        changed. The listen addresses are not touched: they need a restart."""
        server_tls, client_tls = _tls_contexts(config)
        self.config.domains = config.domains
        self.config.trust = config.trust
        self.config.resolver = config.resolver
        self.config.source_address = config.source_address
        self._server_tls, self._client_tls = server_tls, client_tls

    # -- policy ------------------------------------------------------------------------------------------------
    def policy_directory(self) -> _Directory:
        return _Directory(self)

    def reload(self) -> None:
        """Re-read partners and gateway settings when the store changed (cheap when it did not). New streams
        use the new settings; a live stream whose method the new settings no longer allow is closed with
        ``policy-violation``."""
        if self.source.revision() == self.policy.revision:
            return
        self.policy = PolicySnapshot(self.source)
        for record in list(self.streams.values()):
            if record.method is None or record.remote_domain is None:
                continue
            settings = self.policy.settings_for(record.remote_domain)
            if settings is None or not allows(settings, record.method):
                log.warning("%s", t("s2s.closed_by_policy_change", None, partner=record.remote_domain,
                                    method=record.method.value))
                self._close_record(record, "policy-violation", "partner settings changed")

    def _close_record(self, record: StreamRecord, condition: str, text: str) -> None:
        if record.direction == "in" and record.id in self._inbound_machines:
            _end_stream(*self._inbound_machines[record.id], condition, text)
        for link in self.links.values():
            if link.record is record and link.machine is not None and link.conn is not None:
                _end_stream(link.machine, link.conn, condition, text)

    def _s2s_streams(self) -> list[tuple[StreamMachine, Connection]]:
        """Every open S2S stream with its connection: outbound links, inbound streams, verification streams."""
        out: list[tuple[StreamMachine, Connection]] = [
            (link.machine, link.conn) for link in self.links.values() if link.machine and link.conn
        ]
        out += self._inbound_machines.values()
        out += [(v.machine, v.conn) for v in self._verify_links.values() if v.conn is not None]
        return out

    @property
    def settings(self) -> GatewaySettings:
        return self.policy.gateway

    def has_certificate(self, domain: str) -> bool:
        """Whether we serve ``domain`` with a certificate (as configured now: SIGHUP can change it)."""
        served = self.config.domains.get(domain)
        return served is not None and served.credentials is not None

    def _context(self) -> S2SContext:
        """What a machine consults; ``has_certificate`` answers per local domain (an inbound stream learns its
        domain from the header, an outbound one has its own)."""
        return S2SContext(
            is_local_domain=self.config.domains.__contains__,
            settings_for=self.policy.settings_for,
            dialback_secret=self.policy.passphrase,
            max_stanza_size=self.settings.max_stanza_size,
            has_certificate=self.has_certificate,
        )

    # -- life cycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for host, port in self.config.s2s_listen:
            self._servers.append(await loop.create_server(
                lambda: Connection(self.stats, self._serve_s2s), host, port, reuse_address=True))
        if self.config.component_listen is not None:
            host, port = self.config.component_listen
            self._servers.append(await loop.create_server(
                lambda: Connection(self.stats, self._serve_component), host, port, reuse_address=True))

    def bound_ports(self) -> list[tuple[str, int]]:
        out = []
        for server in self._servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                out.append((host, port))
        return out

    async def stop(self) -> None:
        """Stop accepting, then close every stream with ``</stream:stream>`` so that nothing in flight is lost
        (RFC 6120 4.4: the side that closes waits for the peer's close and processes what it still sends):

        1. the partners' streams to us: what they sent before reading our close is still routed, to the
           components and outbound links, which are all still open (deliveries and bounces can leave);
        2. what waits for an outbound stream that is not up is bounced (to components still there); then the
           components: what they send before reading our close is routed, onto the outbound links still open;
        3. the outbound links: what was never written is bounced (logged and counted if its sender is gone).

        Stage 1 waits at most SHUTDOWN_DRAIN_SECONDS for the partners' closes, stages 2 and 3
        SHUTDOWN_STAGE_SECONDS each; then whatever is left is cut."""
        for server in self._servers:
            server.close()
        for inbound, conn in list(self._inbound_machines.values()):
            _end_stream(inbound, conn, None, "")
        await _until(lambda: not self._inbound_machines, SHUTDOWN_DRAIN_SECONDS)

        for link in list(self.links.values()):
            if not link.ready:
                queued, link.queue = link.queue, []
                for stanza in queued:
                    self.bounce(stanza, "remote-server-timeout", "the gateway is shutting down")
        for domain, (comp, conn) in list(self.components.items()):
            comp.close()  # (no stream error: what the component still sends is routed, see component.py)
            conn.write(comp.data_to_send())
            del self.components[domain]  # deliveries to it are now bounced by the router
            self._closing_components.append((comp, conn))
        await _until(lambda: all(comp.closed for comp, _ in self._closing_components), SHUTDOWN_STAGE_SECONDS)

        self._no_new_links = True
        for machine, conn in self._s2s_streams():
            _end_stream(machine, conn, None, "")
        for link in list(self.links.values()):
            if not link.ready and link.task is not None:
                link.task.cancel()  # (still negotiating: what it holds is bounced as it ends)
        await _until(lambda: not self.links and not self._verify_links, SHUTDOWN_STAGE_SECONDS)
        for _, conn in [*self._s2s_streams(), *self._closing_components]:
            conn.close_transport()
        self._closing_components.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    def _serve_s2s(self, conn: Connection) -> None:
        self._hold(asyncio.ensure_future(self._accept_s2s(conn)))

    def _serve_component(self, conn: Connection) -> None:
        self._hold(asyncio.ensure_future(self._accept_component(conn)))

    def _hold(self, task: asyncio.Task[None]) -> None:
        """A connection's driver, held until it ends (the loop keeps only weak references to tasks). Unlike
        those of _spawn, stop() lets them finish: each ends with its stream."""
        self._connection_tasks.add(task)
        task.add_done_callback(self._connection_tasks.discard)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _emit(self, direction: str, ev: S2SEvent) -> None:
        for listener in self.listeners:
            listener(direction, ev)

    def _new_record(self, direction: Literal["in", "out"], local: str | None, remote: str | None) -> StreamRecord:
        record = StreamRecord(next(self._ids), direction, local, remote, time.time())
        self.streams[record.id] = record
        return record

    def close_streams(self, condition: str = "reset", text: str = "") -> None:
        """Close every S2S stream (both directions) with a stream error; queued stanzas are bounced by their
        links, what partners still send on their streams to us is bounced to them (see ``StanzaRefused``)."""
        for machine, conn in self._s2s_streams():
            _end_stream(machine, conn, condition, text)

    def live_streams(self) -> list[dict[str, object]]:
        """Authenticated streams for ``fedgate status``; an outbound one with the stanzas waiting for it."""
        queues = {link.record.id: len(link.queue) for link in self.links.values() if link.record is not None}
        return [
            r.as_dict(queues.get(r.id, 0) if r.direction == "out" else None)
            for r in self.streams.values()
            if r.method is not None
        ]

    # -- routing -----------------------------------------------------------------------------------------------
    def route(self, stanza: Element, origin: Origin) -> None:
        if log.isEnabledFor(logging.DEBUG):
            self._log_stanza(stanza, origin)
        for action in self.router.route(stanza, origin):
            if not isinstance(action, Dropped) and action.stanza is not stanza:
                self.stats.bounces[error_condition(action.stanza) or "undefined-condition"] += 1
            if isinstance(action, DeliverToComponent):
                entry = self.components.get(action.domain)
                if entry is None:
                    self.bounce(action.stanza, "service-unavailable", "the service is not connected")
                    continue
                comp, conn = entry
                if not comp.send_stanza(action.stanza):
                    self.bounce(action.stanza, "service-unavailable", "the service is not connected")
                    continue
                conn.write(comp.data_to_send())
            elif isinstance(action, SendToPartner):
                self.send_to_partner(action.local_domain, action.remote_domain, action.stanza)
            elif isinstance(action, Dropped):
                # Never silent: what cannot be bounced is logged and counted.
                self.stats.dropped += 1
                log.info("stanza not bounced: %s", action.reason)

    def _log_stanza(self, stanza: Element, origin: Origin) -> None:
        """Debug trace of routed stanzas; message bodies only when the administrator set log_message_bodies."""
        line = f"routing {describe(stanza)} from {type(origin).__name__}({origin.domain})"
        if self.settings.log_message_bodies:
            body = stanza.find("{jabber:server}body")
            if body is not None:
                line += f" body={body.text!r}"
        log.debug("%s", line)

    def bounce(self, stanza: Element, condition: str, text: str | None = None) -> None:
        """Return ``stanza`` to its sender with an RFC 6120 error. The reply goes straight back the way the
        stanza came (a component, or the partner's stream); an error is never answered with an error."""
        reply = error_reply(stanza, condition, text=text)
        if reply is None:
            self.stats.dropped += 1
            log.info("undeliverable error stanza not bounced (%s)", condition)
            return
        self.stats.bounces[condition] += 1
        to_domain, from_domain = domain_of(reply.get("to")) or "", domain_of(reply.get("from")) or ""
        entry = self.components.get(to_domain)
        if entry is not None and entry[0].send_stanza(reply):
            entry[1].write(entry[0].data_to_send())
        elif (
            entry is None and to_domain not in self.config.domains and self.policy.settings_for(to_domain) is not None
        ):
            local = from_domain if from_domain in self.config.domains else next(iter(self.config.domains))
            self.send_to_partner(local, to_domain, reply)
        else:
            self.stats.dropped += 1
            log.info("bounce (%s) for %s not deliverable: sender unreachable", condition, to_domain)

    def send_to_partner(self, local_domain: str, remote_domain: str, stanza: Element, *, resent: bool = False
                        ) -> None:
        """``resent``: a second try for a stanza another link wrote and never saw acknowledged (XEP-0198)."""
        key = (local_domain, remote_domain)
        link = self.links.get(key)
        if (link is None or link.done) and self._no_new_links:
            self.bounce(stanza, "remote-server-timeout", "the gateway is shutting down")
            return
        if link is None or link.done:
            link = _OutboundLink(self, local_domain, remote_domain)
            self.links[key] = link
            link.task = self._spawn(self._run_outbound(link))
        if resent:
            link.resent[id(stanza)] = stanza
        link.send(stanza)

    # -- inbound S2S -------------------------------------------------------------------------------------------
    def _connection_count(self) -> int:
        """S2S connections open or being opened, for ``connection_limit``: inbound streams, outbound links
        (from the moment they start connecting) and dialback verification streams."""
        return (
            len(self._inbound_machines)
            + sum(1 for link in self.links.values() if link.counted)
            + len(self._verify_links)
        )

    async def _accept_s2s(self, conn: Connection) -> None:
        machine = InboundStream(self._context())
        record = self._new_record("in", None, None)
        key = record.id
        if self._connection_count() >= self.settings.connection_limit:
            machine.close("resource-constraint", "connection limit reached")
            conn.write(machine.data_to_send())
            self.streams.pop(key, None)
            await conn.close()
            return
        self._inbound_machines[key] = (machine, conn)
        try:
            await self._drive_inbound(machine, conn, record)
        except (TlsError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("inbound stream from %s ended: %s", record.remote_domain or "?", exc)
        finally:
            machine.release()
            self._inbound_machines.pop(key, None)
            self.streams.pop(key, None)
            if record.remote_domain is not None:
                self._inbound_per_partner[record.remote_domain] -= 1
                if self._inbound_per_partner[record.remote_domain] <= 0:
                    del self._inbound_per_partner[record.remote_domain]
            await conn.close()

    async def _drive_inbound(self, machine: InboundStream, conn: Connection, record: StreamRecord) -> None:
        """Run one incoming stream until it is over: the peer's close or stream error, ours on a stream nobody
        authenticated on, or (once we closed an authenticated one, RFC 6120 4.4) the peer's answering close
        or CLOSE_WAIT_SECONDS, routing what arrives meanwhile. Establishment and inactivity time-outs end the
        stream with connection-timeout."""
        # Until the peer authenticates (or the stream closes), one timer covers every read: a handshake takes
        # half a dozen reads, and a timer for each was a measurable part of an authentication's cost.
        try:
            async with asyncio.timeout(self.settings.stream_establishment_timeout):
                while not (machine.closed or machine.closing or machine.authenticated):
                    if not self._inbound_read(machine, conn, record, await conn.read(None)):
                        conn.write(machine.data_to_send())
                        return
        except TimeoutError:
            events = machine.close("connection-timeout")
            conn.write(machine.data_to_send())
            self._inbound_events(machine, conn, record, events)
        close_by: float | None = None
        while not machine.closed:
            if machine.closing:
                close_by = close_by or time.monotonic() + CLOSE_WAIT_SECONDS
                timeout: float = max(0.0, close_by - time.monotonic())
            else:  # authenticated: the loop above ran until then, or until the stream closed or was closing
                timeout = self.settings.stream_inactivity_timeout
            try:
                idle = machine.hibernate if not machine.closing else None
                data = await conn.read(timeout, idle)
            except TimeoutError:
                if machine.closing:
                    log.info("stream from %s: no </stream:stream> in answer to ours within %s s",
                             record.remote_domain or "?", CLOSE_WAIT_SECONDS)
                    break
                events = machine.close("connection-timeout")
                conn.write(machine.data_to_send())
                self._inbound_events(machine, conn, record, events)
                continue  # (closing now if a domain was authenticated: what is still in flight is bounced)
            if not self._inbound_read(machine, conn, record, data):
                break
        conn.write(machine.data_to_send())

    def _inbound_read(self, machine: InboundStream, conn: Connection, record: StreamRecord,
                      data: bytes | None) -> bool:
        """What one read brought (``None``: the TCP connection ended); False when the stream is over."""
        if conn.tls_just_completed:
            conn.tls_just_completed = False
            info = conn.tls_info()
            machine.tls_established(info)
            record.tls_version, record.cipher = info.version, info.cipher
            record.certificate = _certificate_text(info, machine.remote_domain)
        if data is None:
            if machine.closing:  # (after ours: the stream's StreamClosed was reported then)
                return False
            # TCP closed under us without </stream:stream>: report it like a close.
            machine.close()
            self._inbound_events(machine, conn, record, [StreamClosed(None, "", by_peer=True)])
            return False
        events = machine.receive_data(data)
        conn.write(machine.data_to_send())
        self._inbound_events(machine, conn, record, events)
        return True

    def _inbound_events(
        self, machine: InboundStream, conn: Connection, record: StreamRecord, events: Iterable[S2SEvent]
    ) -> None:
        for ev in events:
            self._emit("in", ev)
            if isinstance(ev, StreamOpened) and record.remote_domain is None:  # the first header, not a restart
                record.local_domain, record.remote_domain = machine.local_domain, machine.remote_domain
                if record.remote_domain is not None:
                    self._inbound_per_partner[record.remote_domain] += 1
                self._check_partner_limit(machine, conn, record)
            elif isinstance(ev, StartTlsNow):
                if self._server_tls is None:
                    machine.close("internal-server-error", "no certificate configured")
                    conn.write(machine.data_to_send())
                    continue
                conn.begin_tls(self._server_tls, server_side=True, server_name=None)
            elif isinstance(ev, Authenticated):
                self.stats.authentications[("in", ev.method.value)] += 1
                record.method = ev.method
                record.authenticated_at = time.time()
                log.info("%s", t("s2s.authenticated", None, partner=ev.remote_domain, direction="in",
                                 method=ev.method.value))
            elif isinstance(ev, DialbackVerifyRequested):
                self._connect_back(machine, conn, record, ev)
            elif isinstance(ev, StanzaReceived):
                record.stanzas_in += 1
                self.stats.stanzas_in += 1
                self.route(ev.element, FromPartner(ev.from_domain))
            elif isinstance(ev, StanzaRefused):
                # Sent before the partner read our stream error: back to its sender, on our stream to it.
                record.stanzas_in += 1
                self.stats.stanzas_in += 1
                self.bounce(ev.element, _refusal_condition(ev.condition),
                            f"the stream was closed ({ev.condition}) before this stanza was read")
            elif isinstance(ev, NegotiationFailed):
                self._log_failure(ev)
            elif isinstance(ev, StreamClosed) and ev.condition and not ev.by_peer:
                # We refused or ended the stream: say why, once, for the administrator.
                log.warning("%s", t("s2s.refused", None, partner=machine.remote_domain or record.remote_domain
                                    or "?", condition=ev.condition, text=ev.text or "-"))

    def _check_partner_limit(self, machine: InboundStream, conn: Connection, record: StreamRecord) -> None:
        remote = machine.remote_domain
        partner = self.policy.partner(remote) if remote else None
        limit = (partner.connection_limit if partner else None) or self.settings.partner_connection_limit
        if remote is not None and self._inbound_per_partner[remote] > limit:
            machine.close("resource-constraint", f"too many connections from {remote}")
            conn.write(machine.data_to_send())

    def _connect_back(
        self, machine: InboundStream, conn: Connection, record: StreamRecord, ev: DialbackVerifyRequested
    ) -> None:
        """XEP-0220: ask the authoritative server of ``ev.originating`` whether it generated the key. A callback
        on the answer rather than a task: a task and its time-out were a measurable part of an authentication."""
        answer = self._verify_key(ev)  # (its callback runs from the loop even when it is already answered)
        loop = asyncio.get_running_loop()

        def expired() -> None:
            if not answer.done():
                answer.set_result((False, "remote-server-timeout"))

        timer = loop.call_later(self.settings.stream_establishment_timeout, expired) if not answer.done() else None

        def answered(done: asyncio.Future[tuple[bool, str | None]]) -> None:
            if timer is not None:
                timer.cancel()
            if not done.cancelled():
                self._connect_back_answered(machine, conn, record, ev, done.result())

        answer.add_done_callback(answered)

    def _connect_back_answered(self, machine: InboundStream, conn: Connection, record: StreamRecord,
                               ev: DialbackVerifyRequested, verdict: tuple[bool, str | None]) -> None:
        if machine.closed:
            return
        valid, error = verdict
        events = machine.dialback_verified(ev.originating, ev.receiving, valid, error)
        conn.write(machine.data_to_send())
        self._inbound_events(machine, conn, record, events)
        if machine.closed:
            self._spawn(conn.close())

    def _verify_key(self, ev: DialbackVerifyRequested) -> asyncio.Future[tuple[bool, str | None]]:
        """The answer of the authoritative server, over the verification stream to it (opened if needed)."""
        answer: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
        settings = self.policy.settings_for(ev.originating)
        if settings is None:
            answer.set_result((False, "forbidden"))
            return answer
        pair = (ev.receiving, ev.originating)
        link = self._verify_links.get(pair)
        if link is None or link.closed:
            if self._connection_count() >= self.settings.connection_limit:
                log.info("dialback connect-back to %s not made: the connection limit is reached", ev.originating)
                answer.set_result((False, "resource-constraint"))  # a dialback error (XEP-0220 2.4)
                return answer
            machine = OutboundStream(self._context(), ev.receiving, ev.originating, settings, keep_open=True)
            link = _VerifyLink(machine)
            self._verify_links[pair] = link
            self._spawn(self._run_verify_link(pair, link))
        link.waiters[ev.stream_id] = answer
        link.verify(VerifyRequest(ev.originating, ev.receiving, ev.stream_id, ev.key))
        return answer

    async def _run_verify_link(self, pair: tuple[str, str], link: _VerifyLink) -> None:
        """Carry ``db:verify`` requests to one authoritative server. What the originating server is told when
        this fails follows XEP-0220 2.4: an error answer (Step 3) is ``remote-server-not-found``, as is a name
        that does not resolve or a ``host-unknown`` stream error; a connection that cannot be made is
        ``remote-connection-failed``; a stream that ends (or times out) without answering is
        ``remote-server-timeout``."""
        unanswered = "remote-server-timeout"

        def answered(ev: S2SEvent) -> None:
            nonlocal unanswered
            if isinstance(ev, DialbackVerifyAnswered):
                waiter = link.waiters.pop(ev.stream_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result((ev.valid, "remote-server-not-found" if ev.error else None))
            elif isinstance(ev, StreamClosed) and ev.by_peer and ev.condition == "host-unknown":
                unanswered = "remote-server-not-found"

        limit = self.settings.stream_establishment_timeout
        deadline = time.monotonic() + limit
        try:
            async with asyncio.timeout(limit):
                link.conn = await self._open_connection(link.machine.remote_domain)
            try:
                await self._drive_outbound(link.machine, link.conn, None, answered, deadline)
            finally:
                await link.conn.close()
        except (OSError, TlsError, ResolutionError) as exc:
            log.info("dialback verification stream to %s ended: %s", link.machine.remote_domain, exc)
            unanswered = _verify_error(exc)
        finally:
            link.machine.release()
            link.closed = True
            if self._verify_links.get(pair) is link:
                del self._verify_links[pair]
            for waiter in link.waiters.values():
                if not waiter.done():
                    waiter.set_result((False, unanswered))

    # -- outbound S2S ------------------------------------------------------------------------------------------
    async def _open_connection(self, remote_domain: str) -> Connection:
        partner = self.policy.partner(remote_domain)
        targets: list[Target] = await self.config.resolver.targets(
            remote_domain, proxy_fqdn=partner.proxy_fqdn if partner else None
        )
        last: Exception | None = None
        for target in targets:
            try:
                local_addr = (self.config.source_address, 0) if self.config.source_address else None
                async with asyncio.timeout(10):
                    return await open_connection(target.host, target.port, local_addr=local_addr,
                                                 stats=self.stats)
            except (OSError, TimeoutError) as exc:
                last = exc
        raise OSError(f"could not connect to any address of {remote_domain}: {last}")

    async def _run_outbound(self, link: _OutboundLink) -> None:
        """Connect, negotiate and carry one link's stanzas until its stream ends. Whatever is still queued then
        (never written) is bounced, except after an authenticated stream that ended as a stream (the peer's
        ``</stream:stream>`` or stream error, our idle close): the partner is alive, so they go once more on a
        new link, which bounces them if it fails in turn. After a transport failure (reset, TLS error) they
        are bounced at once: a burst must not pile up on a new link to a partner that is down.

        Except, with XEP-0198 acknowledgements, the stanzas written and never acknowledged on a stream that
        just went away (``OutboundStream.to_resend``): the partner may not have handled them, and nothing else
        says so. They go once more on a new link, after a transport failure too (never a third time: then they
        are bounced). Without resumption this is at-least-once: a stanza the partner handled but whose <a/> was
        lost with the connection is delivered twice, rather than lost or bounced after delivery."""
        settings = self.policy.settings_for(link.remote_domain)
        condition, text = "remote-server-not-found", ""
        authenticated = False
        transport_failed = False
        # One establishment deadline from the start of the link: connecting, TLS and authentication.
        limit = self.settings.stream_establishment_timeout
        deadline = time.monotonic() + limit

        def unlink() -> None:
            """Out of the routing table at once: new stanzas open a new link instead of queueing on this one
            while its socket closes (that can take seconds)."""
            nonlocal authenticated
            authenticated = authenticated or link.ready
            link.done = True
            link.ready = False
            if link.record is not None:
                self.streams.pop(link.record.id, None)
            if self.links.get((link.local_domain, link.remote_domain)) is link:
                del self.links[(link.local_domain, link.remote_domain)]

        try:
            if settings is None:
                raise _LinkFailed("not-allowed", f"{link.remote_domain} is not a federated partner")
            if self._connection_count() >= self.settings.connection_limit:
                self._outbound_failed(link.local_domain, link.remote_domain, "connection_limit")
                raise _LinkFailed("resource-constraint", "the gateway's connection limit is reached")
            link.counted = True
            conn: Connection | None = None
            try:
                async with asyncio.timeout(limit):
                    conn = await self._open_connection(link.remote_domain)
                link.conn = conn
                machine = OutboundStream(self._context(), link.local_domain, link.remote_domain, settings)
                link.machine = machine
                link.record = self._new_record("out", link.local_domain, link.remote_domain)
                try:
                    await self._drive_outbound(machine, conn, link, None, deadline)
                finally:
                    unlink()
                    await conn.close()
            except TimeoutError as exc:  # an OSError too: first
                if conn is None:  # (past the connect, _drive_outbound closed the stream and recorded it)
                    self._outbound_failed(link.local_domain, link.remote_domain, "establishment_timeout")
                raise _LinkFailed("remote-server-timeout", "the partner did not answer in time") from exc
            except (ResolutionError, TlsError, OSError) as exc:
                transport_failed = True
                detail = (
                    "resolution_failed" if isinstance(exc, ResolutionError)
                    else "tls_failed" if isinstance(exc, TlsError) else "connect_failed"
                )
                if authenticated:
                    log.info("stream to %s ended: %s", link.remote_domain, exc)
                else:
                    self._outbound_failed(link.local_domain, link.remote_domain, detail, str(exc))
                raise _LinkFailed("remote-server-not-found", str(exc)) from exc
            if not authenticated:
                # After a dialback error or "invalid", XEP-0220 2.1.1 names the condition (the machine knows).
                raise _LinkFailed(machine.failure_condition or "remote-server-not-found",
                                  link.failure_text or "could not authenticate with the partner")
        except _LinkFailed as exc:
            condition, text = exc.condition, exc.text
        finally:
            unlink()
            if link.machine is not None and link.conn is not None:
                _write_out(link.machine, link.conn, link)  # stanzas not yet written come back to the queue
            if link.machine is not None:
                link.machine.release()
            queued, link.queue = link.queue, []
            serving = all(server.is_serving() for server in self._servers)  # (a gateway stopping retries nothing)
            retry = authenticated and not transport_failed and serving
            for stanza in queued:
                resend = id(stanza) in link.unacknowledged and id(stanza) not in link.resent
                if retry or (resend and authenticated and serving):
                    self.send_to_partner(link.local_domain, link.remote_domain, stanza, resent=resend)
                else:
                    self.bounce(stanza, condition, text or None)
            link.unacknowledged.clear()
            link.resent.clear()

    def _outbound_failed(self, local_domain: str, remote_domain: str, detail: str, error: str = "") -> None:
        """An outbound stream that failed outside the machine (connect, TLS, deadline before the stream
        opened): recorded and logged like a negotiation failure."""
        ev = NegotiationFailed(local_domain, remote_domain, "out", (), detail)
        self._emit("out", ev)
        self._log_failure(ev, error)

    async def _drive_outbound(
        self,
        machine: OutboundStream,
        conn: Connection,
        link: _OutboundLink | None,
        on_event: Callable[[S2SEvent], None] | None,
        deadline: float,
    ) -> None:
        """Run one outgoing stream until it closes. Before authentication the establishment ``deadline``
        applies (then ``connection-timeout``, ``</stream:stream>`` and TimeoutError); once authenticated, the
        inactivity time-out counts stanzas either way (keep-alives are not activity) and closes the stream
        politely when it passes."""
        machine.start()
        _write_out(machine, conn, link)
        partner = self.policy.partner(machine.remote_domain)
        keepalive_on = partner.enable_keepalive if partner else True
        interval = self.settings.keepalive_interval
        idle_limit = self.settings.stream_inactivity_timeout
        close_by: float | None = None
        while not machine.closed:
            now = time.monotonic()
            if machine.closing:
                close_by = close_by or now + CLOSE_WAIT_SECONDS
                timeout = close_by - now  # (what is left to read is the peer's </stream:stream>)
            elif machine.authenticated and link is not None:
                timeout = link.last_activity + idle_limit - now
                if keepalive_on:
                    timeout = min(timeout, link.last_write + interval - now)
            elif machine.verify_ready:
                timeout = VERIFY_IDLE_SECONDS
            else:
                timeout = deadline - now
            data: bytes | None = b""
            if timeout > 0:
                try:
                    data = await conn.read(timeout, machine.hibernate if machine.authenticated else None)
                except TimeoutError:
                    pass
                else:
                    if data is not None and data.strip() and link is not None:
                        link.last_activity = time.monotonic()
            if data == b"" and not conn.tls_just_completed:
                # A timer ran out (or nothing but TLS records arrived).
                if machine.closing:
                    break
                if await self._outbound_timer(machine, conn, link, on_event, keepalive_on, deadline):
                    break
                continue
            if conn.tls_just_completed:
                conn.tls_just_completed = False
                info = conn.tls_info()
                machine.tls_established(info)
                if link is not None and link.record is not None:
                    link.record.tls_version, link.record.cipher = info.version, info.cipher
                    link.record.certificate = _certificate_text(info, machine.remote_domain)
                _write_out(machine, conn, link)
            if data is None:
                self._outbound_events(machine, conn, link, on_event, machine.connection_lost())
                break
            if not data:
                continue
            events = machine.receive_data(data)
            _write_out(machine, conn, link)
            self._outbound_events(machine, conn, link, on_event, events)
            await conn.drain()
        _write_out(machine, conn, link)

    async def _outbound_timer(
        self,
        machine: OutboundStream,
        conn: Connection,
        link: _OutboundLink | None,
        on_event: Callable[[S2SEvent], None] | None,
        keepalive_on: bool,
        deadline: float,
    ) -> bool:
        """What a timer that ran out on an outgoing stream means; True when the stream is over."""
        now = time.monotonic()
        if machine.authenticated and link is not None:
            if now >= link.last_activity + self.settings.stream_inactivity_timeout:
                log.info("%s", t("s2s.outbound_idle", None, partner=machine.remote_domain,
                                 seconds=self.settings.stream_inactivity_timeout))
                self._outbound_events(machine, conn, link, on_event, machine.close())
                _write_out(machine, conn, link)
                return machine.closed  # (closing: the driver waits for the peer's </stream:stream>)
            if keepalive_on and now >= link.last_write + self.settings.keepalive_interval:
                conn.write(b" ")  # RFC 6120 4.6.1 whitespace keep-alive; not activity
                link.last_write = now
                await conn.drain()
            return False
        if machine.verify_ready:
            machine.close()  # an idle verification stream: let it go (with an unanswered key: give up on it)
            _write_out(machine, conn, link)
            if machine.verify_pending:
                raise TimeoutError
            return True
        if now < deadline:
            return False
        self._outbound_events(machine, conn, link, on_event, machine.establishment_timed_out())
        _write_out(machine, conn, link)
        raise TimeoutError

    def _outbound_events(
        self,
        machine: OutboundStream,
        conn: Connection,
        link: _OutboundLink | None,
        on_event: Callable[[S2SEvent], None] | None,
        events: Iterable[S2SEvent],
    ) -> None:
        for ev in events:
            self._emit("out", ev)
            if on_event is not None:
                on_event(ev)
            if isinstance(ev, StartTlsNow):
                ctx = self._client_tls.get(machine.local_domain)
                if ctx is None:
                    ctx = client_context(None, self.config.trust)
                conn.begin_tls(ctx, server_side=False, server_name=machine.remote_domain)
            elif isinstance(ev, Authenticated) and link is not None:
                self.stats.authentications[("out", ev.method.value)] += 1
                log.info("%s", t("s2s.authenticated", None, partner=ev.remote_domain, direction="out",
                                 method=ev.method.value))
                if link.record is not None:
                    link.record.method = ev.method
                    link.record.authenticated_at = time.time()
                link.ready = True
                link.last_activity = link.last_write = time.monotonic()
                queued, link.queue = link.queue, []
                for stanza in queued:
                    link.send(stanza)
            elif isinstance(ev, NegotiationFailed):
                self._log_failure(ev)
                if link is not None and (ev.peer_error is not None or ev.detail == "dialback_invalid"):
                    link.failure_text = _failure_text(ev, "en")

    def _log_failure(self, ev: NegotiationFailed, error: str = "") -> None:
        """Count a failed negotiation and log one line for the administrator: the policy engine's reasons, or
        for a failure outside the negotiation (time-out, connection, TLS) what happened."""
        self.stats.negotiation_failures[ev.detail] += 1
        if ev.detail in _OUTSIDE_NEGOTIATION:
            reason = t(f"s2s.reason.{ev.detail}", None, seconds=self.settings.stream_establishment_timeout,
                       error=error or "-", limit=self.settings.connection_limit)
            log.warning("%s", t("s2s.outbound_failed", None, partner=ev.remote_domain, reason=reason))
            return
        log.warning("%s", t("s2s.negotiation_failed", None, partner=ev.remote_domain, direction=ev.direction,
                            reasons=_failure_text(ev)))

    # -- components --------------------------------------------------------------------------------------------
    async def _accept_component(self, conn: Connection) -> None:
        secrets = {d.domain: d.component_secret for d in self.config.domains.values() if d.component_secret}
        machine = component_proto.ComponentStream(secrets)
        domain: str | None = None
        try:
            while True:
                if machine.closing:  # stop() closed it: what it still sends is routed, until its close
                    try:
                        data = await conn.read(CLOSE_WAIT_SECONDS)
                    except TimeoutError:
                        break
                else:
                    data = await conn.read(None, machine.hibernate if domain is not None else None)
                if data is None:
                    machine.close()
                    break
                events = machine.receive_data(data)
                conn.write(machine.data_to_send())
                for ev in events:
                    if isinstance(ev, component_proto.ComponentAuthenticated):
                        if ev.domain in self.components:
                            machine.close("conflict")
                            conn.write(machine.data_to_send())
                            break
                        domain = ev.domain
                        self.components[domain] = (machine, conn)
                        log.info("%s", t("component.connected", None, domain=domain))
                    elif isinstance(ev, component_proto.StanzaReceived) and domain is not None:
                        self.route(ev.element, FromComponent(domain))
                    elif isinstance(ev, component_proto.ComponentClosed):
                        break
                if machine.closed:
                    break
        except (ConnectionError, StreamError) as exc:
            log.info("component stream ended: %s", exc)
        finally:
            machine.release()
            if domain is not None and self.components.get(domain, (None,))[0] is machine:
                del self.components[domain]
            await conn.close()


class _Directory:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def find_partner(self, domain: str) -> PartnerInfo | None:
        return self._gateway.policy.find_partner(domain)


# NegotiationFailed details that are not about the methods: logged with their own reason text.
_OUTSIDE_NEGOTIATION = frozenset(
    {"establishment_timeout", "resolution_failed", "connect_failed", "tls_failed", "connection_limit"}
)


def _write_out(machine: OutboundStream, conn: Connection, link: _OutboundLink | None) -> None:
    """Hand what ``machine`` has to the transport. When the transport is already gone, the stanzas in it were
    never written: they go back to the front of the link's queue, which its end retries or bounces (rather
    than into a closed socket that drops them in silence). So do, first, those written and never acknowledged
    (XEP-0198), which the link's end sends once more."""
    if link is not None and conn.is_closing():
        link.unacknowledged.update((id(stanza), stanza) for stanza in machine.to_resend)
        link.queue[:0] = machine.withdraw_unsent()
    else:
        conn.write(machine.data_to_send())


def _verify_error(exc: Exception) -> str:
    """The dialback error (XEP-0220 2.4) for a verification stream that failed with ``exc``."""
    if isinstance(exc, ResolutionError):
        return "remote-server-not-found"
    if isinstance(exc, TimeoutError):  # an OSError too
        return "remote-server-timeout"
    return "remote-connection-failed"


def _failure_text(ev: NegotiationFailed, lang: str | None = None) -> str:
    """Why a negotiation failed: what the peer answered to our dialback request, if that is why, then the
    policy engine's reasons for every method passed over."""
    head = []
    if ev.peer_error is not None:
        head.append(t("s2s.reason.dialback_error", lang, condition=ev.peer_error))
    elif ev.detail == "dialback_invalid":
        head.append(t("s2s.reason.dialback_invalid", lang))
    elif ev.detail == "no_local_certificate":
        head.append(t("s2s.reason.no_local_certificate", lang, domain=ev.local_domain))
    elif ev.detail in ("stream_closed", "closed_before_authentication"):
        # What the settings rule out is true but is not why: say first that the stream ended early.
        head.append(t("s2s.reason.closed_early", lang))
    reasons = "; ".join(exclusion_text(e, lang) for e in ev.excluded)
    if head:
        return "; ".join([*head, reasons] if reasons else head)
    return failure_reason(ev.excluded, lang, fallback=ev.detail)


class _LinkFailed(Exception):
    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


def _end_stream(machine: StreamMachine, conn: Connection, condition: str | None, text: str) -> None:
    """Close one stream from our side, from outside its driver: the stream error if any and
    ``</stream:stream>``. A stream nobody authenticated on is over: the socket goes at once (its driver then
    ends). Otherwise the driver goes on reading until the peer's close (RFC 6120 4.4); the socket goes after
    CLOSE_WAIT_SECONDS at the latest, which also wakes a driver waiting on a silent peer."""
    if machine.closed or machine.closing:
        return
    machine.close(condition, text)
    conn.write(machine.data_to_send())
    if machine.closed:
        conn.close_transport()
    else:
        asyncio.get_running_loop().call_later(CLOSE_WAIT_SECONDS, conn.close_transport)


async def _until(done: Callable[[], bool], seconds: float) -> None:
    """Wait until ``done()`` or ``seconds`` have passed (checked every 10 ms)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


# The stanza error for what a partner sent before it read our stream error: the same condition where RFC 6120
# defines it for stanzas too (policy-violation, resource-constraint...), a time-out as remote-server-timeout (the
# sender's server may try again on a new stream), anything else service-unavailable.
_REFUSAL_CONDITIONS = {"connection-timeout": "remote-server-timeout"}


def _refusal_condition(stream_condition: str) -> str:
    if stream_condition in STANZA_ERROR_TYPES:
        return stream_condition
    return _REFUSAL_CONDITIONS.get(stream_condition, "service-unavailable")


__all__ = [
    "Gateway",
    "GatewayConfig",
    "LocalDomain",
    "PartnerSource",
    "PolicySnapshot",
    "StreamRecord",
]
