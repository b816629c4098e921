"""Where to connect for a remote XMPP domain (RFC 6120 section 3.2).

Order of precedence:

1. the partner's ``proxy_fqdn`` (``host[:port]``, port 5269 by default) overrides everything;
2. ``static_routes`` (domain -> ``host[:port]``), for tests and development;
3. ``_xmpp-server._tcp.DOMAIN`` SRV records, by priority, weighted-random within a priority (RFC 2782);
   a single record with target ``.`` means the service is decidedly not offered:
   :class:`ResolutionError` ``remote-server-not-found``, with no fallback;
4. no SRV records (NXDOMAIN, no answer) or a failed SRV look-up: the domain itself on port 5269
   (RFC 6120 section 3.2.2, the fallback process).

:meth:`Resolver.addresses` then turns a host into socket addresses with the event loop's ``getaddrinfo``, which
honours ``/etc/hosts`` (the test domains live there on 127.0.0.x).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from fedgate.errors import FedgateError
from fedgate.identity import normalize_domain

__all__ = [
    "DEFAULT_PORT",
    "DnsResolver",
    "ResolutionError",
    "Resolver",
    "SrvRecord",
    "Target",
    "order_srv",
    "parse_host_port",
]

DEFAULT_PORT = 5269
SRV_SERVICE = "_xmpp-server._tcp."

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A host and port to connect to. ``direct_tls`` is reserved for XEP-0368 ``_xmpps-server`` records."""

    host: str
    port: int
    direct_tls: bool = False


@dataclass(frozen=True)
class SrvRecord:
    """One SRV record; ``target`` without the final dot (``.`` for the root: "no service")."""

    priority: int
    weight: int
    port: int
    target: str


class ResolutionError(FedgateError):
    """No place to connect to; ``condition`` is the stanza error to bounce with (``remote-server-not-found``)."""

    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text


class DnsResolver(Protocol):
    """What :class:`Resolver` needs of a DNS resolver: ``dns.asyncresolver.Resolver`` or a test double."""

    async def resolve(self, qname: str, rdtype: str, *, lifetime: float | None = None) -> Any: ...


def parse_host_port(value: str, default_port: int = DEFAULT_PORT) -> Target:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address as a :class:`Target`."""
    value = value.strip()
    host, port = value, default_port
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1 :] and not value[end + 1 :].startswith(":")):
            raise ValueError(f"not host[:port]: {value!r}")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            port = _port(rest[1:], value)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = _port(port_text, value)
    if not host:
        raise ValueError(f"not host[:port]: {value!r}")
    return Target(host.rstrip(".") if ":" not in host else host, port)


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in {value!r}")
    return int(text)


def order_srv(records: Iterable[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782 order: ascending priority; within a priority, weighted random selection (zero weights first in
    the running sum, so they are picked only rarely while others remain)."""
    by_priority: dict[int, list[SrvRecord]] = {}
    for record in records:
        by_priority.setdefault(record.priority, []).append(record)
    ordered: list[SrvRecord] = []
    for priority in sorted(by_priority):
        pending = sorted(by_priority[priority], key=lambda r: r.weight != 0)  # stable: zero weights first
        while pending:
            total = sum(r.weight for r in pending)
            pick = rng.randint(0, total)
            running = 0
            for index, record in enumerate(pending):
                running += record.weight
                if running >= pick:
                    ordered.append(pending.pop(index))
                    break
    return ordered


def _srv_record(rdata: Any) -> SrvRecord:
    target = rdata.target
    text = target.to_text(omit_final_dot=True) if isinstance(target, dns.name.Name) else str(target)
    return SrvRecord(int(rdata.priority), int(rdata.weight), int(rdata.port), text.rstrip(".") or ".")


class Resolver:
    """Finds the ordered connection targets for a domain, and their addresses."""

    def __init__(
        self,
        *,
        dns_resolver: DnsResolver | None = None,
        static_routes: Mapping[str, str] | None = None,
        use_srv: bool = True,
        timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self._dns = dns_resolver
        self._static = {normalize_domain(d): parse_host_port(r) for d, r in (static_routes or {}).items()}
        self.use_srv = use_srv
        self.timeout = timeout
        self._rng = rng or random.Random()

    def _dns_resolver(self) -> DnsResolver:
        if self._dns is None:  # reads /etc/resolv.conf: only when SRV look-ups are really made
            self._dns = dns.asyncresolver.Resolver()
        return self._dns

    async def targets(self, domain: str, *, proxy_fqdn: str | None = None) -> list[Target]:
        """Where to try, in order, to reach ``domain``. Raises :class:`ResolutionError`."""
        if proxy_fqdn:
            return [parse_host_port(proxy_fqdn)]
        try:
            ascii_domain = normalize_domain(domain)
        except ValueError as e:
            raise ResolutionError("remote-server-not-found", str(e)) from e
        if ascii_domain in self._static:
            return [self._static[ascii_domain]]
        fallback = [Target(ascii_domain, DEFAULT_PORT)]
        if not self.use_srv:
            return fallback
        qname = SRV_SERVICE + ascii_domain
        try:
            answer = await self._dns_resolver().resolve(qname, "SRV", lifetime=self.timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return fallback
        except dns.exception.DNSException as e:  # timeout, SERVFAIL from every server, ...
            log.warning("SRV look-up for %s failed (%s); falling back to %s:%d", qname, e, ascii_domain, DEFAULT_PORT)
            return fallback
        records = [_srv_record(rdata) for rdata in answer]
        if not records:
            return fallback
        targets = [Target(r.target, r.port) for r in order_srv(records, self._rng) if r.target != "."]
        if not targets:  # RFC 2782: a lone target "." means the service is decidedly not available
            raise ResolutionError("remote-server-not-found", f"{qname} says the service is not available")
        return targets

    async def addresses(self, host: str, port: int) -> list[tuple[str, int]]:
        """``host``'s IPv4/IPv6 addresses (system resolver, ``/etc/hosts`` included), in its order, without
        repeats. Raises :class:`ResolutionError`."""
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), self.timeout
            )
        except (OSError, TimeoutError) as e:
            raise ResolutionError("remote-server-not-found", f"{host}: {e}") from e
        result: list[tuple[str, int]] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            address = (str(sockaddr[0]), int(sockaddr[1]))
            if address not in result:
                result.append(address)
        if not result:
            raise ResolutionError("remote-server-not-found", f"{host}: no address")
        return result
