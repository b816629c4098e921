"""The load tool: one process (pin it to its own core with ``taskset``) that plays the partner domain against a
target server (fedgate or Prosody) and prints one JSON object with the result.

    python -m bench.load auth  --method sasl_tls|tls_dialback|tcp_dialback --duration 10 ...
    python -m bench.load relay --count 50000 --rate 10000 --latency-seconds 5 ...
    python -m bench.load idle  --streams 1000,5000 ...

It always runs the partner's own server on ``--ip``:5269 (:class:`bench.wire.PeerServer`): the
authoritative server the target connects back to for dialback, and the receiving end of the relay stream.
Nothing leaves loopback; every phase is bounded by a count or a duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import ssl
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from OpenSSL import SSL

from .wire import METHODS, Component, Identity, Initiator, PeerServer, WireError, authenticate, percentile

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of ``pid`` (``None``: this process)."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_fd_limit(wanted: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return max(new, soft)


class Usage:
    """CPU used by the target and by this tool over a measured window."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.t0 = time.perf_counter()
        self.target0 = cpu_seconds(pid) if pid else 0.0
        self.tool0 = cpu_seconds(None)

    def result(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        out = {"seconds": round(wall, 3), "tool_cpu": round((cpu_seconds(None) - self.tool0) / wall, 3)}
        if self.pid:
            out["target_cpu"] = round((cpu_seconds(self.pid) - self.target0) / wall, 3)
        return out


def _sources(spec: str | None) -> list[str | None]:
    """``127.0.0.100-115`` or a comma list; several source addresses so that ports never run out."""
    if not spec:
        return [None]
    out: list[str | None] = []
    for part in spec.split(","):
        if "-" in part.rsplit(".", 1)[1]:
            base, rng = part.rsplit(".", 1)
            lo, hi = (int(x) for x in rng.split("-"))
            out += [f"{base}.{i}" for i in range(lo, hi + 1)]
        else:
            out.append(part)
    return out


def _target(args: argparse.Namespace) -> tuple[str, int]:
    host, _, port = args.target_addr.rpartition(":")
    return host, int(port)


def _identity(args: argparse.Namespace) -> Identity:
    return Identity(args.domain, args.ip, Path(args.chain), Path(args.key), Path(args.cafile))


def _context(me: Identity, method: str) -> SSL.Context | None:
    if method == "tcp_dialback":
        return None
    # Dialback over TLS is what a peer without a usable certificate does: it presents none, so neither target
    # can skip the connect-back on the strength of a certificate.
    return me.initiator_context(with_certificate=method == "sasl_tls")


async def _peer(args: argparse.Namespace) -> PeerServer:
    peer = PeerServer(_identity(args))
    await peer.start()
    return peer


def _connector(args: argparse.Namespace, me: Identity) -> Callable[[bool], Awaitable[Initiator | None]]:
    """One authentication with the target per call, from the next source address."""
    ctx = _context(me, args.method)
    addr = _target(args)
    sources = itertools.cycle(_sources(args.sources))

    def connect(hold: bool) -> Awaitable[Initiator | None]:
        return authenticate(me, args.target_domain, addr, args.method, ctx, source=next(sources), hold=hold)

    return connect


async def run_auth(args: argparse.Namespace) -> dict[str, Any]:
    peer = await _peer(args)
    connect = _connector(args, peer.me)
    errors: Counter[str] = Counter()
    done = 0
    warm = True
    stop_at = 0.0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            try:
                await connect(False)
                if not warm:
                    done += 1
            except (WireError, OSError, TimeoutError, ssl.SSLError, SSL.Error) as exc:
                errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1

    try:
        # Warm-up (not counted): the target's first connections pay for imports, caches, contexts.
        stop_at = time.perf_counter() + args.warmup
        await asyncio.gather(*(worker() for _ in range(min(4, args.concurrency))))
        warm = False
        errors.clear()
        usage = Usage(args.pid)
        stop_at = time.perf_counter() + args.duration
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        result = usage.result()
    finally:
        await peer.stop()
    return {
        "scenario": "auth",
        "method": args.method,
        "concurrency": args.concurrency,
        "authentications": done,
        "per_second": round(done / result["seconds"], 1),
        "failures": sum(errors.values()),
        "errors": dict(errors.most_common(3)),
        "verifies": peer.verifies,
        **result,
    }


async def run_relay(args: argparse.Namespace) -> dict[str, Any]:
    peer = await _peer(args)
    host, _, port = args.component_addr.rpartition(":")
    comp = Component(args.component_domain, args.secret, (host, int(port)), args.sender, args.recipient)
    relay = peer.relay
    try:
        await comp.connect()
        # Establish the S2S stream (and warm up) before measuring.
        comp.send_batch(args.window // 4 or 1)
        await relay.wait_for(comp.sent, 60)
        # Throughput: at most --window messages in flight (sent, not yet received at the peer).
        base = relay.received
        target = comp.sent + args.count
        usage = Usage(args.pid)
        t0 = time.perf_counter_ns()
        while comp.sent < target:
            room = args.window - (comp.sent - relay.received)
            if room < args.window // 4:
                await relay.wait_for(comp.sent - args.window // 2, 60)
                continue
            comp.send_batch(min(room, target - comp.sent, 500))
            await comp.drain()
        await relay.wait_for(target, 120)
        t1 = relay.last_ns
        cpu = usage.result()
        throughput = (relay.received - base) / ((t1 - t0) / 1e9)

        # Latency at a fixed rate: batches every millisecond, stamped when written.
        relay.keep_latency = True
        relay.latencies_ns.clear()
        start_count = comp.sent
        total = int(args.rate * args.latency_seconds)
        usage = Usage(args.pid)
        began = time.perf_counter()
        while comp.sent - start_count < total:
            due = min(total, int((time.perf_counter() - began) * args.rate)) - (comp.sent - start_count)
            if due > 0:
                comp.send_batch(due)
            await asyncio.sleep(0.0005)
        sent_seconds = time.perf_counter() - began
        with contextlib.suppress(TimeoutError):
            await relay.wait_for(comp.sent, 30)
        lat_cpu = usage.result()
        lat = relay.latencies_ns
        return {
            "scenario": "relay",
            "stanza_bytes": len(comp.message(10**6, time.perf_counter_ns())),
            "stanzas": args.count,
            "per_second": round(throughput, 1),
            "window": args.window,
            **cpu,
            "latency": {
                "rate": args.rate,
                "achieved_rate": round(total / sent_seconds, 1),
                "stanzas": len(lat),
                "lost": total - len(lat),
                "p50_ms": round(percentile(lat, 0.50) / 1e6, 3),
                "p99_ms": round(percentile(lat, 0.99) / 1e6, 3),
                "max_ms": round(max(lat, default=0) / 1e6, 3),
                **{k: v for k, v in lat_cpu.items() if k != "seconds"},
            },
        }
    finally:
        if comp.conn is not None:
            await comp.conn.close()
        await peer.stop()


async def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    peer = await _peer(args)
    connect = _connector(args, peer.me)
    held: list[Initiator | None] = []
    points = []
    errors: Counter[str] = Counter()
    try:
        # Warm-up: a few streams opened and closed, so one-time allocations are not counted per stream.
        for _ in range(20):
            await connect(False)
        await asyncio.sleep(1.0)
        base = rss_bytes(args.pid)
        for goal in (int(x) for x in args.streams.split(",")):
            while len(held) < goal:
                batch = min(args.concurrency, goal - len(held))
                results = await asyncio.gather(
                    *(connect(True) for _ in range(batch)),
                    return_exceptions=True,
                )
                for r in results:
                    if isinstance(r, BaseException):
                        errors[f"{type(r).__name__}: {str(r)[:120]}"] += 1
                    else:
                        held.append(r)
                if sum(errors.values()) > max(50, goal // 10):
                    raise RuntimeError(f"too many failures: {dict(errors.most_common(3))}")
            await asyncio.sleep(args.settle)
            alive = sum(1 for c in held if c is not None and c.alive)
            rss = rss_bytes(args.pid)
            points.append({
                "streams": goal,
                "alive": alive,
                "rss_bytes": rss,
                "bytes_per_stream": round((rss - base) / goal),
            })
    finally:
        await asyncio.gather(*(c.close() for c in held if c is not None), return_exceptions=True)
        await peer.stop()
    return {"scenario": "idle", "method": args.method, "base_rss_bytes": base, "points": points,
            "failures": sum(errors.values()), "errors": dict(errors.most_common(3))}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=("auth", "relay", "idle"))
    p.add_argument("--domain", required=True, help="the partner domain this tool plays")
    p.add_argument("--ip", required=True, help="its address (its server listens on IP:5269)")
    p.add_argument("--chain", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--pid", type=int, help="the target's process id (CPU, RSS)")
    p.add_argument("--target-domain")
    p.add_argument("--target-addr", help="HOST:PORT of the target's S2S listener")
    p.add_argument("--sources", help="source addresses, e.g. 127.0.0.100-115")
    p.add_argument("--method", choices=METHODS, default="sasl_tls")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--component-domain")
    p.add_argument("--component-addr")
    p.add_argument("--secret", default="secret")
    p.add_argument("--sender")
    p.add_argument("--recipient")
    p.add_argument("--count", type=int, default=50000)
    p.add_argument("--window", type=int, default=2000)
    p.add_argument("--rate", type=float, default=10000.0)
    p.add_argument("--latency-seconds", type=float, default=5.0)
    p.add_argument("--streams", default="1000,5000")
    p.add_argument("--settle", type=float, default=2.0)
    return p


def _run(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """The tool on uvloop when it is installed: the less the tool spends per connection, the surer it is that
    a figure is the target's (it has one core, like the target)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    raise_fd_limit()
    runner = {"auth": run_auth, "relay": run_relay, "idle": run_idle}[args.scenario]
    profile_dir = os.environ.get("BENCH_LOAD_PROFILE")  # profile the tool itself (pip install pyinstrument)
    if profile_dir:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        result = asyncio.run(runner(args))
        profiler.stop()
        name = f"load-{args.scenario}-{args.method}-{os.getpid()}.txt"
        (Path(profile_dir) / name).write_text(profiler.output_text(unicode=True, show_all=False))
    else:
        result = _run(runner(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
