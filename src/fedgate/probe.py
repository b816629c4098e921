"""``fedgate probe``: what a remote XMPP server offers to a server-to-server stream, and which method we would
use with it.

Two halves. :class:`ProbeStream` and the functions next to it are sans-IO: what to send, what the answers
mean (stream features before and after STARTTLS, stream errors), and what the offers tell about the peer's
settings (:func:`observed_settings`) so that ``fedgate.policy.negotiate`` can decide. :func:`probe` is the
I/O: resolve (``fedgate.resolver``; a partner's ``proxy_fqdn`` overrides), connect, STARTTLS with a
``fedgate.tls`` client session, read the certificate, close politely with ``</stream:stream>``.

The probe presents no certificate, so a peer that offers SASL EXTERNAL only to a valid certificate (fedgate,
Prosody) shows no mechanism to it: the peer's SASL setting is then assumed (and the report says so).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from xml.etree.ElementTree import Element

from cryptography import x509

from .dialback import DIALBACK_FEATURE_NS, DIALBACK_NS
from .errors import StreamError
from .explain import exclusion_text
from .i18n import t
from .identity import certificate_names, matches_domain
from .partners import GatewaySettings, Partner
from .policy import Outcome, Sasl, Settings, Tls, negotiate
from .resolver import ResolutionError, Resolver, Target, parse_host_port
from .tls import CertificateStatus, Credentials, TlsError, TlsSession, TrustAnchors, client_context
from .xmlstream import (
    STREAM_CLOSE,
    STREAM_NS,
    STREAMS_ERROR_NS,
    ElementReceived,
    StreamClosed,
    StreamOpened,
    XmlStreamParser,
    stream_header,
)

__all__ = [
    "DEFAULT_FROM",
    "Features",
    "PartnerLookup",
    "ProbeReport",
    "ProbeStream",
    "decide",
    "local_settings",
    "observed_settings",
    "parse_features",
    "probe",
]

DEFAULT_FROM = "probe.invalid"
SERVER_NS = "jabber:server"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
FEATURES = f"{{{STREAM_NS}}}features"
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
_READ_SIZE = 65536


# --- sans-IO ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """What one ``<stream:features/>`` offers."""

    starttls: bool = False
    starttls_required: bool = False
    mechanisms: tuple[str, ...] = ()
    dialback: bool = False


def parse_features(features: Element) -> Features:
    starttls = features.find(f"{{{TLS_NS}}}starttls")
    mechs = features.find(f"{{{SASL_NS}}}mechanisms")
    mechanisms = () if mechs is None else tuple(
        (m.text or "").strip().upper() for m in mechs if m.tag == f"{{{SASL_NS}}}mechanism"
    )
    return Features(
        starttls=starttls is not None,
        starttls_required=starttls is not None and starttls.find(f"{{{TLS_NS}}}required") is not None,
        mechanisms=mechanisms,
        dialback=features.find(f"{{{DIALBACK_FEATURE_NS}}}dialback") is not None,
    )


@dataclass(frozen=True)
class Opened:
    """The peer's stream header."""

    attrs: dict[str, str]


@dataclass(frozen=True)
class FeaturesReceived:
    features: Features


@dataclass(frozen=True)
class Proceed:
    """``<proceed/>``: run the TLS handshake, then call :meth:`ProbeStream.tls_established`."""


@dataclass(frozen=True)
class TlsRefused:
    """``<failure/>`` to our ``<starttls/>``."""


@dataclass(frozen=True)
class PeerError:
    """A ``<stream:error/>`` (condition and text), or the stream or connection ended under us."""

    condition: str
    text: str = ""


ProbeEvent = Opened | FeaturesReceived | Proceed | TlsRefused | PeerError


class ProbeStream:
    """The initiating side of an S2S stream that only looks: header, features, STARTTLS, features again."""

    def __init__(self, domain: str, from_domain: str) -> None:
        self.domain = domain
        self.from_domain = from_domain
        self._parser = XmlStreamParser()
        self._out = bytearray()
        self.closed = False

    def start(self) -> None:
        self._out += stream_header(
            default_ns=SERVER_NS, to=self.domain, from_=self.from_domain, extra_ns={"db": DIALBACK_NS}
        )

    def request_tls(self) -> None:
        self._out += STARTTLS

    def tls_established(self) -> None:
        """After the handshake the stream starts again (RFC 6120 section 5.4.3.3)."""
        self._parser.reset()
        self.start()

    def close(self) -> None:
        if not self.closed:
            self._out += STREAM_CLOSE
            self.closed = True

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> list[ProbeEvent]:
        events: list[ProbeEvent] = []
        try:
            xml_events = self._parser.feed(data)
        except StreamError as exc:
            return [PeerError(exc.condition, exc.text)]
        for ev in xml_events:
            if isinstance(ev, StreamOpened):
                events.append(Opened(dict(ev.attrs)))
            elif isinstance(ev, StreamClosed):
                events.append(PeerError("closed", ""))
            elif isinstance(ev, ElementReceived):
                events.append(_element_event(ev.element))
        return events


