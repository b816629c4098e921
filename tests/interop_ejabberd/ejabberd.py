"""A real ejabberd (Debian package ``ejabberd``, 23.01 on bookworm) as a test peer: policy mapping, config
files, process, log reading.

Plain classes and functions; the pytest fixtures live in ``conftest.py`` beside this file.

Facts this relies on (found by trying, on ejabberd 23.01 / Erlang 25):

* ``ejabberdctl`` runs as the ``ejabberd`` user and ``cd``s into the spool directory, so every file it reads
  or writes must be reachable by that user (the whole instance directory is chowned to it).
* ``ejabberdctl --config-dir DIR`` takes ``ejabberd.yml``, ``ejabberdctl.cfg`` **and** ``inetrc`` (exported as
  ``ERL_INETRC``) from ``DIR``: the Erlang VM's name resolution is configured there, not by /etc/hosts.
* ``ERL_DIST_PORT`` in ``ejabberdctl.cfg`` makes the node listen for Erlang distribution on that fixed port
  and start no EPMD at all (``-start_epmd false``); ``ejabberdctl register`` etc. connect straight to it.
  ``INET_DIST_INTERFACE=127.0.0.1`` keeps that port on loopback. The node name must be unique per instance.
* s2s name resolution in Debian's ejabberd 23.01 (p1_xmpp 1.6.1, ``xmpp_stream_out``) is split: the
  ``_xmpps-server._tcp`` / ``_xmpp-server._tcp`` SRV queries go through Erlang's own DNS client
  (``inet_res:getbyname``: DNS only, it ignores /etc/hosts and inetrc ``{host, …}`` entries, and would ask
  the nameservers of /etc/resolv.conf, off loopback), while the A/AAAA lookup after that goes through libc
  (``net:getaddrinfo``), which reads /etc/hosts and ignores inetrc. So our ``inetrc`` sets
  ``{resolv_conf, ""}`` and no nameserver: ``inet_res`` then answers NXDOMAIN at once without sending
  anything (ejabberd falls back to the A record), and the test domains go into /etc/hosts
  (``tests.interop``'s ``HostsFile``) for getaddrinfo. With only inetrc ``{host, …}`` lines the A lookup
  fails with ``enoname``. ``s2s_dns_retries`` must be at least 1 (0 makes every lookup fail with
  ``timeout`` without trying).
* ejabberd's log states the s2s mechanism: ``(tls|<pid>) Accepted inbound s2s EXTERNAL authentication
  gw6.test -> ejabberd.test (IP)`` / ``Accepted outbound s2s dialback authentication ejabberd.test -> gw6.test``
  (``tls|`` or ``tcp|`` tells whether the socket was encrypted).
* SIGTERM to the ``ejabberdctl foreground`` process group stops the VM cleanly in about 2 s. Run as root,
  ``ejabberdctl`` would ``su`` to ``ejabberd`` and the VM would land in another session, out of reach of
  ``killpg``: so the fixture starts it as ``ejabberd`` itself (``setpriv``, ``HOME=/var/lib/ejabberd`` for
  the Erlang cookie).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fedgate.certs import TestCA
from fedgate.policy import Method

EJABBERDCTL = "ejabberdctl"
EJABBERD_USER = "ejabberd"

EJABBERD_DOMAIN = "ejabberd.test"
EJABBERD_IP = "127.0.0.5"
GATEWAY_DOMAIN = "gw6.test"
GATEWAY_IP = "127.0.0.6"

C2S_PORT = 5222
S2S_PORT = 5269

StartTls = Literal["required", "optional", "false"]


@dataclass(frozen=True)
class EjabberdPolicy:
    """ejabberd's s2s settings: ``s2s_use_starttls`` and whether mod_s2s_dialback is loaded.

    ejabberd has no switch for SASL EXTERNAL: after TLS it offers EXTERNAL when the peer's certificate
    validated against ``ca_file``, and tries it outbound whenever the peer offers it. Without
    mod_s2s_dialback, EXTERNAL is the only way in or out.
    """

    starttls: StartTls = "required"
    dialback: bool = True

    @property
    def id(self) -> str:
        return f"starttls-{self.starttls}_db-{'on' if self.dialback else 'off'}"

    def __str__(self) -> str:
        return self.id


class EjabberdError(RuntimeError):
    pass


def ejabberd_unavailable_reason() -> str | None:
    """Why an ejabberd test peer cannot run here, or None when it can."""
    if shutil.which(EJABBERDCTL) is None or not Path("/usr/bin/erl").exists():
        return "ejabberd is not installed (apt-get install ejabberd)"
    if os.geteuid() != 0:
        return "the ejabberd fixture must run as root (ejabberdctl switches to the ejabberd user)"
    try:
        pwd.getpwnam(EJABBERD_USER)
    except KeyError:
        return f"there is no {EJABBERD_USER!r} user (install the Debian ejabberd package)"
    return None


def port_in_use(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((ip, port)) == 0


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _yaml(value: object) -> str:
    """A scalar as a YAML flow value (JSON strings are valid YAML)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def _erl_ip(ip: str) -> str:
    return "{" + ",".join(ip.split(".")) + "}"


