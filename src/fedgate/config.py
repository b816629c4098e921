"""``fedgate.toml``: what ``fedgate serve`` runs. Read once, checked whole, turned into plain data.

Every problem is a ``ConfigError`` naming the key (``listen.s2s[1]``, ``domain[0].certificate``) so the
administrator gets one line that says what to fix, and nothing starts. Certificates, keys and CA files are
loaded here too: a file that is not PEM, or a key that does not belong to its certificate, is a config error.

Example::

    [gateway]
    database = "fedgate.sqlite3"          # relative paths are relative to this file
    log_format = "text"                   # or "json" (one JSON object per line)
    log_level = "info"
    event_loop = "auto"                   # uvloop when installed (fedgate[fast]), else asyncio; or name one

    [[domain]]
    name = "gw.example.org"
    certificate = "certs/gw.example.org-chain.pem"
    key = "certs/gw.example.org.key"
    component_secret = "change me"        # XEP-0114 secret of the component serving this domain

    [listen]
    s2s = ["0.0.0.0:5269"]
    component = "127.0.0.1:5347"
    admin = "127.0.0.1:5380"              # /status (token), /metrics, /health; loopback only
    metrics = "0.0.0.0:9269"              # optional: /metrics and /health only, no token, any address

    [trust]
    system = true                         # the system's CA store
    cafiles = []                          # extra PEM files

    [dns]
    use_srv = true
    static_routes = { }                   # "partner.example" = "host:port", for tests and odd networks

    [admin]
    token_file = "admin-token"            # made 0600 by `fedgate serve`; `fedgate status` reads it

Prometheus metrics are always on the admin address; ``listen.metrics`` adds a second address that serves
only ``/metrics`` and ``/health`` (no token), for a Prometheus server or a load balancer that is not on this
machine. Message bodies are never logged unless the gateway setting ``log_message_bodies`` is on
(``fedgate gateway set``: it lives in the database, not in this file).

On SIGHUP ``fedgate serve`` reads this file again. Certificates, keys, trust anchors, domains and their
component secrets, logging and ``[dns]`` apply at once; ``listen.*``, ``gateway.database``,
``gateway.event_loop`` and ``admin.token_file`` only after a restart (a line in the log says so). A reload
with an error changes nothing.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from OpenSSL import SSL

from .errors import FedgateError
from .i18n import t
from .partners import normalize_domain
from .resolver import Resolver, parse_host_port
from .server import GatewayConfig, LocalDomain
from .tls import Credentials, TrustAnchors

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_LOOPS = ("auto", "asyncio", "uvloop")


class ConfigError(FedgateError):
    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass
class ServeConfig:
    path: Path
    database: Path
    gateway: GatewayConfig
    admin_listen: tuple[str, int] | None
    admin_token_file: Path
    log_format: str = "text"
    log_level: str = "info"
    source: dict[str, Any] = field(default_factory=dict, repr=False)
    # /metrics and /health without the token, on an address of the administrator's choosing.
    metrics_listen: tuple[str, int] | None = None
    # "auto" (uvloop when it is installed, else asyncio's own loop), "asyncio" or "uvloop".
    event_loop: str = "auto"

    def admin_token(self) -> str:
        """The token ``fedgate serve`` expects; made (0600) on first use."""
        return ensure_token(self.admin_token_file)

    def read_admin_token(self) -> str:
        """The token of a running gateway, for ``fedgate status``: read only, never made."""
        try:
            token = self.admin_token_file.read_text().strip()
        except FileNotFoundError:
            raise ConfigError("admin.token_file", t("ops.config.token_missing", path=str(self.admin_token_file))) \
                from None
        except OSError as exc:
            raise ConfigError("admin.token_file", t("ops.config.token_unreadable", path=str(self.admin_token_file),
                                                    error=exc.strerror or str(exc))) from None
        if not token:
            raise ConfigError("admin.token_file", t("ops.config.token_missing", path=str(self.admin_token_file)))
        return token

    def restart_keys(self, fresh: ServeConfig) -> list[str]:
        """The keys changed in ``fresh`` that a running gateway applies only after a restart."""
        old, new = self.gateway, fresh.gateway
        pairs: list[tuple[str, object, object]] = [
            ("listen.s2s", old.s2s_listen, new.s2s_listen),
            ("listen.component", old.component_listen, new.component_listen),
            ("listen.admin", self.admin_listen, fresh.admin_listen),
            ("listen.metrics", self.metrics_listen, fresh.metrics_listen),
            ("gateway.database", self.database, fresh.database),
            ("admin.token_file", self.admin_token_file, fresh.admin_token_file),
            ("gateway.event_loop", self.event_loop, fresh.event_loop),
        ]
        return [key for key, before, after in pairs if before != after]


def ensure_token(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = path.open("x")
    path.chmod(0o600)
    with fd:
        fd.write(token + "\n")
    return token


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table")
    return value


def _unknown(table: dict[str, Any], prefix: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}", f"unknown key; expected one of {', '.join(sorted(allowed))}")


def _str(table: dict[str, Any], key: str, prefix: str, default: str | None = None) -> str | None:
    value = table.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(prefix + key, "must be a string")
    return value


def _choice(table: dict[str, Any], key: str, prefix: str, choices: tuple[str, ...], default: str) -> str:
    value = _str(table, key, prefix, default) or default
    if value not in choices:
        raise ConfigError(prefix + key, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _address(value: object, key: str, default_port: int) -> tuple[str, int]:
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string HOST:PORT")
    try:
        target = parse_host_port(value, default_port)
        ipaddress.ip_address(target.host)
    except ValueError as exc:
        raise ConfigError(key, f"{value!r} is not an IP address with an optional :PORT ({exc})") from None
    return target.host, target.port


def _file(base: Path, value: object, key: str, *, must_exist: bool = True) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a file path")
    path = (base / value).resolve()
    if must_exist and not path.is_file():
        raise ConfigError(key, f"{path} does not exist")
    return path


def _ssl_text(error: SSL.Error) -> str:
    parts = [str(item[-1]) for item in (error.args[0] if error.args and isinstance(error.args[0], list) else [])
             if isinstance(item, tuple) and item and item[-1]]
    return "; ".join(parts) or str(error) or type(error).__name__


def _check_credentials(credentials: Credentials, prefix: str) -> None:
    """Load the chain and the key the way the TLS contexts will, naming the key that is wrong."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    try:
        ctx.use_certificate_chain_file(str(credentials.cert_chain))
    except SSL.Error as exc:
        raise ConfigError(prefix + "certificate", t("ops.config.bad_certificate", path=str(credentials.cert_chain),
                                                    error=_ssl_text(exc))) from None
    try:
        SSL.Context(SSL.TLS_METHOD).use_privatekey_file(str(credentials.key))  # alone: is it a key at all?
    except SSL.Error as exc:
        raise ConfigError(prefix + "key", t("ops.config.bad_key", path=str(credentials.key),
                                            error=_ssl_text(exc))) from None
    try:
        ctx.use_privatekey_file(str(credentials.key))
        ctx.check_privatekey()
    except SSL.Error:
        raise ConfigError(prefix + "key", t("ops.config.key_mismatch", path=str(credentials.key),
                                            certificate=str(credentials.cert_chain))) from None


