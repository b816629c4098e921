"""``fedgate serve`` runs the gateway from a config file; ``fedgate status`` asks a running one what it has."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import click

from .. import config as config_mod
from ..admin import AdminServer
from ..i18n import t
from ..logsetup import configure
from ..server import Gateway
from ..store import open_store
from ..tls import TlsError
from .output import error_line, table

log = logging.getLogger("fedgate")

STORE_POLL_SECONDS = 1.0
SHUTDOWN_BOUND_SECONDS = 10.0


def _load(path: Path) -> config_mod.ServeConfig:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        click.echo(error_line(t("ops.config_error", key=exc.key, problem=exc.problem)), err=True)
        raise SystemExit(2) from None


def reload_config(cfg: config_mod.ServeConfig, gateway: Gateway, *, logging_too: bool) -> config_mod.ServeConfig:
    """SIGHUP: read the whole file again and apply what can change live (domains, certificates, keys, trust,
    component secrets, DNS, and with ``logging_too`` the log format and level); a line for each changed key
    that needs a restart. A file with an error changes nothing and says why. Returns the configuration now
    in force."""
    try:
        fresh = config_mod.load(cfg.path)
        gateway.replace_credentials(fresh.gateway)
    except config_mod.ConfigError as exc:
        log.error("%s", t("ops.reload_failed", key=exc.key, problem=exc.problem))
        return cfg
    except (TlsError, ValueError) as exc:  # a file changed between the check and the load
        log.error("%s", t("ops.reload_failed", key="domain", problem=str(exc)))
        return cfg
    for key in cfg.restart_keys(fresh):
        log.warning("%s", t("ops.restart_needed", key=key, path=str(cfg.path)))
    if logging_too and (fresh.log_format, fresh.log_level) != (cfg.log_format, cfg.log_level):
        configure(fresh.log_format, fresh.log_level)
    gateway.reload()
    log.info("%s", t("ops.reloaded", path=str(cfg.path)))
    # What is in force: the new file, except what only a restart changes.
    fresh.database, fresh.admin_token_file = cfg.database, cfg.admin_token_file
    fresh.event_loop = cfg.event_loop
    fresh.admin_listen, fresh.metrics_listen = cfg.admin_listen, cfg.metrics_listen
    fresh.gateway.s2s_listen, fresh.gateway.component_listen = cfg.gateway.s2s_listen, cfg.gateway.component_listen
    return fresh


async def run(
    cfg: config_mod.ServeConfig, *, ready: asyncio.Event | None = None, own_logging: bool = False
) -> None:
    """Serve until SIGTERM/SIGINT; SIGHUP re-reads the config file (``reload_config``) and the store.
    ``cfg`` has been checked whole (``config.load``: certificates and keys too) before anything starts.
    ``own_logging``: the process's logging follows the file's (``fedgate serve``; in-process callers keep
    theirs)."""
    store = open_store(cfg.database)
    try:
        gateway = Gateway(cfg.gateway, store)
    except BaseException:
        store.close()
        raise
    admin = AdminServer(gateway, cfg.admin_token()) if cfg.admin_listen else None
    metrics = AdminServer(gateway, None) if cfg.metrics_listen else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    current = cfg

    def hangup() -> None:
        nonlocal current
        current = reload_config(current, gateway, logging_too=own_logging)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        await gateway.start()
        if admin is not None and cfg.admin_listen is not None:
            await admin.start(*cfg.admin_listen)
        if metrics is not None and cfg.metrics_listen is not None:
            await metrics.start(*cfg.metrics_listen)
        log.info("%s", t("ops.serving", domains=", ".join(sorted(cfg.gateway.domains)),
                         addresses=", ".join(f"{h}:{p}" for h, p in gateway.bound_ports()),
                         loop="uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"))
        if ready is not None:
            ready.set()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STORE_POLL_SECONDS)
            gateway.reload()  # partner changes made with the CLI take effect without a restart
    finally:
        log.info("%s", t("ops.stopping"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.stop(), SHUTDOWN_BOUND_SECONDS)
        for endpoint in (admin, metrics):
            if endpoint is not None:
                await endpoint.stop()
        store.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


@click.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default="fedgate.toml",
              show_default=True, help="The configuration file (fedgate init writes one).")
def serve(config_path: Path) -> None:
    """Run the gateway: S2S listeners, component listener, admin endpoint. Stops cleanly on SIGTERM;
    SIGHUP reloads certificates; partner changes made with the CLI apply within a second."""
    cfg = _load(config_path)
    configure(cfg.log_format, cfg.log_level)
    with asyncio.Runner(loop_factory=loop_factory(cfg.event_loop)) as runner:
        runner.run(run(cfg, own_logging=True))


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``gateway.event_loop`` asks for: uvloop (libuv, written in Cython) for "uvloop", and for
    "auto" when it is installed; asyncio's own loop otherwise. uvloop makes the accept path, socket reads and
    writes and timers cheaper (bench/, BENCHMARKS.md); everything else is the same code on either loop."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":  # (config.load refuses this when uvloop is missing; it went away since)
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def fetch_status(cfg: config_mod.ServeConfig, timeout: float = 5.0) -> dict[str, object]:
    """``/status`` of the running gateway; the token is only read (``ConfigError`` when it is missing)."""
    assert cfg.admin_listen is not None
    host, port = cfg.admin_listen
    request = urllib.request.Request(
        f"http://{host}:{port}/status", headers={"Authorization": f"Bearer {cfg.read_admin_token()}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: dict[str, object] = json.loads(response.read())
    return data


@click.command("status")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default="fedgate.toml",
              show_default=True, help="The configuration file of the running gateway.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(config_path: Path, fmt: str) -> int:
    """Live S2S streams of the running gateway: partner, direction, method, TLS, certificate, age, stanzas,
    and the stanzas queued for each outbound one."""
    cfg = _load(config_path)
    if cfg.admin_listen is None:
        click.echo(error_line(t("ops.config_error", key="listen.admin", problem=t("ops.no_admin"))), err=True)
        return 2
    try:
        data = fetch_status(cfg)
    except config_mod.ConfigError as exc:
        click.echo(error_line(t("ops.config_error", key=exc.key, problem=exc.problem)), err=True)
        return 2
    except (urllib.error.URLError, OSError) as exc:
        click.echo(error_line(t("ops.not_running", address=f"{cfg.admin_listen[0]}:{cfg.admin_listen[1]}",
                                problem=str(exc))), err=True)
        return 1
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    streams = data.get("streams", [])
    assert isinstance(streams, list)
    headers = [t(f"ops.col.{c}") for c in
               ("partner", "direction", "method", "tls", "certificate", "age", "stanzas_in", "stanzas_out", "queue")]
    rows = [
        [str(s["partner"]), str(s["direction"]), str(s["method"]), str(s["tls_version"] or "-"),
         str(s["certificate"]), f"{float(s['age']):.0f}s", str(s["stanzas_in"]), str(s["stanzas_out"]),
         "-" if s.get("queue") is None else str(s["queue"])]
        for s in streams
    ]
    click.echo(table(headers, rows) if rows else t("ops.no_streams"))
    components = data.get("components", [])
    assert isinstance(components, list)
    click.echo(t("ops.components", names=", ".join(map(str, components)) or "-"))
    return 0
