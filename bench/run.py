"""The benchmark runner: fedgate and Prosody 0.12, side by side, in one run, with the same certificates (one test
CA, ECDSA P-256) and the same per-partner settings; the target pinned to one core, the load tool to the other.

    sudo .venv/bin/python -m bench.run --out bench-results.json          # both targets (needs root, Prosody)
    .venv/bin/python -m bench.run --targets fedgate --quick --out x.json  # fedgate only, seconds (the smoke)

Scenarios (each target restarted fresh for each one):

* ``auth:<method>``: inbound S2S authentications per second, a fresh connection each (SASL EXTERNAL over TLS,
  dialback over TLS, dialback over TCP), the load tool being the authoritative server for the connect-backs;
* ``relay``: stanzas per second through one established S2S stream (component -> target -> S2S -> the tool),
  then p50/p99 latency at a fixed rate;
* ``idle``: RSS growth per idle authenticated S2S stream (SASL EXTERNAL over TLS) at 1,000 and 5,000 streams;
* ``ceilings``: TLS handshakes per second and pyexpat's parse rate on one core (:mod:`bench.ceilings`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedgate.certs import CertFiles, TestCA
from fedgate.partners import Partner
from fedgate.store.sqlite import SqliteStore

from .load import raise_fd_limit
from .report import table

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("sasl_tls", "tls_dialback", "tcp_dialback")
# fedgate's per-partner triple (tls, sasl, dialback) that leaves exactly one method for each scenario.
SETTINGS: dict[str, tuple[str, str, bool]] = {
    "sasl_tls": ("required", "required", False),
    "tls_dialback": ("required", "not_supported", True),
    "tcp_dialback": ("not_supported", "not_supported", True),
}
SECRET = "bench-secret"


@dataclass(frozen=True)
class Layout:
    """Domains and loopback addresses of one run (none shared with the test suite's)."""

    subnet: str = "127.0.0"  # the first three octets: another for a run beside this one (the smoke test)
    gateway: str = "bench-gw.test"
    load: str = "bench-load.test"
    prosody: str = "bench-prosody.test"
    target_cpu: str = "0"
    tool_cpu: str = "1"

    @property
    def gateway_ip(self) -> str:
        return f"{self.subnet}.50"

    @property
    def load_ip(self) -> str:
        return f"{self.subnet}.51"

    @property
    def prosody_ip(self) -> str:
        return f"{self.subnet}.52"

    @property
    def sources(self) -> str:
        return f"{self.subnet}.100-131"


@dataclass
class Sizes:
    """How much of each scenario: the full run, or a smoke run of seconds."""

    auth_seconds: float = 10.0
    warmup: float = 2.0
    concurrency: int = int(os.environ.get("BENCH_CONCURRENCY", "64"))
    relay_count: int = 100000
    window: int = 2000
    rate: float = 10000.0
    latency_seconds: float = 5.0
    idle_streams: str = "1000,5000"
    idle_concurrency: int = 50
    handshakes: int = 1000
    parse_stanzas: int = 200000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(auth_seconds=0.5, warmup=0.2, concurrency=4, relay_count=300, window=100, rate=1000.0,
                   latency_seconds=0.3, idle_streams="5,10", idle_concurrency=5, handshakes=20, parse_stanzas=2000)


def pinned(cpu: str, argv: list[str]) -> list[str]:
    """``argv`` pinned to ``cpu`` with taskset when there is more than one core and taskset exists."""
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", cpu, *argv]
    return argv


def wait_listening(host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the target exited with status {process.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


@dataclass
class Context:
    layout: Layout
    sizes: Sizes
    workdir: Path
    ca: TestCA
    load_files: CertFiles
    results: dict[str, Any] = field(default_factory=dict)
    profile_dir: Path | None = None
    only: set[str] | None = None
    event_loop: str = "auto"
    rounds: int = 1

    def wanted(self, scenario: str) -> bool:
        return self.only is None or scenario in self.only

    def load_tool(self, scenario: str, target: Target, *extra: str) -> dict[str, Any]:
        lay, f = self.layout, self.load_files
        argv = pinned(lay.tool_cpu, [
            sys.executable, "-m", "bench.load", scenario, "--domain", lay.load, "--ip", lay.load_ip,
            "--chain", str(f.chain), "--key", str(f.key), "--cafile", str(self.ca.cert_path),
            "--pid", str(target.pid), "--target-domain", target.domain,
            "--target-addr", f"{target.ip}:5269", "--sources", lay.sources, *extra,
        ])
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"load tool {scenario} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


class Target:
    name = ""
    domain = ""
    ip = ""
    component_domain = ""
    sender = ""
    pid = 0

    def start(self, method: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def running(self, method: str) -> Iterator[Target]:
        self.start(method)
        try:
            yield self
        finally:
            self.stop()


class FedgateTarget(Target):
    """``python -m fedgate.cli serve`` as its own process, pinned to the target core."""

    name = "fedgate"

    def __init__(self, ctx: Context) -> None:
        lay = ctx.layout
        self.ctx = ctx
        self.domain = self.component_domain = lay.gateway
        self.ip = lay.gateway_ip
        self.sender = f"alice@{lay.gateway}/bench"
        self.dir = ctx.workdir / "fedgate"
        self.dir.mkdir(parents=True, exist_ok=True)
        files = ctx.ca.issue(lay.gateway, self.dir)
        self.config = self.dir / "fedgate.toml"
        self.config.write_text(f"""
[gateway]
database = "fedgate.sqlite3"
log_level = "info"
event_loop = "{ctx.event_loop}"
source_address = "{lay.gateway_ip}"

[[domain]]
name = "{lay.gateway}"
certificate = "{files.chain}"
key = "{files.key}"
component_secret = "{SECRET}"

[listen]
s2s = ["{lay.gateway_ip}:5269"]
component = "{lay.gateway_ip}:5347"
admin = ""

[trust]
system = false
cafiles = ["{ctx.ca.cert_path}"]

[dns]
use_srv = false
static_routes = {{ "{lay.load}" = "{lay.load_ip}:5269" }}
""")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, method: str) -> None:
        db = self.dir / "fedgate.sqlite3"
        for stale in self.dir.glob("fedgate.sqlite3*"):
            stale.unlink()
        tls, sasl, dialback = SETTINGS[method]
        with SqliteStore(db) as store:
            store.add_partner(Partner.parse(domain=self.ctx.layout.load, tls=tls, sasl=sasl, dialback=dialback,
                                            partner_type="federated"))
            store.update_gateway(connection_limit=50000, partner_connection_limit=50000)
        # FEDGATE_SRC: another source tree to run (to measure a proposed patch before it is applied).
        env = {**os.environ, "PYTHONPATH": os.environ.get("FEDGATE_SRC", str(ROOT / "src"))}
        argv = [sys.executable, "-m", "fedgate.cli", "serve", "--config", str(self.config)]
        if self.ctx.profile_dir is not None:  # pip install pyinstrument (not a dependency of fedgate)
            report = self.ctx.profile_dir / f"fedgate-{method}-{len(list(self.ctx.profile_dir.iterdir()))}.txt"
            argv[1:3] = ["-m", "pyinstrument", "--show-all", "-r", "text", "-o", str(report), "-m", "fedgate.cli"]
        with open(self.dir / f"fedgate-{method}.log", "ab") as log:
            self.process = subprocess.Popen(
                pinned(self.ctx.layout.target_cpu, argv),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, env=env,
            )
        self.pid = self.process.pid
        wait_listening(self.ip, 5347, 30, self.process)
        wait_listening(self.ip, 5269, 30, self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ProsodyTarget(Target):
    """Prosody 0.12 through the interop fixture's :class:`ProsodyServer`, plus an XEP-0114 component host for
    the relay, log level ``info`` (as fedgate's), pinned to the target core once started."""

    name = "prosody"

    def __init__(self, ctx: Context) -> None:
        lay = ctx.layout
        self.ctx = ctx
        self.domain = lay.prosody
        self.ip = lay.prosody_ip
        self.component_domain = f"comp.{lay.prosody}"
        self.sender = f"alice@{self.component_domain}/bench"
        self.dir = ctx.workdir / "prosody"
        self.server: Any = None
        self._certs: CertFiles | None = None

    def start(self, method: str) -> None:
        from tests.interop.prosody import ProsodyPolicy, ProsodyServer, lua

        ctx, lay, directory = self.ctx, self.ctx.layout, self.dir
        if self._certs is None:
            self._certs = ctx.ca.issue(self.component_domain, directory / "component", key_mode=0o640)
        certs = self._certs

        class BenchProsody(ProsodyServer):
            def options(self) -> dict[str, Any]:
                options: dict[str, Any] = super().options()
                options["log"] = [{"levels": {"min": "info"}, "to": "file", "filename": self.log_path}]
                options["component_ports"] = [5347]
                options["component_interfaces"] = [self.ip]
                options["s2s_timeout"] = 60
                return options

            def config_text(self) -> str:
                text: str = super().config_text()
                ssl = lua({"certificate": certs.chain, "key": certs.key})
                return text + f'\nComponent "comp.{self.domain}"\n    component_secret = "{SECRET}"\n    ssl = {ssl}\n'

        tls, sasl, dialback = SETTINGS[method]
        self.server = BenchProsody(directory, ctx.ca, domain=lay.prosody, ip=lay.prosody_ip,
                                   policy=ProsodyPolicy(tls, sasl, dialback))  # type: ignore[arg-type]
        self.server.start(timeout=30)
        self.pid = self.server.process.pid
        if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
            subprocess.run(["taskset", "-apc", lay.target_cpu, str(self.pid)], check=True, capture_output=True)
        wait_listening(self.ip, 5347, 30)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def run_ceilings(ctx: Context) -> dict[str, Any]:
    argv = pinned(ctx.layout.target_cpu, [
        sys.executable, "-m", "bench.ceilings", "--handshakes", str(ctx.sizes.handshakes),
        "--stanzas", str(ctx.sizes.parse_stanzas),
    ])
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_scenarios(ctx: Context, targets: list[Target]) -> None:
    s = ctx.sizes
    res = ctx.results.setdefault("targets", {t.name: {} for t in targets})
    for method in METHODS:
        if not ctx.wanted(f"auth:{method}"):
            continue
        # Rounds alternate the order of the targets (f p, p f, f p, ...), and each target's figure is its
        # median round: the machine's speed drifts over minutes, and a ratio should not hang on one moment.
        runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        for round_ in range(ctx.rounds):
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                with target.running(method):
                    runs[target.name].append(ctx.load_tool(
                        "auth", target, "--method", method, "--duration", str(s.auth_seconds),
                        "--warmup", str(s.warmup), "--concurrency", str(s.concurrency)))
                _progress(target.name, f"auth:{method}", runs[target.name][-1])
        for target in targets:
            ordered = sorted(runs[target.name], key=lambda r: float(r["per_second"]))
            median = ordered[(len(ordered) - 1) // 2]
            res[target.name][f"auth:{method}"] = {**median,
                                                  "rounds": [r["per_second"] for r in runs[target.name]]}
    for target in targets if ctx.wanted("relay") else []:
        with target.running("sasl_tls"):
            res[target.name]["relay"] = ctx.load_tool(
                "relay", target, "--component-domain", target.component_domain,
                "--component-addr", f"{target.ip}:5347", "--secret", SECRET, "--sender", target.sender,
                "--recipient", f"bob@{ctx.layout.load}", "--count", str(s.relay_count), "--window", str(s.window),
                "--rate", str(s.rate), "--latency-seconds", str(s.latency_seconds))
        _progress(target.name, "relay", res[target.name]["relay"])
    for target in targets if ctx.wanted("idle") else []:
        with target.running("sasl_tls"):
            res[target.name]["idle"] = ctx.load_tool(
                "idle", target, "--method", "sasl_tls", "--streams", s.idle_streams,
                "--concurrency", str(s.idle_concurrency))
        _progress(target.name, "idle", res[target.name]["idle"])


def _progress(target: str, scenario: str, result: dict[str, Any]) -> None:
    print(f"# {target} {scenario}: {json.dumps(result)}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    prosody_version = None
    if shutil.which("prosody"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "prosody"], capture_output=True, text=True,
                                 timeout=10).stdout
            prosody_version = out or None
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0],
            "prosody": prosody_version, "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def resolved_loop(choice: str) -> str:
    """The loop fedgate will run on for ``gateway.event_loop = choice``."""
    if choice == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return choice


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="fedgate,prosody", help="comma list: fedgate, prosody")
    p.add_argument("--quick", action="store_true", help="tiny counts (the smoke test)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--subnet", default="127.0.0", help="loopback addresses SUBNET.50-52 and .100-131")
    p.add_argument("--profile", type=Path, help="profile fedgate with pyinstrument; reports go to this directory")
    p.add_argument("--only", help="comma list of scenarios: auth:sasl_tls, auth:tls_dialback, auth:tcp_dialback, "
                   "relay, idle")
    p.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    p.add_argument("--rounds", type=int, default=3,
                   help="authentication rounds per target, alternating the order; the median is reported")
    p.add_argument("--event-loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                   help="fedgate's gateway.event_loop (auto: uvloop when installed)")
    args = p.parse_args(argv)
    raise_fd_limit()
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="fedgate-bench-"))
    workdir.chmod(0o755)  # Prosody (another user) must reach its directory
    layout, sizes = Layout(subnet=args.subnet), Sizes.quick() if args.quick else Sizes()
    hosts: Any = None
    try:
        ca = TestCA.create(workdir / "ca")
        ctx = Context(layout, sizes, workdir, ca, ca.issue(layout.load, workdir / "load"))
        ctx.event_loop = args.event_loop
        ctx.rounds = 1 if args.quick else max(1, args.rounds)
        ctx.results["machine"] = {**machine(), "fedgate_event_loop": resolved_loop(args.event_loop)}
        ctx.results["sizes"] = vars(sizes)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            ctx.profile_dir = args.profile.resolve()
        ctx.only = set(args.only.split(",")) if args.only else None
        targets: list[Target] = []
        for name in names:
            if name == "fedgate":
                targets.append(FedgateTarget(ctx))
            elif name == "prosody":
                from tests.interop.prosody import HostsFile

                # Prosody resolves the tool's domain through /etc/hosts (read when it starts).
                hosts = HostsFile()
                hosts.add({layout.load: layout.load_ip})
                targets.append(ProsodyTarget(ctx))
            else:
                p.error(f"unknown target {name!r}")
        if ctx.wanted("ceilings"):
            ctx.results["ceilings"] = run_ceilings(ctx)
            _progress("-", "ceilings", ctx.results["ceilings"])
        run_scenarios(ctx, targets)
    finally:
        if hosts is not None:
            hosts.close()
        if args.keep:
            print(f"# work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(ctx.results, indent=2) + "\n")
    print(table(ctx.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
