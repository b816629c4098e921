"""``fedgate demo``: two real gateways on loopback, a component behind each, a message and its reply for each
authentication method, and one combination the policy engine refuses.

Everything lives in a temporary directory (a throw-away test CA, certificates, two SQLite stores) and on
127.0.0.1 with ephemeral ports: no root, no DNS, no other XMPP server. Each gateway's resolver gets a static
route to the other's bound port once both listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

from .certs import TestCA
from .component_client import ComponentClient, ComponentError, body_of, error_condition
from .explain import exclusion_text, failure_reason, method_name, note_text
from .i18n import t
from .partners import Partner, PartnerType
from .policy import Exclusion, Method, SettingError, Settings, evaluate, exclusions
from .resolver import Resolver
from .s2s import Authenticated, NegotiationFailed, S2SEvent
from .server import Gateway, GatewayConfig, LocalDomain
from .store import UnknownPartner
from .store.sqlite import SqliteStore
from .tls import Credentials, TrustAnchors

__all__ = ["DOMAIN_A", "DOMAIN_B", "FORCING", "REFUSED", "DemoReport", "DemoRow", "Refusal", "run_demo"]

DOMAIN_A = "demo-a.test"
DOMAIN_B = "demo-b.test"
HOST = "127.0.0.1"
# Settings (both sides the same) that leave exactly one method.
FORCING: dict[Method, Settings] = {
    Method.SASL_TLS: Settings.parse_triple("required/required/false"),
    Method.TLS_DIALBACK: Settings.parse_triple("required/not_supported/true"),
    Method.TCP_DIALBACK: Settings.parse_triple("not_supported/not_supported/true"),
}
REFUSED = Settings.parse_triple("not_supported/required/false")
MESSAGE_TIMEOUT = 5.0


@dataclass
class DemoRow:
    method: str
    settings: str
    negotiated: str | None = None
    tls_version: str | None = None
    round_trip_ms: float | None = None
    ok: bool = False
    detail: str = ""


@dataclass
class Refusal:
    settings: str
    refused: bool
    errors: list[str]
    explanation: list[str]
    detail: str


@dataclass
class DemoReport:
    rows: list[DemoRow] = field(default_factory=list)
    refused: Refusal | None = None

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows) and self.refused is not None and self.refused.refused

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": [asdict(r) for r in self.rows],
            "refused": asdict(self.refused) if self.refused else None,
            "ok": self.ok,
        }


@dataclass
class _Side:
    domain: str
    gateway: Gateway
    store: SqliteStore
    events: list[tuple[str, S2SEvent]]
    component: ComponentClient | None = None

    @property
    def s2s_port(self) -> int:
        return self.gateway.bound_ports()[0][1]

    @property
    def component_port(self) -> int:
        return self.gateway.bound_ports()[1][1]

    def set_partner(self, domain: str, settings: Settings) -> None:
        values: dict[str, object] = {
            "tls": settings.tls.value, "sasl": settings.sasl.value, "dialback": settings.dialback,
            "partner_type": PartnerType.FEDERATED.value,
        }
        try:
            self.store.update_partner(domain, **values)
        except UnknownPartner:
            self.store.add_partner(Partner.parse(domain=domain, **values))
        self.gateway.reload()


async def _make_side(tmp: Path, ca: TestCA, domain: str, secret: str) -> _Side:
    files = ca.issue(domain, tmp / "certs")
    store = SqliteStore(tmp / f"{domain}.sqlite3")
    store.update_gateway(stream_establishment_timeout=int(MESSAGE_TIMEOUT))
    config = GatewayConfig(
        domains={domain: LocalDomain(domain, Credentials(files.chain, files.key), secret)},
        s2s_listen=[(HOST, 0)],
        component_listen=(HOST, 0),
        trust=TrustAnchors(cafiles=(ca.cert_path,), use_system=False),
        resolver=Resolver(use_srv=False),
        source_address=HOST,
    )
    gateway = Gateway(config, store)
    events: list[tuple[str, S2SEvent]] = []
    gateway.listeners.append(lambda d, e: events.append((d, e)))
    await gateway.start()
    return _Side(domain, gateway, store, events)


async def settle(gateways: list[Gateway], timeout: float = 5.0) -> None:
    """Close every S2S stream and wait until no gateway holds one (links and inbound streams)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        # Again each round: a dialback connect-back still under way may open one more stream.
        for g in gateways:
            g.close_streams()
        if all(not g.links and not g.streams for g in gateways):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("streams did not close")


def _failure_text(events: list[tuple[str, S2SEvent]], lang: str | None) -> str | None:
    for _, ev in events:
        if isinstance(ev, NegotiationFailed):
            return failure_reason(ev.excluded, lang, fallback=ev.detail)
    return None