def _check_cafile(path: Path, key: str) -> None:
    try:
        SSL.Context(SSL.TLS_METHOD).load_verify_locations(str(path))
    except SSL.Error as exc:
        raise ConfigError(key, t("ops.config.bad_cafile", path=str(path), error=_ssl_text(exc))) from None


def load(path: Path) -> ServeConfig:
    """Read and check ``path``; raises ``ConfigError`` naming the first bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config", f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    return parse(raw, path.resolve().parent, path)


def parse(raw: dict[str, Any], base: Path, path: Path) -> ServeConfig:
    _unknown(raw, "", {"gateway", "domain", "listen", "trust", "dns", "admin"})
    gw = _table(raw, "gateway")
    _unknown(gw, "gateway.", {"database", "log_format", "log_level", "source_address", "event_loop"})
    database = base / (_str(gw, "database", "gateway.", "fedgate.sqlite3") or "fedgate.sqlite3")
    log_format = _choice(gw, "log_format", "gateway.", LOG_FORMATS, "text")
    log_level = _choice(gw, "log_level", "gateway.", LOG_LEVELS, "info")
    event_loop = _choice(gw, "event_loop", "gateway.", EVENT_LOOPS, "auto")
    if event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError("gateway.event_loop", t("ops.config.no_uvloop"))
    source_address = _str(gw, "source_address", "gateway.")
    if source_address is not None:
        _address(source_address, "gateway.source_address", 0)

    domains_raw = raw.get("domain", [])
    if not isinstance(domains_raw, list) or not domains_raw:
        raise ConfigError("domain", "at least one [[domain]] table is needed")
    domains: dict[str, LocalDomain] = {}
    for i, entry in enumerate(domains_raw):
        prefix = f"domain[{i}]."
        if not isinstance(entry, dict):
            raise ConfigError(f"domain[{i}]", "must be a table")
        _unknown(entry, prefix, {"name", "certificate", "key", "component_secret"})
        try:
            name = normalize_domain(entry.get("name", ""), "name")
        except ValueError as exc:
            raise ConfigError(prefix + "name", str(exc)) from None
        if name in domains:
            raise ConfigError(prefix + "name", f"{name} is listed twice")
        credentials = None
        if "certificate" in entry or "key" in entry:
            credentials = Credentials(
                _file(base, entry.get("certificate"), prefix + "certificate"),
                _file(base, entry.get("key"), prefix + "key"),
            )
            _check_credentials(credentials, prefix)
        domains[name] = LocalDomain(name, credentials, _str(entry, "component_secret", prefix))

    listen = _table(raw, "listen")
    _unknown(listen, "listen.", {"s2s", "component", "admin", "metrics"})
    s2s_raw = listen.get("s2s", ["127.0.0.1:5269"])
    if not isinstance(s2s_raw, list) or not s2s_raw:
        raise ConfigError("listen.s2s", "must be a non-empty list of HOST:PORT")
    s2s = [_address(v, f"listen.s2s[{i}]", 5269) for i, v in enumerate(s2s_raw)]
    component = listen.get("component", "127.0.0.1:5347")
    component_listen = None if component in (None, "", False) else _address(component, "listen.component", 5347)
    admin = listen.get("admin", "127.0.0.1:5380")
    admin_listen = None if admin in (None, "", False) else _address(admin, "listen.admin", 5380)
    if admin_listen is not None and not ipaddress.ip_address(admin_listen[0]).is_loopback:
        raise ConfigError("listen.admin", "the admin endpoint must listen on a loopback address")
    metrics = listen.get("metrics")
    metrics_listen = None if metrics in (None, "", False) else _address(metrics, "listen.metrics", 9269)
    taken = {"listen.admin": admin_listen, "listen.component": component_listen,
             **{f"listen.s2s[{i}]": a for i, a in enumerate(s2s)}}
    for other, address in taken.items():
        if metrics_listen is not None and address == metrics_listen:
            raise ConfigError("listen.metrics", t("ops.config.same_address", other=other))

    trust_t = _table(raw, "trust")
    _unknown(trust_t, "trust.", {"system", "cafiles"})
    use_system = trust_t.get("system", True)
    if not isinstance(use_system, bool):
        raise ConfigError("trust.system", "must be true or false")
    cafiles_raw = trust_t.get("cafiles", [])
    if not isinstance(cafiles_raw, list):
        raise ConfigError("trust.cafiles", "must be a list of file paths")
    cafiles = tuple(_file(base, v, f"trust.cafiles[{i}]") for i, v in enumerate(cafiles_raw))
    for i, cafile in enumerate(cafiles):
        _check_cafile(cafile, f"trust.cafiles[{i}]")

    dns_t = _table(raw, "dns")
    _unknown(dns_t, "dns.", {"use_srv", "static_routes", "timeout"})
    use_srv = dns_t.get("use_srv", True)
    if not isinstance(use_srv, bool):
        raise ConfigError("dns.use_srv", "must be true or false")
    routes = dns_t.get("static_routes", {})
    if not isinstance(routes, dict) or not all(isinstance(v, str) for v in routes.values()):
        raise ConfigError("dns.static_routes", 'must be a table of "domain" = "host:port"')
    timeout = dns_t.get("timeout", 5.0)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError("dns.timeout", "must be a positive number of seconds")
    try:
        resolver = Resolver(static_routes=routes, use_srv=use_srv, timeout=float(timeout))
    except ValueError as exc:
        raise ConfigError("dns.static_routes", str(exc)) from None

    admin_t = _table(raw, "admin")
    _unknown(admin_t, "admin.", {"token_file"})
    token_file = base / (_str(admin_t, "token_file", "admin.", "admin-token") or "admin-token")

    gateway = GatewayConfig(
        domains=domains,
        s2s_listen=s2s,
        component_listen=component_listen,
        trust=TrustAnchors(cafiles=cafiles, use_system=use_system),
        resolver=resolver,
        source_address=source_address,
    )
    return ServeConfig(path, database, gateway, admin_listen, token_file, log_format, log_level, raw,
                       metrics_listen=metrics_listen, event_loop=event_loop)
