"""The admin endpoint of a running gateway, on loopback: ``/health`` for load balancers, ``/metrics`` for
Prometheus, ``/status`` (live streams, components, queues; needs the admin token) for ``fedgate status``.
The optional metrics endpoint (``listen.metrics``) answers ``/health`` and ``/metrics`` only, without a token.

HTTP is spoken by h11 (sans-IO), so this module is only the asyncio glue and the three answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Iterator

import h11
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .server import Gateway

log = logging.getLogger("fedgate.admin")
_MAX_REQUEST = 16384


class GatewayCollector(Collector):
    """Reads the gateway's state and counters at scrape time: nothing is counted twice, nothing on the hot
    path beyond the plain integers the gateway keeps anyway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        g = self.gateway
        streams = GaugeMetricFamily(
            "fedgate_streams", "Authenticated S2S streams", labels=["partner", "direction", "method"]
        )
        counts: dict[tuple[str, str, str], int] = {}
        for r in g.streams.values():
            if r.method is not None:
                key = (r.remote_domain or "", str(r.direction), r.method.value)
                counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items()):
            streams.add_metric(list(key), n)
        yield streams
        auth = CounterMetricFamily(
            "fedgate_authentications", "S2S streams authenticated", labels=["direction", "method"]
        )
        for (direction, method), n in sorted(g.stats.authentications.items()):
            auth.add_metric([direction, method], n)
        yield auth
        failures = CounterMetricFamily(
            "fedgate_negotiation_failures",
            "S2S streams that failed before authenticating, by reason (a fixed set of codes; a peer's own "
            "dialback error text is counted as dialback_other)",
            labels=["reason"],
        )
        for reason, n in sorted(g.stats.negotiation_failures.items()):
            failures.add_metric([reason], n)
        yield failures
        stanzas = CounterMetricFamily("fedgate_stanzas", "Stanzas relayed over S2S", labels=["direction"])
        stanzas.add_metric(["in"], g.stats.stanzas_in)
        stanzas.add_metric(["out"], g.stats.stanzas_out)
        yield stanzas
        bounces = CounterMetricFamily("fedgate_bounces", "Stanzas returned with an error", labels=["condition"])
        for condition, n in sorted(g.stats.bounces.items()):
            bounces.add_metric([condition], n)
        yield bounces
        yield CounterMetricFamily("fedgate_dropped", "Error stanzas that could not be bounced", value=g.stats.dropped)
        traffic = CounterMetricFamily(
            "fedgate_bytes", "Bytes on the wire on S2S and component sockets (TLS records included, both ways)",
            labels=["direction"],
        )
        traffic.add_metric(["in"], g.stats.bytes_in)
        traffic.add_metric(["out"], g.stats.bytes_out)
        yield traffic
        queue = GaugeMetricFamily(
            "fedgate_queue_depth", "Stanzas waiting for an outbound S2S stream, by our domain and the partner's",
            labels=["local", "partner"],
        )
        for (local, remote), link in sorted(g.links.items()):
            queue.add_metric([local, remote], len(link.queue))
        yield queue
        yield GaugeMetricFamily("fedgate_components", "Connected XEP-0114 components", value=len(g.components))


def status(gateway: Gateway) -> dict[str, object]:
    return {
        "streams": gateway.live_streams(),
        "negotiating": sum(1 for r in gateway.streams.values() if r.method is None),
        "components": sorted(gateway.components),
        "queues": {f"{local}->{remote}": len(link.queue) for (local, remote), link in gateway.links.items()},
        "domains": sorted(gateway.config.domains),
    }


class AdminServer:
    """``token`` None: the metrics endpoint, which answers ``/health`` and ``/metrics`` and nothing else."""

    def __init__(self, gateway: Gateway, token: str | None) -> None:
        self.gateway = gateway
        self.token = token
        self.registry = CollectorRegistry()
        self.registry.register(GatewayCollector(gateway))
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        sockname = self._server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def answer(self, method: str, path: str, authorization: str | None) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request; pure, so tests can call it directly."""
        if method != "GET":
            return 405, "text/plain", b"only GET\n"
        if path == "/health":
            return 200, "text/plain", b"ok\n"
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", generate_latest(self.registry)
        if path == "/status" and self.token is not None:
            expected = f"Bearer {self.token}".encode()
            if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
                return 401, "text/plain", b"admin token required\n"
            return 200, "application/json", json.dumps(status(self.gateway)).encode()
        return 404, "text/plain", b"not found\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        try:
            request: h11.Request | None = None
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await asyncio.wait_for(reader.read(_MAX_REQUEST), 10)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            headers = {k.decode().lower(): v.decode() for k, v in request.headers}
            code, ctype, body = self.answer(request.method.decode(), request.target.decode().split("?")[0],
                                            headers.get("authorization"))
            out = conn.send(h11.Response(status_code=code, headers=[
                ("content-type", ctype), ("content-length", str(len(body))), ("connection", "close")]))
            out = (out or b"") + (conn.send(h11.Data(data=body)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
            writer.write(out)
            await writer.drain()
        except (h11.RemoteProtocolError, TimeoutError, ConnectionError) as exc:
            log.debug("admin request failed: %s", exc)
        finally:
            writer.close()