# -- log reading -------------------------------------------------------------------------------------------------

# "2026-11-22 06:30:01.123456+00:00 [info] (tls|<0.574.0>) Accepted inbound s2s EXTERNAL authentication
#  gw6.test -> ejabberd.test (127.0.0.6)"
_ACCEPTED = re.compile(
    r"Accepted (?P<direction>inbound|outbound) s2s (?P<mech>\S+) authentication (?P<a>\S+) -> (?P<b>\S+)"
)


@dataclass(frozen=True)
class S2SEvent:
    direction: Literal["in", "out"]  # "in": the peer connected to ejabberd
    peer: str
    local: str
    mechanism: str  # as ejabberd logs it: "EXTERNAL" or "dialback"
    tls: bool  # whether the socket was TLS, from the "(tls|<pid>)" prefix

    @property
    def method(self) -> Method | None:
        if self.mechanism == "EXTERNAL":
            return Method.SASL_TLS
        if self.mechanism.lower() == "dialback":
            return Method.TLS_DIALBACK if self.tls else Method.TCP_DIALBACK
        return None


def s2s_events(text: str) -> list[S2SEvent]:
    """Authenticated S2S streams in ejabberd's log: ``Accepted inbound|outbound s2s MECH authentication
    FROM -> TO`` (inbound: FROM is the peer; outbound: TO is). The line starts with ``(tls|<pid>)`` when the
    socket was TLS, ``(tcp|<pid>)`` or ``(gen_tcp|…)`` when not."""
    events = []
    for line in text.splitlines():
        match = _ACCEPTED.search(line)
        if match is None:
            continue
        direction: Literal["in", "out"] = "in" if match["direction"] == "inbound" else "out"
        peer, local = (match["a"], match["b"]) if direction == "in" else (match["b"], match["a"])
        tls = "(tls|" in line[: match.start()]
        events.append(S2SEvent(direction, peer, local, match["mech"], tls))
    return events


# -- the server --------------------------------------------------------------------------------------------------


