"""Real fedgate gateways on loopback for the end-to-end tests: a test CA, certificates, an SQLite store per
gateway, each domain on its own 127.0.0.x address and port 5269."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedgate.certs import TestCA
from fedgate.demo import settle as demo_settle
from fedgate.partners import Partner
from fedgate.policy import Settings
from fedgate.resolver import Resolver
from fedgate.s2s import S2SEvent
from fedgate.server import Gateway, GatewayConfig, LocalDomain
from fedgate.store import UnknownPartner
from fedgate.store.sqlite import SqliteStore
from fedgate.tls import Credentials, TrustAnchors


@dataclass
class Node:
    domain: str
    ip: str
    gateway: Gateway
    store: SqliteStore
    events: list[tuple[str, S2SEvent]]

    def set_partner(self, domain: str, settings: Settings, **extra: object) -> None:
        values = {"tls": settings.tls.value, "sasl": settings.sasl.value, "dialback": settings.dialback, **extra}
        try:
            self.store.update_partner(domain, **values)
        except UnknownPartner:
            self.store.add_partner(Partner.parse(domain=domain, **values))
        self.gateway.reload()


async def make_node(
    tmp: Path,
    ca: TestCA,
    domain: str,
    ip: str,
    routes: dict[str, str],
    *,
    cert_names: list[str] | None = None,
    component_secret: str | None = "secret",
    component_port: int | None = None,
    listen_port: int = 5269,
) -> Node:
    files = ca.issue(domain, tmp, dns_names=cert_names, srv_names=cert_names is None, basename=f"{domain}-{ip}")
    store = SqliteStore(tmp / f"{domain}-{ip}.sqlite3")
    store.update_gateway(stream_establishment_timeout=10)
    config = GatewayConfig(
        domains={domain: LocalDomain(domain, Credentials(files.chain, files.key), component_secret)},
        s2s_listen=[(ip, listen_port)],
        component_listen=(ip, component_port) if component_port else None,
        trust=TrustAnchors(cafiles=(ca.cert_path,), use_system=False),
        resolver=Resolver(static_routes=routes, use_srv=False),
        source_address=ip,
    )
    gateway = Gateway(config, store)
    events: list[tuple[str, S2SEvent]] = []
    gateway.listeners.append(lambda d, e: events.append((d, e)))
    await gateway.start()
    return Node(domain, ip, gateway, store, events)


async def settle(gateways: list[Gateway]) -> None:
    """Close every stream and wait until the gateways have let go of them (what ``fedgate demo`` does)."""
    await demo_settle(gateways)
