"""``fedgate init``: a commented ``fedgate.toml`` to start from; with ``--dev`` also a private test CA and
certificates for loopback domains, and a config that runs as it is."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from ..certs import TestCA
from ..i18n import t
from ..partners import normalize_domain
from .output import error_line
from .types import FieldType

CONFIG_NAME = "fedgate.toml"
DATABASE_NAME = "fedgate.sqlite3"
TOKEN_NAME = "admin-token"
CERT_DIR = "certs"
DEFAULT_DOMAIN = "gw.example.org"
DEFAULT_DEV_DOMAIN = "gw.localhost"

_HEADER = """\
# fedgate.toml: what `fedgate serve --config {config}` runs.
# Relative paths are relative to this file. Partners and their TLS / SASL / dialback settings live in the
# database below, which the other commands take with --db (or $FEDGATE_DB):
#   fedgate --db {database} partner new DOMAIN --tls required ...
# Gateway settings (limits, time-outs, log_message_bodies) live there too: `fedgate --db ... gateway set`.
# SIGHUP (systemctl reload) re-reads this file: certificates, keys, trust, domains, component secrets, [dns]
# and logging apply at once; [listen], gateway.database, gateway.event_loop and admin.token_file need a
# restart.
"""

_GATEWAY = """
[gateway]
database = "{database}"
log_format = "text"                   # or "json": one JSON object per line
log_level = "info"                    # debug, info, warning, error
event_loop = "auto"                   # uvloop when installed (pip install 'fedgate[fast]'), else asyncio
# Message bodies are never logged unless the gateway setting log_message_bodies is on (and then only at
# log_level "debug"): `fedgate --db ... gateway set --log-message-bodies` (a database setting, not a key here).
"""

_DOMAIN = """
[[domain]]
name = "{name}"
{cert_lines}
# The XEP-0114 secret of the component that serves this domain (connects to listen.component).
component_secret = "{secret}"
"""

_LISTEN = """
[listen]
s2s = ["{s2s}"]{s2s_note}
component = "127.0.0.1:5347"          # XEP-0114 components; keep it on loopback
admin = "127.0.0.1:5380"              # fedgate status (/status, with the token), /metrics, /health; loopback only
# Prometheus metrics are on the admin address above. For a Prometheus server or a load balancer on another
# machine, a second address that serves only /metrics and /health, without the token:
# metrics = "0.0.0.0:9269"
"""

_ADMIN = """
[admin]
token_file = "{token_file}"{token_note}
"""

_TRUST = """
[trust]
system = {system}{system_note}
cafiles = [{cafiles}]
"""

_DNS = """
[dns]
use_srv = {use_srv}{srv_note}
static_routes = {{ }}                   # "partner.example" = "host:port", for tests and odd networks
"""


def render_config(
    domains: list[str],
    *,
    dev: bool,
    secrets_by_domain: dict[str, str],
    directory: Path = Path("."),
    state_dir: Path | None = None,
) -> str:
    """The text of ``fedgate.toml`` (to be written in ``directory``) for ``domains``; with ``dev``, certificate
    paths under ``certs/``. With ``state_dir`` the database and the admin token live there (absolute paths:
    a config directory such as /etc/fedgate is read-only for the service), else next to the file."""
    here = directory.resolve()
    if state_dir is not None:
        database = str(state_dir.resolve() / DATABASE_NAME)
        token_file = str(state_dir.resolve() / TOKEN_NAME)
        token_note = "    # written 0600 by fedgate serve; fedgate status reads it"
    else:
        database, token_file = DATABASE_NAME, TOKEN_NAME
        token_note = "                 # next to this file; written 0600 by fedgate serve, read by fedgate status"
    parts = [_HEADER.format(config=str(here / CONFIG_NAME), database=str(here / database)),
             _GATEWAY.format(database=database)]
    for name in domains:
        if dev:
            cert_lines = (f'certificate = "{CERT_DIR}/{name}-chain.pem"   # issued by the test CA in {CERT_DIR}/\n'
                          f'key = "{CERT_DIR}/{name}.key"')
        else:
            cert_lines = ("# The certificate chain (leaf first) and key for this domain; without them only\n"
                          "# Server Dialback over plain TCP is possible.\n"
                          f'# certificate = "{CERT_DIR}/{name}-chain.pem"\n'
                          f'# key = "{CERT_DIR}/{name}.key"')
        parts.append(_DOMAIN.format(name=name, cert_lines=cert_lines, secret=secrets_by_domain[name]))
    parts.append(_LISTEN.format(
        s2s="127.0.0.1:5269" if dev else "0.0.0.0:5269",
        s2s_note="          # loopback: a development gateway" if dev else "            # server-to-server",
    ))
    parts.append(_TRUST.format(
        system="false" if dev else "true",
        system_note="                        # only the test CA below" if dev
        else "                         # the system's CA store",
        cafiles=f'"{CERT_DIR}/ca.crt"' if dev else "",
    ))
    parts.append(_DNS.format(
        use_srv="false" if dev else "true",
        srv_note="                       # loopback test domains have no DNS" if dev
        else "                        # _xmpp-server._tcp SRV records",
    ))
    parts.append(_ADMIN.format(token_file=token_file, token_note=token_note))
    return "".join(parts)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # it holds component secrets
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def planned_files(directory: Path, domains: list[str], dev: bool) -> list[Path]:
    files = [directory / CONFIG_NAME]
    if dev:
        certs = directory / CERT_DIR
        files += [certs / "ca.crt", certs / "ca.key"]
        for name in domains:
            files += [certs / f"{name}.crt", certs / f"{name}.key", certs / f"{name}-chain.pem"]
    return files


@click.command("init")
@click.option("--dev", is_flag=True, help="Also make a private test CA and certificates for loopback domains.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to write fedgate.toml (and certs/).")
@click.option("--domain", "domains", multiple=True, type=FieldType("domain", normalize_domain, "DOMAIN"),
              help=f"A domain this gateway serves (default: {DEFAULT_DOMAIN}; with --dev {DEFAULT_DEV_DOMAIN}). "
              "Repeatable.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the running gateway writes (database, admin token), e.g. /var/lib/fedgate "
              "(deploy/fedgate.service). Default: next to fedgate.toml.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def init(dev: bool, directory: Path, domains: tuple[str, ...], state_dir: Path | None, force: bool) -> int:
    """Write a commented fedgate.toml; with --dev, one that runs on loopback with its own test CA."""
    names = list(dict.fromkeys(domains)) or [DEFAULT_DEV_DOMAIN if dev else DEFAULT_DOMAIN]
    if not force:
        for path in planned_files(directory, names, dev):
            if path.exists():
                click.echo(error_line(t("init.exists", path=str(path))), err=True)
                return 1
    directory.mkdir(parents=True, exist_ok=True)
    if state_dir is not None:
        state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)  # systemd's StateDirectory= makes its own
    if dev:
        ca = TestCA.create(directory / CERT_DIR, name="fedgate dev CA")
        for name in names:
            ca.issue(name, directory / CERT_DIR)
        click.echo(t("init.dev_ca", path=str(ca.cert_path)))
    config = directory / CONFIG_NAME
    text = render_config(names, dev=dev, secrets_by_domain={n: secrets.token_urlsafe(24) for n in names},
                         directory=directory, state_dir=state_dir)
    _write_private(config, text)
    click.echo(t("init.wrote", path=str(config)))
    click.echo(t("init.next", path=str(config)))
    return 0