class EjabberdServer:
    """One ejabberd serving ``domain`` on ``ip`` (c2s 5222 with STARTTLS required, s2s 5269), with its own
    config directory, spool (Mnesia) and logs under ``directory``.

    ``hosts`` maps the other domains ejabberd must reach to their addresses (written into ``inetrc``).
    Attributes used by ``tests.interop.prosody.Client``: ``domain``, ``ip``, ``c2s_port``, ``cafile``,
    ``cert_path``.
    """

    def __init__(
        self,
        directory: Path,
        ca: TestCA,
        *,
        domain: str = EJABBERD_DOMAIN,
        ip: str = EJABBERD_IP,
        policy: EjabberdPolicy = EjabberdPolicy(),
        hosts: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.ca = ca
        self.domain = domain
        self.ip = ip
        self.policy = policy
        self.hosts = dict(hosts or {})
        self.c2s_port = C2S_PORT
        self.s2s_port = S2S_PORT
        self.etc = directory / "etc"
        self.spool = directory / "spool"
        self.logs = directory / "logs"
        self.cafile = directory / "ca.crt"
        self.cert_path = directory / f"{domain}.crt"
        self.key_path = directory / f"{domain}.key"
        self.pem_path = directory / f"{domain}.pem"  # certificate, CA, key: what ``certfiles`` wants
        self.log_path = self.logs / "ejabberd.log"
        self.console_path = directory / "console.log"
        self.node = f"fedgate{os.getpid()}x{abs(hash((domain, ip))) % 10000}@localhost"
        self.dist_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.users: dict[str, str] = {}
        self._log_start = 0
        user = pwd.getpwnam(EJABBERD_USER)
        self._uid, self._gid, self._home = user.pw_uid, user.pw_gid, user.pw_dir

    # -- config --

    def config_text(self) -> str:
        p = self.policy
        modules = ["mod_disco", "mod_ping", "mod_roster"] + (["mod_s2s_dialback"] if p.dialback else [])
        lines = [
            f"# written by tests/interop_ejabberd/ejabberd.py; policy {p.id}",
            f"hosts: [{_yaml(self.domain)}]",
            "loglevel: debug",
            "log_rotate_count: 0",
            "hide_sensitive_log_data: false",
            f"certfiles: [{_yaml(self.pem_path)}]",
            f"ca_file: {_yaml(self.cafile)}",
            "define_macro: {}",
            "listen:",
            f"  - {{port: {self.c2s_port}, ip: {_yaml(self.ip)}, module: ejabberd_c2s, starttls_required: true}}",
            f"  - {{port: {self.s2s_port}, ip: {_yaml(self.ip)}, module: ejabberd_s2s_in}}",
            f"s2s_use_starttls: {p.starttls}",
            "s2s_access: all",
            "s2s_dns_timeout: 1",
            "s2s_dns_retries: 1",
            "outgoing_s2s_families: [ipv4]",
            f"outgoing_s2s_port: {self.s2s_port}",
            "s2s_timeout: 10",
            "s2s_max_retry_delay: 1",
            "auth_method: [internal]",
            "auth_password_format: plain",
            'acl: {local: {user_regexp: ""}}',
            "access_rules: {local: {allow: local}, c2s: {allow: all}, s2s: {allow: all}}",
            "shaper_rules: {}",
            "modules:",
            *[f"  {m}: {{}}" for m in modules],
        ]
        return "\n".join(lines) + "\n"

    def inetrc_text(self) -> str:
        lines = ['{resolv_conf, ""}.', '{hosts_file, ""}.', "{lookup, [file]}."]
        lines.append('{host, {127,0,0,1}, ["localhost"]}.')
        for domain, ip in sorted({self.domain: self.ip, **self.hosts}.items()):
            lines.append(f'{{host, {_erl_ip(ip)}, ["{domain}"]}}.')
        return "\n".join(lines) + "\n"

    def ctl_config_text(self) -> str:
        return (
            f"ERLANG_NODE={self.node}\n"
            "INET_DIST_INTERFACE=127.0.0.1\n"
            f"ERL_DIST_PORT={self.dist_port}\n"
            f"EJABBERD_PID_PATH={self.directory / 'ejabberd.pid'}\n"
            'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n'
        )

    def write_files(self) -> None:
        for path in (self.directory, self.etc, self.spool, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.ca.cert_path, self.cafile)
        if not self.pem_path.exists():
            files = self.ca.issue(self.domain, self.directory)
            self.pem_path.write_bytes(files.chain.read_bytes() + files.key.read_bytes())
        if not self.dist_port:
            self.dist_port = free_loopback_port()
        (self.etc / "ejabberd.yml").write_text(self.config_text(), encoding="utf-8")
        (self.etc / "inetrc").write_text(self.inetrc_text(), encoding="utf-8")
        (self.etc / "ejabberdctl.cfg").write_text(self.ctl_config_text(), encoding="utf-8")
        for root, dirs, files_ in os.walk(self.directory):
            for name in [*dirs, *files_]:
                os.chown(os.path.join(root, name), self._uid, self._gid)
        os.chown(self.directory, self._uid, self._gid)
        os.chmod(self.directory, 0o750)
        os.chmod(self.pem_path, 0o600)

    def _ctl_argv(self, *args: str) -> list[str]:
        return [
            "setpriv", f"--reuid={EJABBERD_USER}", f"--regid={EJABBERD_USER}", "--init-groups",
            "env", f"HOME={self._home}",
            EJABBERDCTL,
            "--config-dir", str(self.etc),
            "--config", str(self.etc / "ejabberd.yml"),
            "--ctl-config", str(self.etc / "ejabberdctl.cfg"),
            "--spool", str(self.spool),
            "--logs", str(self.logs),
            *args,
        ]  # fmt: skip

    # -- process --

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Write the files, start ejabberd in the foreground (our child), wait until c2s and s2s listen."""
        if self.running:
            raise EjabberdError("already running")
        for port in (self.s2s_port, self.c2s_port):
            if port_in_use(self.ip, port):
                raise EjabberdError(f"{self.ip}:{port} is already taken before ejabberd starts")
        self.write_files()
        with open(self.console_path, "ab") as console:
            self.process = subprocess.Popen(
                self._ctl_argv("foreground"),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        waiting = [self.c2s_port, self.s2s_port]
        while waiting:
            if not self.running:
                raise EjabberdError(f"ejabberd exited ({self.process.returncode}) while starting:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise EjabberdError(f"ejabberd not listening on {self.ip}:{waiting} after {timeout} s:\n{self.tail()}")
            time.sleep(0.1)
            waiting = [port for port in waiting if not port_in_use(self.ip, port)]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node: SIGTERM to its process group (the VM shuts down cleanly on it), SIGKILL after
        ``timeout``."""
        process = self.process
        if process is None or process.poll() is not None:
            self.process = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        # The shell script exits at once; the VM (same process group) takes a moment to shut down.
        # (A zombie left unreaped by a container's PID 1 would look alive: give up after SIGKILL + 2 s.)
        deadline, killed = time.monotonic() + timeout, False
        while _group_alive(process.pid):
            if time.monotonic() > deadline:
                if killed:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                deadline, killed = time.monotonic() + 2, True
            time.sleep(0.05)
        self.process = None

    def __enter__(self) -> EjabberdServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``ejabberdctl ARGS`` against this node; raise with its output on failure."""
        done = subprocess.run(self._ctl_argv(*args), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise EjabberdError(f"ejabberdctl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def register(self, user: str, password: str) -> str:
        """Create the account ``user@domain`` (once per password); returns the bare JID."""
        if self.users.get(user) != password:
            with contextlib.suppress(EjabberdError):
                self.ctl("unregister", user, self.domain)
            self.ctl("register", user, self.domain, password)
            self.users[user] = password
        return f"{user}@{self.domain}"

    # -- log --

    def full_log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self) -> None:
        """:meth:`log_text` and :meth:`s2s_events` start from here."""
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0

    def s2s_events(self) -> list[S2SEvent]:
        return s2s_events(self.log_text())

    def tail(self, lines: int = 60) -> str:
        console = self.console_path.read_text(errors="replace") if self.console_path.exists() else ""
        log = "\n".join(self.full_log_text().splitlines()[-lines:])
        return f"--- {self.console_path}\n{console[-4000:]}--- {self.log_path} (last {lines} lines)\n{log}"
