"""A real Prosody 0.12 as a test peer: policy mapping, config file, process, /etc/hosts, log reading.

Plain classes and functions; the pytest fixtures live in ``conftest.py`` beside this file.

Facts this relies on (see ``shared/reference/README.md``): Prosody refuses to run as root, so it runs as the
``prosody`` user through ``setpriv``; with lua-unbound it ignores /etc/hosts unless the config says
``unbound = { hoststxt = "/etc/hosts" }``; its outgoing connections come from 127.0.0.1 whatever it listens on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fedgate.certs import TestCA
from fedgate.policy import Method

PROSODY = "prosody"
PROSODYCTL = "prosodyctl"
PROSODY_USER = "prosody"

#: The test domains and their loopback addresses (one address per domain; nothing leaves loopback).
GATEWAY_DOMAIN = "gw.test"
GATEWAY_IP = "127.0.0.2"
PROSODY_DOMAIN = "prosody.test"
PROSODY_IP = "127.0.0.3"
PEER_DOMAIN = "peer.test"  # a second Prosody, for the fixture's own S2S tests
PEER_IP = "127.0.0.4"
#: Prosody reads /etc/hosts once, when it starts: every domain it must reach has to be there before that.
DEFAULT_HOSTS: dict[str, str] = {GATEWAY_DOMAIN: GATEWAY_IP, PROSODY_DOMAIN: PROSODY_IP, PEER_DOMAIN: PEER_IP}

C2S_PORT = 5222
S2S_PORT = 5269

TlsSetting = Literal["required", "optional", "not_supported"]
SaslSetting = Literal["required", "optional", "not_supported"]


# -- policy ------------------------------------------------------------------------------------------------------


def prosody_options(tls: str, sasl: str, dialback: bool) -> dict[str, Any]:
    """Prosody options for fedgate's per-partner triple (``tls``, ``sasl``, ``dialback``).

    * TLS ``required`` → ``s2s_require_encryption = true`` (STARTTLS offered with ``<required/>``);
      ``optional`` → ``false`` (offered without it); ``not_supported`` → ``false`` and
      ``s2s_allow_encryption = false`` (not offered, not attempted).
    * SASL ``required`` with TLS ``required`` → ``s2s_secure_auth = true``: the peer certificate must validate,
      so a stream authenticates with EXTERNAL or not at all (Prosody then accepts dialback only on top of a
      valid certificate, where EXTERNAL wins: the matrix's "dialback inert when TLS and SASL are required").
      With TLS ``optional`` the matrix still lets SASL ``required`` fall back to dialback (TLS or plain TCP),
      and ``s2s_secure_auth`` implies encryption, so it stays ``false`` there, as for SASL ``optional`` and
      ``not_supported``. Prosody has **no switch to turn SASL EXTERNAL off**: after TLS it offers EXTERNAL
      whenever the peer's certificate validated, and it tries EXTERNAL outbound whenever the peer offers it,
      so ``sasl="not_supported"`` cannot be enforced on Prosody's side (nor ``sasl="required"`` with TLS
      ``optional``, beyond Prosody preferring EXTERNAL when it can).
    * Dialback on/off → the ``dialback`` module in ``modules_enabled`` / ``modules_disabled``.

    The returned dict has ``modules_enabled`` / ``modules_disabled`` lists (only the policy's modules) and
    plain global options; :class:`ProsodyServer` merges them with its base modules.
    """
    if tls not in ("required", "optional", "not_supported"):
        raise ValueError(f"tls must be required, optional or not_supported, not {tls!r}")
    if sasl not in ("required", "optional", "not_supported"):
        raise ValueError(f"sasl must be required, optional or not_supported, not {sasl!r}")
    options: dict[str, Any] = {
        "s2s_require_encryption": tls == "required",
        "s2s_allow_encryption": tls != "not_supported",
        "s2s_secure_auth": sasl == "required" and tls == "required",
        "modules_enabled": ["dialback"] if dialback else [],
        "modules_disabled": [] if dialback else ["dialback"],
    }
    return options


@dataclass(frozen=True)
class ProsodyPolicy:
    """fedgate's per-partner triple, as Prosody's policy."""

    tls: TlsSetting = "optional"
    sasl: SaslSetting = "optional"
    dialback: bool = True

    @property
    def id(self) -> str:
        """The reference transcripts' spelling, e.g. ``tls-optional_sasl-optional_db-on``."""
        tls = "none" if self.tls == "not_supported" else self.tls
        sasl = "none" if self.sasl == "not_supported" else self.sasl
        return f"tls-{tls}_sasl-{sasl}_db-{'on' if self.dialback else 'off'}"

    def options(self) -> dict[str, Any]:
        return prosody_options(self.tls, self.sasl, self.dialback)

    def __str__(self) -> str:
        return self.id


#: fedgate's 18 settings triples as Prosody policies, in the matrix's order (for ``parametrize(..., ids=str)``).
ALL_POLICIES: tuple[ProsodyPolicy, ...] = tuple(
    ProsodyPolicy(tls, sasl, dialback)
    for sasl in ("required", "optional", "not_supported")
    for tls in ("required", "optional", "not_supported")
    for dialback in (True, False)
)


# -- Lua config --------------------------------------------------------------------------------------------------


def lua(value: Any) -> str:
    """A Python value (str, bool, int, float, list/tuple, dict with identifier keys, Path) as a Lua literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"not a Lua identifier: {key!r}")
            items.append(f"{key} = {lua(item)}")
        return "{ " + "; ".join(items) + " }"
    if isinstance(value, list | tuple):
        return "{ " + "; ".join(lua(item) for item in value) + " }"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


#: Modules every instance loads (c2s needs roster, saslauth, tls; disco/ping for clients; the admin shell on a
#: unix socket in the data directory lets tests close s2s streams). mod_posix, c2s, s2s, presence, message,
#: iq, offline and s2s_auth_certs are loaded by Prosody itself.
BASE_MODULES: tuple[str, ...] = ("roster", "saslauth", "tls", "disco", "ping", "admin_shell", "admin_socket")


# -- /etc/hosts --------------------------------------------------------------------------------------------------

HOSTS_MARKER = "# fedgate-interop"
HOSTS_LOCK = Path("/run/lock/fedgate-interop-hosts.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HostsFile:
    """Lines in /etc/hosts for the test domains, each tagged ``# fedgate-interop pid=N``; :meth:`close`
    removes exactly this object's lines (and lines left by dead test processes).

    The file is rewritten in place (not renamed over): in containers /etc/hosts is often a bind mount.
    """

    def __init__(self, path: Path = Path("/etc/hosts")) -> None:
        self.path = path
        self.entries: dict[str, str] = {}
        self._tag = f"{HOSTS_MARKER} pid={os.getpid()} id={id(self):x}"

    def _edit(self, keep_line: Any, extra: Sequence[str]) -> None:
        HOSTS_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(HOSTS_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            text = self.path.read_text(encoding="utf-8")
            lines = [line for line in text.splitlines() if keep_line(line)]
            lines.extend(extra)
            new = "".join(line + "\n" for line in lines)
            if new != text:
                with open(self.path, "r+", encoding="utf-8") as f:
                    f.write(new)
                    f.truncate()

    @staticmethod
    def _stale(line: str) -> bool:
        match = re.search(re.escape(HOSTS_MARKER) + r" pid=(\d+)", line)
        return match is not None and not _pid_alive(int(match.group(1)))

    def add(self, entries: Mapping[str, str]) -> bool:
        """Add ``{domain: ip}`` lines (replacing this object's earlier line for the same domain); True when
        the file changed. A running Prosody does not see the change (it reads /etc/hosts at start only)."""
        new = {d: ip for d, ip in entries.items() if self.entries.get(d) != ip}
        if not new:
            return False
        self.entries.update(new)
        mine = [f"{ip} {domain} {self._tag}" for domain, ip in self.entries.items()]
        self._edit(lambda line: not line.endswith(self._tag) and not self._stale(line), mine)
        return True

    def close(self) -> None:
        if self.entries:
            self._edit(lambda line: not line.endswith(self._tag), [])
            self.entries = {}

    def __enter__(self) -> HostsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def hosts_entries(entries: Mapping[str, str] = DEFAULT_HOSTS, path: Path = Path("/etc/hosts")) -> Iterator[HostsFile]:
    """Context manager: ``entries`` (``{domain: ip}``) in /etc/hosts while it is open; removed even on failure."""
    with HostsFile(path) as hosts:
        hosts.add(entries)
        yield hosts


# -- environment checks ------------------------------------------------------------------------------------------


def prosody_unavailable_reason() -> str | None:
    """Why a Prosody test peer cannot run here, or None when it can."""
    if shutil.which(PROSODY) is None or shutil.which(PROSODYCTL) is None:
        return "prosody is not installed (apt-get install prosody lua-unbound)"
    if os.geteuid() != 0:
        return "the Prosody fixture must run as root (it starts prosody as the prosody user and edits /etc/hosts)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing"
    try:
        pwd.getpwnam(PROSODY_USER)
    except KeyError:
        return f"there is no {PROSODY_USER!r} user (install the Debian prosody package)"
    return None


def port_in_use(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((ip, port)) == 0


def _listening_processes(port: int) -> str:
    """``ss`` lines of whoever listens on ``port`` (for error messages)."""
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


# -- log reading -------------------------------------------------------------------------------------------------

# Prosody's file log: "Nov 22 03:01:27 s2sin55d7a8b0          debug	message" (source, level, message).
_LOG_LINE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d (?P<source>\S+)\s+(?P<level>\w+)\t(?P<message>.*)$")
_AUTHENTICATED = re.compile(r"connection (?P<from>\S+)->(?P<to>\S+) is now authenticated for (?P<host>\S+)$")
_EXTERNAL_IN = re.compile(r"Accepting SASL EXTERNAL identity from (?P<host>\S+)$")
_EXTERNAL_OUT = re.compile(r"SASL EXTERNAL with (?P<host>\S+) succeeded$")
_DIALBACK_IN = re.compile(r"asking (?P<host>\S+) if key \S+ belongs to them$")
_CLOSED = re.compile(r"(?P<direction>Incoming|Outgoing) s2s stream (?P<from>\S+)->(?P<to>\S+) closed: (?P<reason>.*)$")
_ENCRYPTED = re.compile(r"Stream encrypted(?: \((?P<protocol>\S+) with (?P<cipher>\S+)\))?")

Mechanism = Literal["EXTERNAL", "dialback"]


@dataclass(frozen=True)
class LogLine:
    source: str
    level: str
    message: str


def parse_log(text: str) -> list[LogLine]:
    """Prosody's file log as records; continuation lines (tracebacks, multi-line stanzas) join the previous one."""
    records: list[LogLine] = []
    for raw in text.splitlines():
        match = _LOG_LINE.match(raw)
        if match:
            records.append(LogLine(match["source"], match["level"], match["message"]))
        elif records:
            last = records[-1]
            records[-1] = LogLine(last.source, last.level, last.message + "\n" + raw)
    return records


@dataclass(frozen=True)
class S2SEvent:
    """One server-to-server stream authenticated, as Prosody's log tells it."""

    direction: Literal["in", "out"]  # "in": the peer connected to Prosody; "out": Prosody connected to the peer
    peer: str  # the remote domain authenticated on the stream
    local: str  # Prosody's own domain on the stream
    mechanism: Mechanism
    tls: bool  # the stream was TLS-protected ("Stream encrypted" on that session)
    tls_protocol: str | None  # e.g. "TLSv1.3"
    session: str  # Prosody's session id, e.g. "s2sin55d7a8b0"

    @property
    def method(self) -> Method:
        """fedgate's name for the method: sasl_tls, tls_dialback or tcp_dialback."""
        if self.mechanism == "EXTERNAL":
            return Method.SASL_TLS
        return Method.TLS_DIALBACK if self.tls else Method.TCP_DIALBACK


@dataclass
class _SessionState:
    encrypted: bool = False
    protocol: str | None = None
    dialback_asked: set[str] = field(default_factory=set)


def s2s_events(text: str) -> list[S2SEvent]:
    """Authenticated S2S streams in a Prosody debug log, in order.

    Per session (the log source ``s2sin…`` / ``s2sout…``): ``Stream encrypted (TLSv1.3 with …)`` marks TLS;
    ``connection A->B is now authenticated for H`` marks authentication. The mechanism comes from the lines
    just before it: ``Accepting SASL EXTERNAL identity from H`` (inbound EXTERNAL, logged by the host's
    saslauth module) or ``SASL EXTERNAL with H succeeded`` (outbound EXTERNAL); anything else is dialback
    (``asking H if key … belongs to them`` inbound, ``Initiating dialback`` outbound) — Prosody has no
    third S2S mechanism.
    """
    sessions: dict[str, _SessionState] = {}
    pending_external: set[tuple[str, str]] = set()
    events: list[S2SEvent] = []
    for record in parse_log(text):
        source, message = record.source, record.message
        if source.startswith(("s2sin", "s2sout")):
            state = sessions.setdefault(source, _SessionState())
            direction: Literal["in", "out"] = "in" if source.startswith("s2sin") else "out"
            if (m := _ENCRYPTED.match(message)) is not None:
                state.encrypted, state.protocol = True, m["protocol"]
            elif (m := _DIALBACK_IN.match(message)) is not None:
                state.dialback_asked.add(m["host"])
            elif (m := _AUTHENTICATED.match(message)) is not None:
                host = m["host"]
                local = m["to"] if direction == "in" else m["from"]
                external = (direction, host) in pending_external
                pending_external.discard((direction, host))
                events.append(
                    S2SEvent(
                        direction=direction,
                        peer=host,
                        local=local,
                        mechanism="EXTERNAL" if external else "dialback",
                        tls=state.encrypted,
                        tls_protocol=state.protocol,
                        session=source,
                    )
                )
        elif (m := _EXTERNAL_IN.search(message)) is not None:
            pending_external.add(("in", m["host"]))
        elif (m := _EXTERNAL_OUT.search(message)) is not None:
            pending_external.add(("out", m["host"]))
    return events


@dataclass(frozen=True)
class S2SClosed:
    """One server-to-server stream closed, as Prosody's log tells it (``… s2s stream A->B closed: REASON``)."""

    direction: Literal["in", "out"]
    local: str
    peer: str
    reason: str  # e.g. "policy-violation (Encrypted server-to-server communication is required but was not used)"
    session: str


def s2s_closed(text: str) -> list[S2SClosed]:
    """Closed S2S streams in a Prosody log, in order (``from``/``to`` of an unauthenticated stream may be nil)."""
    closed = []
    for record in parse_log(text):
        if record.source.startswith(("s2sin", "s2sout")) and (m := _CLOSED.match(record.message)) is not None:
            incoming = m["direction"] == "Incoming"
            closed.append(
                S2SClosed(
                    direction="in" if incoming else "out",
                    local=m["to"] if incoming else m["from"],
                    peer=m["from"] if incoming else m["to"],
                    reason=m["reason"],
                    session=record.source,
                )
            )
    return closed


# -- the server --------------------------------------------------------------------------------------------------


class ProsodyError(RuntimeError):
    pass


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _check_traversable(path: Path, uid: int) -> None:
    """Prosody (running as ``uid``) must be able to reach ``path``: every ancestor needs an x bit for it."""
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == uid:
            continue
        if not st.st_mode & 0o001:
            raise ProsodyError(
                f"{parent} is not searchable by the {PROSODY_USER} user (mode {st.st_mode & 0o777:o}); "
                f"put the Prosody directory elsewhere (pytest's tmp_path is under a 0700 directory)"
            )


class ProsodyServer:
    """One Prosody 0.12 process serving ``domain`` on ``ip`` (c2s 5222, s2s 5269), with its own config,
    data, log and certificate in ``directory`` (which must be reachable by the ``prosody`` user).

    ``ca`` is the test CA Prosody trusts and the issuer of its certificate. ``policy`` is fedgate's triple;
    ``extra_options`` are merged into the global options last (e.g. ``s2s_insecure_domains``);
    ``cert_options`` are keyword arguments for ``ca.issue`` (e.g. ``{"self_signed": True}`` for a certificate
    peers cannot validate, ``{"expired": True}``).
    """

    def __init__(
        self,
        directory: Path,
        ca: TestCA,
        *,
        domain: str = PROSODY_DOMAIN,
        ip: str = PROSODY_IP,
        policy: ProsodyPolicy = ProsodyPolicy(),
        c2s_port: int = C2S_PORT,
        s2s_port: int = S2S_PORT,
        s2s_timeout: int = 5,
        extra_options: Mapping[str, Any] | None = None,
        cert_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.ca = ca
        self.domain = domain
        self.ip = ip
        self.policy = policy
        self.c2s_port = c2s_port
        self.s2s_port = s2s_port
        self.s2s_timeout = s2s_timeout
        self.extra_options = dict(extra_options or {})
        self.cert_options = dict(cert_options or {})
        self.config_path = self.directory / "prosody.cfg.lua"
        self.log_path = self.directory / "prosody.log"
        self.console_path = self.directory / "console.log"
        self.data_path = self.directory / "data"
        self.cafile = self.directory / "ca.crt"
        self.cert_path = self.directory / f"{domain}.crt"
        self.key_path = self.directory / f"{domain}.key"
        self.process: subprocess.Popen[bytes] | None = None
        self.users: dict[str, str] = {}
        self._log_start = 0
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None
        entry = pwd.getpwnam(PROSODY_USER)
        self._uid, self._gid = entry.pw_uid, entry.pw_gid

    # -- config --

    def options(self) -> dict[str, Any]:
        """All global options of the config file."""
        policy = self.policy.options()
        enabled = [*BASE_MODULES, *policy.pop("modules_enabled")]
        disabled = policy.pop("modules_disabled")
        global_ssl = {"cafile": self.cafile}
        options: dict[str, Any] = {
            "pidfile": self.directory / "prosody.pid",
            "data_path": self.data_path,
            "log": [{"levels": {"min": "debug"}, "to": "file", "filename": self.log_path}],
            "interfaces": [self.ip],
            "c2s_interfaces": [self.ip],
            "s2s_interfaces": [self.ip],
            "c2s_ports": [self.c2s_port],
            "s2s_ports": [self.s2s_port],
            "c2s_direct_tls_ports": [],
            "s2s_direct_tls_ports": [],
            "http_ports": [],
            "https_ports": [],
            "admin_socket": self.directory / "admin.sock",
            "certificates": self.directory / "certs",
            "unbound": {"hoststxt": "/etc/hosts", "resolvconf": True},
            "use_dane": False,
            "s2s_timeout": self.s2s_timeout,
            "authentication": "internal_plain",
            "storage": "internal",
            "allow_registration": False,
            "c2s_require_encryption": True,
            "ssl": global_ssl,
            "modules_enabled": enabled,
            "modules_disabled": disabled,
            **policy,
        }
        options.update(self.extra_options)
        return options

    def config_text(self) -> str:
        lines = [f"-- written by tests/interop/prosody.py; policy {self.policy.id}"]
        lines += [f"{key} = {lua(value)}" for key, value in self.options().items()]
        lines += ["", f"VirtualHost {lua(self.domain)}"]
        vhost_ssl = {"certificate": self.cert_path, "key": self.key_path, "cafile": self.cafile}
        lines.append(f"    ssl = {lua(vhost_ssl)}")
        return "\n".join(lines) + "\n"

    def write_files(self) -> None:
        """Config, certificate (issued by the test CA), CA copy and data directory, all owned by prosody."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _check_traversable(self.directory, self._uid)
        self.data_path.mkdir(exist_ok=True)
        (self.directory / "certs").mkdir(exist_ok=True)  # Prosody indexes it (and logs an error when missing)
        shutil.copyfile(self.ca.cert_path, self.cafile)
        if not self.cert_path.exists():
            self.ca.issue(self.domain, self.directory, **self.cert_options)
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        _chown_tree(self.directory, self._uid, self._gid)
        os.chmod(self.directory, 0o750)

    # -- process --

    def _as_prosody(self, *argv: str) -> list[str]:
        return ["setpriv", f"--reuid={PROSODY_USER}", f"--regid={PROSODY_USER}", "--init-groups", *argv]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Write the files, start Prosody, and wait until c2s and s2s accept connections."""
        if self.running:
            raise ProsodyError("already running")
        for port in (self.s2s_port, self.c2s_port):
            if port_in_use(self.ip, port):
                raise ProsodyError(
                    f"{self.ip}:{port} is already taken before Prosody starts (a system-wide Prosody? "
                    f"`service prosody stop`):\n{_listening_processes(port)}"
                )
        self.write_files()
        began = time.monotonic()
        with open(self.console_path, "ab") as console:
            self.process = subprocess.Popen(
                self._as_prosody(PROSODY, "--config", str(self.config_path), "-F"),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        deadline = began + timeout
        waiting = [self.s2s_port, self.c2s_port]
        while waiting:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ProsodyError(f"prosody exited with status {code} while starting:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ProsodyError(f"prosody did not listen on {self.ip}:{waiting} within {timeout} s:\n{self.tail()}")
            waiting = [port for port in waiting if not port_in_use(self.ip, port)]
            if waiting:
                time.sleep(0.02)
        self.start_seconds = time.monotonic() - began

    def stop(self, timeout: float = 5.0) -> None:
        """Close S2S streams, SIGTERM, wait up to ``timeout`` seconds, then SIGKILL.

        Prosody waits about a second at shutdown for S2S streams still open ("Waiting for sessions to
        close"); closing them first through the admin shell brings a stop down to about 0.05 s.
        """
        process = self.process
        if process is None:
            return
        began = time.monotonic()
        if process.poll() is None:
            self._closeall_s2s()
        self.process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stop_seconds = time.monotonic() - began

    def __enter__(self) -> ProsodyServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- administration --

    def prosodyctl(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """Run ``prosodyctl --config FILE ARGS`` as the prosody user; raise with its output on failure."""
        argv = self._as_prosody(PROSODYCTL, "--config", str(self.config_path), *args)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.directory)
        if done.returncode != 0:
            raise ProsodyError(f"prosodyctl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def register(self, user: str, password: str) -> str:
        """Create (or overwrite) the account ``user@domain``; returns the bare JID."""
        if self.users.get(user) != password:
            self.prosodyctl("register", user, self.domain, password)
            self.users[user] = password
        return f"{user}@{self.domain}"

    def shell(self, command: str) -> str:
        """Run one admin-shell command (``prosodyctl shell``) against the running server; returns its output."""
        return self.prosodyctl("shell", command).stdout

    def s2s_count(self) -> int:
        """How many S2S streams ``s2s:show()`` lists."""
        match = re.search(r"OK: (\d+) s2s connections? shown", self.shell("s2s:show()"))
        return int(match.group(1)) if match else 0

    def close_s2s(self, timeout: float = 3.0) -> None:
        """Close every server-to-server stream (so the next stanza negotiates afresh) and wait until none
        is listed (at most ``timeout`` seconds; a peer that never answers the close keeps its stream longer)."""
        self._closeall_s2s()
        deadline = time.monotonic() + timeout
        while self.s2s_count() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _closeall_s2s(self) -> None:
        argv = self._as_prosody(PROSODYCTL, "--config", str(self.config_path), "shell", "s2s:closeall()")
        with contextlib.suppress(OSError, subprocess.SubprocessError):  # it fails when there is nothing to close
            subprocess.run(argv, capture_output=True, timeout=10, cwd=self.directory)

    def reset(self) -> None:
        """Start a test afresh: close S2S streams; :meth:`log_text` and :meth:`s2s_events` start from here."""
        self.close_s2s()
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0

    # -- log --

    def full_log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        """The debug log since the last :meth:`reset` (or since start)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        console = self.console_path.read_text(errors="replace") if self.console_path.exists() else ""
        log = "\n".join(self.full_log_text().splitlines()[-lines:])
        return f"--- {self.console_path}\n{console}--- {self.log_path} (last {lines} lines)\n{log}"

    def s2s_events(self) -> list[S2SEvent]:
        """Authenticated S2S streams since the last :meth:`reset`; see :func:`s2s_events`."""
        return s2s_events(self.log_text())

    def s2s_closed(self) -> list[S2SClosed]:
        """S2S streams closed since the last :meth:`reset`; see :func:`s2s_closed`."""
        return s2s_closed(self.log_text())

    def wait_for_s2s(self, peer: str, direction: Literal["in", "out"] | None = None, timeout: float = 5.0) -> S2SEvent:
        """Wait until a stream with ``peer`` (in ``direction``, if given) is authenticated; return its event."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.s2s_events():
                if event.peer == peer and direction in (None, event.direction):
                    return event
            if time.monotonic() > deadline:
                raise ProsodyError(f"no authenticated S2S stream with {peer} within {timeout} s:\n{self.tail()}")
            time.sleep(0.05)

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears in :meth:`log_text`; raise with the log tail if it does not."""
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            match = compiled.search(self.log_text())
            if match:
                return match
            if time.monotonic() > deadline:
                raise ProsodyError(f"{pattern!r} not in Prosody's log within {timeout} s:\n{self.tail()}")
            time.sleep(0.05)


# -- c2s clients -------------------------------------------------------------------------------------------------


class Client:
    """A slixmpp ``ClientXMPP`` logged in over c2s (STARTTLS, trusting the test CA and the server's own
    certificate, so a self-signed one works too; ``verify=False`` checks nothing), collecting messages.

    Use inside a running asyncio loop: ``async with Client(server, "alice", "pw") as alice: ...``.
    """

    def __init__(
        self, server: ProsodyServer, user: str, password: str, *, timeout: float = 10.0, verify: bool = True
    ) -> None:
        self.server = server
        self.verify = verify
        self.jid = f"{user}@{server.domain}"
        self.password = password
        self.timeout = timeout
        self.xmpp: Any = None
        self.messages: Any = None  # asyncio.Queue of slixmpp Message stanzas ("message" events)
        self.errors: Any = None  # asyncio.Queue of "message_error" stanzas (undeliverable messages)

    async def __aenter__(self) -> Client:
        import asyncio

        import slixmpp

        xmpp = slixmpp.ClientXMPP(self.jid, self.password)
        if self.verify:
            xmpp.ssl_context.load_verify_locations(cafile=self.server.cafile)
            xmpp.ssl_context.load_verify_locations(cafile=self.server.cert_path)
        else:
            xmpp.ssl_context.check_hostname = False
            xmpp.ssl_context.verify_mode = ssl.CERT_NONE
        xmpp.enable_direct_tls = False
        xmpp.enable_plaintext = False
        self.messages, self.errors = asyncio.Queue(), asyncio.Queue()
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failed = "failed_auth", "connection_failed", "disconnected"

        def on_start(_: object) -> None:
            xmpp.send_presence()  # available, so messages to the bare JID are delivered to this resource
            if not started.done():
                started.set_result(None)

        def on_fail(event: str) -> Any:
            def handler(data: object) -> None:
                if not started.done():
                    started.set_exception(ProsodyError(f"{self.jid}: {event} before session_start: {data}"))

            return handler

        xmpp.add_event_handler("session_start", on_start)
        for event in failed:
            xmpp.add_event_handler(event, on_fail(event))
        xmpp.add_event_handler("message", self.messages.put_nowait)
        xmpp.add_event_handler("message_error", self.errors.put_nowait)
        self.xmpp = xmpp
        xmpp.connect(self.server.ip, self.server.c2s_port)
        try:
            await asyncio.wait_for(started, self.timeout)
        except BaseException:
            xmpp.abort()
            raise
        return self

    def send(self, to: str, body: str, mtype: str = "chat") -> None:
        self.xmpp.send_message(mto=to, mbody=body, mtype=mtype)

    async def receive(self, timeout: float | None = None) -> Any:
        """The next message received (a slixmpp Message); ``asyncio.TimeoutError`` when none comes."""
        import asyncio

        return await asyncio.wait_for(self.messages.get(), timeout or self.timeout)

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        if self.xmpp is None:
            return
        try:
            await asyncio.wait_for(self.xmpp.disconnect(wait=1.0), 3)
        except (TimeoutError, asyncio.CancelledError):
            pass
        finally:
            self.xmpp.abort()