def _element_event(el: Element) -> ProbeEvent:
    if el.tag == FEATURES:
        return FeaturesReceived(parse_features(el))
    if el.tag == f"{{{TLS_NS}}}proceed":
        return Proceed()
    if el.tag == f"{{{TLS_NS}}}failure":
        return TlsRefused()
    if el.tag == f"{{{STREAM_NS}}}error":
        condition, text = "undefined-condition", ""
        for child in el:
            if child.tag == f"{{{STREAMS_ERROR_NS}}}text":
                text = child.text or ""
            elif child.tag.startswith(f"{{{STREAMS_ERROR_NS}}}"):
                condition = child.tag.split("}", 1)[1]
        return PeerError(condition, text)
    return PeerError("unsupported-stanza-type", f"unexpected {el.tag}")


def observed_settings(before: Features, after: Features | None) -> tuple[Settings, bool]:
    """The peer's settings for us as far as its offers show them, and whether its SASL setting was seen.

    TLS: not offered -> not_supported, ``<required/>`` -> required, else optional. Dialback: offered before
    or after TLS. SASL: EXTERNAL offered -> required when TLS is required and dialback is not offered, else
    optional; not seen (no TLS reached, or no certificate presented) -> assumed: required where dialback is
    off (the only valid choice), optional otherwise.
    """
    if not before.starttls:
        tls = Tls.NOT_SUPPORTED
    elif before.starttls_required:
        tls = Tls.REQUIRED
    else:
        tls = Tls.OPTIONAL
    dialback = before.dialback or (after is not None and after.dialback)
    if tls is Tls.NOT_SUPPORTED:
        return Settings(tls, Sasl.NOT_SUPPORTED, dialback), True
    seen = after is not None and "EXTERNAL" in after.mechanisms
    if seen or not dialback:
        sasl = Sasl.REQUIRED if tls is Tls.REQUIRED and not dialback else Sasl.OPTIONAL
    else:
        sasl = Sasl.OPTIONAL
    return Settings(tls, sasl, dialback), seen


class PartnerLookup(Protocol):
    """What the probe reads from the partner store."""

    def find_partner(self, domain: str) -> Partner | None: ...

    def get_gateway(self) -> GatewaySettings: ...


def local_settings(store: PartnerLookup | None, domain: str) -> tuple[Settings, str, Partner | None]:
    """Our settings for ``domain`` and where they come from: ``partner``, ``unlisted`` (the gateway's
    ``unlisted_domains``) or ``default`` (not a partner: a new partner's defaults)."""
    partner = store.find_partner(domain) if store is not None else None
    if partner is not None:
        return partner.settings, "partner", partner
    unlisted = store.get_gateway().unlisted_domains if store is not None else None
    if unlisted is not None:
        return unlisted, "unlisted", None
    return Partner(domain=domain).settings, "default", None


def decide(local: Settings, remote: Settings) -> Outcome:
    """Which method we (initiating, with a valid certificate) would use with a peer showing ``remote``."""
    return negotiate(local, remote, initiator="local", initiator_certificate_valid=True)


# --- the report ---------------------------------------------------------------------------------------------------


@dataclass
class ProbeReport:
    domain: str
    from_domain: str
    targets: list[dict[str, Any]] = field(default_factory=list)
    connected: str | None = None
    stream_error: dict[str, str] | None = None
    starttls: dict[str, bool] = field(default_factory=lambda: {"offered": False, "required": False})
    tls: dict[str, str | None] | None = None
    certificate: dict[str, Any] | None = None
    sasl_mechanisms: list[str] = field(default_factory=list)
    # None: not reached (no features before TLS, or no TLS).
    dialback: dict[str, bool | None] = field(default_factory=lambda: {"before_tls": None, "after_tls": None})
    settings: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.method is not None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["from"] = out.pop("from_domain")
        return out

    def reason(self, code: str, text: str, **extra: Any) -> None:
        self.reasons.append({"code": code, "text": text, **extra})


def certificate_report(status: CertificateStatus, chain_der: Sequence[bytes], domain: str) -> dict[str, Any]:
    """The chain as presented (subject, issuer, expiry, names) and what we think of it."""
    chain = []
    for der in chain_der:
        cert = x509.load_der_x509_certificate(der)
        names = certificate_names(cert)
        chain.append({
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "dns_names": list(names.dns_ids),
            "srv_names": list(names.srv_ids),
            "xmpp_addrs": list(names.xmpp_addrs),
        })
    matches = status.certificate is not None and matches_domain(status.certificate, domain)
    return {
        "presented": status.presented,
        "chain": chain,
        "chain_valid": status.chain_valid,
        "error": status.error,
        "matches_domain": matches,
        "valid_for_domain": status.valid_for(domain),
    }


