"""``fedgate serve`` runs the gateway from a config file; ``fedgate status`` asks a running one what it has."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import urllib.error
import urllib.request
from pathlib import Path

import click

from .. import config as config_mod
from ..admin import AdminServer
from ..i18n import t
from ..logsetup import configure
from ..server import Gateway
from ..store import open_store
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


async def run(cfg: config_mod.ServeConfig, *, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT; SIGHUP re-reads the config file's certificates and the store."""
    store = open_store(cfg.database)
    gateway = Gateway(cfg.gateway, store)
    admin = AdminServer(gateway, cfg.admin_token()) if cfg.admin_listen else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def hangup() -> None:
        try:
            fresh = config_mod.load(cfg.path)
        except config_mod.ConfigError as exc:
            log.error("%s", t("ops.config_error", key=exc.key, problem=exc.problem))
            return
        gateway.replace_credentials(fresh.gateway)
        gateway.reload()
        log.info("%s", t("ops.reloaded", path=str(cfg.path)))

    loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        await gateway.start()
        if admin is not None and cfg.admin_listen is not None:
            await admin.start(*cfg.admin_listen)
        log.info("%s", t("ops.serving", domains=", ".join(sorted(cfg.gateway.domains)),
                         addresses=", ".join(f"{h}:{p}" for h, p in gateway.bound_ports())))
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
        if admin is not None:
            await admin.stop()
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
    asyncio.run(run(cfg))


def fetch_status(cfg: config_mod.ServeConfig, timeout: float = 5.0) -> dict[str, object]:
    assert cfg.admin_listen is not None
    host, port = cfg.admin_listen
    request = urllib.request.Request(
        f"http://{host}:{port}/status", headers={"Authorization": f"Bearer {cfg.admin_token()}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: dict[str, object] = json.loads(response.read())
    return data


@click.command("status")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default="fedgate.toml",
              show_default=True, help="The configuration file of the running gateway.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(config_path: Path, fmt: str) -> int:
    """Live S2S streams of the running gateway: partner, direction, method, TLS, certificate, age, stanzas."""
    cfg = _load(config_path)
    if cfg.admin_listen is None:
        click.echo(error_line(t("ops.config_error", key="listen.admin", problem=t("ops.no_admin"))), err=True)
        return 2
    try:
        data = fetch_status(cfg)
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
               ("partner", "direction", "method", "tls", "certificate", "age", "stanzas_in", "stanzas_out")]
    rows = [
        [str(s["partner"]), str(s["direction"]), str(s["method"]), str(s["tls_version"] or "-"),
         str(s["certificate"]), f"{float(s['age']):.0f}s", str(s["stanzas_in"]), str(s["stanzas_out"])]
        for s in streams
    ]
    click.echo(table(headers, rows) if rows else t("ops.no_streams"))
    components = data.get("components", [])
    assert isinstance(components, list)
    click.echo(t("ops.components", names=", ".join(map(str, components)) or "-"))
    return 0