async def _exchange(a: _Side, b: _Side, method: Method, lang: str | None) -> DemoRow:
    settings = FORCING[method]
    row = DemoRow(method=method.value, settings=str(settings))
    a.set_partner(b.domain, settings)
    b.set_partner(a.domain, settings)
    a.events.clear()
    b.events.clear()
    assert a.component is not None and b.component is not None
    body = f"ping {method.value}"
    started = time.perf_counter()
    a.component.drain()
    b.component.drain()
    try:
        a.component.send_message(f"alice@{a.domain}/demo", f"bob@{b.domain}", body)
        # The message reaches B, or comes back to A as an error (no common method, for one).
        got = await _first(b.component, a.component)
        _check(got, body, b.component, a, b, lang)
        b.component.send_message(f"bob@{b.domain}", got[1].get("from", ""), f"pong {method.value}")
        reply = await _first(a.component, b.component)
        _check(reply, f"pong {method.value}", a.component, b, a, lang)
        row.round_trip_ms = round((time.perf_counter() - started) * 1000, 1)
    except TimeoutError:
        row.detail = t("demo.timeout", lang, seconds=MESSAGE_TIMEOUT)
    except (_Failed, ComponentError) as exc:
        row.detail = str(exc)
    out = [e.method for d, e in a.events if d == "out" and isinstance(e, Authenticated)]
    row.negotiated = out[0].value if out else None
    for stream in a.gateway.live_streams():
        if stream["direction"] == "out" and stream["partner"] == b.domain:
            version = stream["tls_version"]
            row.tls_version = version if isinstance(version, str) else None
    if row.round_trip_ms is not None:
        if row.negotiated == method.value:
            row.ok = True
            row.detail = t("demo.ok_detail", lang, method=method_name(method, lang))
        else:
            row.detail = t("demo.wrong_method", lang, expected=method.value, got=row.negotiated or "-")
    return row


class _Failed(Exception):
    pass


async def _first(receiver: ComponentClient, sender: ComponentClient) -> tuple[ComponentClient, Element]:
    """The first message either component gets: the receiver's delivery or a bounce back to the sender."""
    tasks = {asyncio.ensure_future(c.next_message(MESSAGE_TIMEOUT)): c for c in (receiver, sender)}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    task = next(iter(done))
    return tasks[task], task.result()


def _check(
    got: tuple[ComponentClient, Element], body: str, receiver: ComponentClient, sender: _Side, far: _Side,
    lang: str | None,
) -> None:
    who, stanza = got
    condition = error_condition(stanza)
    if condition is not None:
        reason = _failure_text(sender.events, lang) or _failure_text(far.events, lang)
        raise _Failed(t("demo.bounced", lang, condition=condition) + (f": {reason}" if reason else ""))
    if who is not receiver or body_of(stanza) != body:
        raise _Failed(t("demo.unexpected", lang, what=body_of(stanza) or "?"))


def refusal(store: SqliteStore, partner: str, lang: str | None) -> Refusal:
    """Try to give ``partner`` the settings no method can satisfy; the store must refuse and change nothing."""
    before = store.get_partner(partner)
    evaluation = evaluate(REFUSED)
    explanation = [note_text(n, lang) for n in evaluation.errors]
    explanation += [
        exclusion_text(Exclusion(m, "local", r), lang) for m in Method for r in exclusions(REFUSED, m)
    ]
    try:
        store.update_partner(partner, tls=REFUSED.tls.value, sasl=REFUSED.sasl.value, dialback=REFUSED.dialback)
    except SettingError as exc:
        unchanged = store.get_partner(partner) == before
        detail = t("demo.refused_by_store", lang, field=exc.field)
        return Refusal(str(REFUSED), unchanged, [n.value for n in evaluation.errors], explanation, detail)
    store.update_partner(partner, **{k: v for k, v in before.as_dict().items() if k != "domain"})
    return Refusal(str(REFUSED), False, [n.value for n in evaluation.errors], explanation,
                   t("demo.not_refused", lang))


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Gateway log records would land on stderr through logging's last resort; the report says it all."""
    logger = logging.getLogger("fedgate")
    if logger.hasHandlers():
        yield
        return
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


async def run_demo(lang: str | None = None, workdir: Path | None = None) -> DemoReport:
    """Run the whole demo; ``workdir`` (default: a temporary directory, removed afterwards) holds the CA,
    certificates and stores."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="fedgate-demo-") as tmp:
            return await run_demo(lang, Path(tmp))
    with _quiet_logs():
        return await _run(lang, workdir)


async def _run(lang: str | None, tmp: Path) -> DemoReport:
    report = DemoReport()
    ca = TestCA.create(tmp / "ca", name="fedgate demo CA")
    secret = secrets.token_hex(16)
    a = await _make_side(tmp, ca, DOMAIN_A, secret)
    b: _Side | None = None
    try:
        b = await _make_side(tmp, ca, DOMAIN_B, secret)
        routes = {DOMAIN_A: f"{HOST}:{a.s2s_port}", DOMAIN_B: f"{HOST}:{b.s2s_port}"}
        for side in (a, b):
            side.gateway.config.resolver = Resolver(static_routes=routes, use_srv=False)
            side.component = ComponentClient(side.domain, secret, HOST, side.component_port)
            await side.component.connect()
        for method in FORCING:
            report.rows.append(await _exchange(a, b, method, lang))
            await settle([a.gateway, b.gateway])
        report.refused = refusal(a.store, DOMAIN_B, lang)
    finally:
        sides = [a] if b is None else [a, b]
        for side in sides:
            if side.component is not None:
                await side.component.close()
        with contextlib.suppress(TimeoutError):
            await settle([s.gateway for s in sides])
        for side in sides:
            await side.gateway.stop()
            side.store.close()
    return report