# --- I/O ------------------------------------------------------------------------------------------------------------


class _Transport:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.tls: TlsSession | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.tls is not None:
            self.tls.send(data)
            data = self.tls.data_to_send()
        self.writer.write(data)

    async def read(self) -> bytes:
        """Plaintext; ``b''`` at the end of the connection."""
        while True:
            raw = await asyncio.wait_for(self.reader.read(_READ_SIZE), self.timeout)
            if not raw or self.tls is None:
                return raw
            plain = self.tls.receive_data(raw)
            self.writer.write(self.tls.data_to_send())
            if plain or self.tls.closed_by_peer:
                return plain

    async def handshake(self, session: TlsSession) -> bytes:
        session.start()
        self.writer.write(session.data_to_send())
        plain = b""
        while not session.handshake_complete:
            raw = await asyncio.wait_for(self.reader.read(_READ_SIZE), self.timeout)
            if not raw:
                raise TlsError("the connection closed during the TLS handshake")
            plain += session.receive_data(raw)
            self.writer.write(session.data_to_send())
        self.tls = session
        return plain

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.tls is not None:
                self.tls.close()
                self.writer.write(self.tls.data_to_send())
            await self.writer.drain()
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


async def _next(transport: _Transport, stream: ProbeStream, pending: list[ProbeEvent], data: bytes = b"") -> ProbeEvent:
    """The next event other than the stream header (which is read and dropped)."""
    if data:
        pending += stream.receive_data(data)
    while True:
        while pending:
            ev = pending.pop(0)
            if not isinstance(ev, Opened):
                return ev
        chunk = await transport.read()
        if not chunk:
            return PeerError("connection-closed", "")
        pending += stream.receive_data(chunk)


async def _targets(
    report: ProbeReport, resolver: Resolver, domain: str, partner: Partner | None, port: int | None,
    connect: str | None,
) -> list[tuple[str, int]]:
    if connect is not None:
        targets = [parse_host_port(connect)]
    else:
        targets = await resolver.targets(domain, proxy_fqdn=partner.proxy_fqdn if partner else None)
    if port is not None:
        targets = [Target(x.host, port, x.direct_tls) for x in targets]
    addresses: list[tuple[str, int]] = []
    for target in targets:
        entry: dict[str, Any] = {"host": target.host, "port": target.port, "addresses": [], "error": None}
        report.targets.append(entry)
        try:
            found = await resolver.addresses(target.host, target.port)
        except ResolutionError as exc:
            entry["error"] = exc.text or str(exc)
            continue
        entry["addresses"] = [f"{h}:{p}" if ":" not in h else f"[{h}]:{p}" for h, p in found]
        addresses += found
    return addresses


async def probe(
    domain: str,
    *,
    from_domain: str = DEFAULT_FROM,
    store: PartnerLookup | None = None,
    port: int | None = None,
    connect: str | None = None,
    cafiles: Sequence[Path] = (),
    use_system_trust: bool = True,
    resolver: Resolver | None = None,
    timeout: float = 10.0,
    lang: str | None = None,
    credentials: Credentials | None = None,
) -> ProbeReport:
    """Probe ``domain``; never raises for what the network or the peer does (it ends up in the report).

    With ``credentials`` (our certificate for ``from_domain``) the probe presents it after STARTTLS, as the
    gateway would, so a peer that offers SASL EXTERNAL only to a valid certificate shows it."""
    report = ProbeReport(domain, from_domain)
    local, source, partner = local_settings(store, domain)
    report.settings = {"local": local.as_dict(), "local_source": source, "remote_observed": None,
                       "sasl_observed": False}
    if source != "partner":
        key = "probe.reason.unlisted" if source == "unlisted" else "probe.reason.not_a_partner"
        report.reason("not_a_partner", t(key, lang, domain=domain), source=source)
    resolver = resolver or Resolver()
    try:
        addresses = await _targets(report, resolver, domain, partner, port, connect)
    except (ResolutionError, ValueError) as exc:
        report.reason("connect_failed", t("probe.reason.connect_failed", lang, error=str(exc)))
        return report
    transport: _Transport | None = None
    errors: list[str] = []
    for host, p in addresses:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, p), timeout)
        except (OSError, TimeoutError) as exc:
            errors.append(f"{host}:{p}: {exc or type(exc).__name__}")
            continue
        transport = _Transport(reader, writer, timeout)
        report.connected = f"{host}:{p}" if ":" not in host else f"[{host}]:{p}"
        break
    if transport is None:
        error = "; ".join(errors) or t("probe.none", lang)
        report.reason("connect_failed", t("probe.reason.connect_failed", lang, error=error))
        return report
    try:
        before, after = await _converse(
            transport, report, domain, from_domain, cafiles, use_system_trust, lang, credentials
        )
    finally:
        await transport.close()
    if before is None:
        return report
    remote, seen = observed_settings(before, after)
    report.settings["remote_observed"] = remote.as_dict()
    report.settings["sasl_observed"] = seen
    outcome = decide(local, remote)
    report.method = outcome.method.value if outcome.method else None
    for exclusion in outcome.excluded:
        report.reason("excluded", exclusion_text(exclusion, lang), **exclusion.as_dict())
    if not seen and remote.tls is not Tls.NOT_SUPPORTED:
        report.reason("sasl_unobserved", t("probe.reason.sasl_unobserved", lang, sasl=remote.sasl.value))
    return report


async def _converse(
    transport: _Transport, report: ProbeReport, domain: str, from_domain: str, cafiles: Sequence[Path],
    use_system_trust: bool, lang: str | None, credentials: Credentials | None = None,
) -> tuple[Features | None, Features | None]:
    """The conversation; returns the features before and after TLS (None where not reached)."""
    stream = ProbeStream(domain, from_domain)
    pending: list[ProbeEvent] = []
    before: Features | None = None
    after: Features | None = None
    try:
        stream.start()
        features = await _expect(transport, stream, pending, report, lang, FeaturesReceived)
        if features is None:
            return None, None
        before = features.features
        report.starttls = {"offered": before.starttls, "required": before.starttls_required}
        report.dialback["before_tls"] = before.dialback
        report.sasl_mechanisms = list(before.mechanisms)
        if not before.starttls:
            return before, None
        stream.request_tls()
        if await _expect(transport, stream, pending, report, lang, Proceed) is None:
            return before, None
        trust = TrustAnchors(cafiles=tuple(cafiles), use_system=use_system_trust)
        session = TlsSession(client_context(credentials, trust), server_side=False, server_name=domain)
        try:
            early = await transport.handshake(session)
        except TlsError as exc:
            report.reason("tls_failed", t("probe.reason.tls_failed", lang, error=str(exc)))
            stream.closed = True  # no plaintext </stream:stream> over a broken TLS layer
            return before, None
        report.tls = {"version": session.version, "cipher": session.cipher}
        report.certificate = certificate_report(session.peer_certificate(), session.peer_chain_der(), domain)
        stream.tls_established()
        pending.clear()
        features = await _expect(transport, stream, pending, report, lang, FeaturesReceived, early)
        if features is None:
            return before, None
        after = features.features
        report.sasl_mechanisms = list(after.mechanisms)
        report.dialback["after_tls"] = after.dialback
        return before, after
    except TimeoutError:
        _stream_failed(report, PeerError("connection-timeout", ""), lang)
        return before, after
    except (OSError, TlsError) as exc:
        _stream_failed(report, PeerError("connection-failed", str(exc)), lang)
        return before, after
    finally:
        with contextlib.suppress(Exception):
            stream.close()
            transport.write(stream.data_to_send())
            # The peer's own </stream:stream> (or the end of the connection), briefly.
            transport.timeout = 1.0
            await _next(transport, stream, pending)


_E = TypeVar("_E", FeaturesReceived, Proceed)


async def _expect(
    transport: _Transport, stream: ProbeStream, pending: list[ProbeEvent], report: ProbeReport, lang: str | None,
    kind: type[_E], data: bytes = b"",
) -> _E | None:
    """Send what the stream has queued and wait for ``kind``; anything else is reported and gives None."""
    transport.write(stream.data_to_send())
    ev = await _next(transport, stream, pending, data)
    if isinstance(ev, kind):
        return ev
    _stream_failed(report, ev, lang)
    return None


def _stream_failed(report: ProbeReport, ev: ProbeEvent, lang: str | None) -> None:
    if isinstance(ev, PeerError):
        report.stream_error = {"condition": ev.condition, "text": ev.text}
        text = f" ({ev.text})" if ev.text else ""
        report.reason("stream_error", t("probe.reason.stream_error", lang, condition=ev.condition, text=text))
    elif isinstance(ev, TlsRefused):
        report.stream_error = {"condition": "starttls-failure", "text": ""}
        report.reason("tls_failed", t("probe.reason.tls_failed", lang, error="<failure/>"))
    else:
        report.reason("protocol", t("probe.reason.protocol", lang, error=type(ev).__name__))
