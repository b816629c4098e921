"""Fixtures for the interop tests: a real Prosody 0.12 peer, the test CA it trusts, /etc/hosts entries.

Tests that need Prosody are marked ``@pytest.mark.prosody``. When ``CI=true`` they FAIL if Prosody cannot run
here (not installed, not root); elsewhere they skip with the reason. That rule lives in
:func:`require_prosody` only.

* ``prosody`` (function): a running :class:`ProsodyServer` for ``prosody.test`` on 127.0.0.3 under
  ``prosody_policy``, reset for this test (S2S streams closed, log helpers starting now).
* ``prosody_policy``: :class:`ProsodyPolicy` (default TLS optional, SASL optional, dialback on); override with
  ``@pytest.mark.parametrize("prosody_policy", [ProsodyPolicy("required", "required", False)], ids=str)``
  (``ALL_POLICIES`` holds the 18 triples). Switching policy restarts Prosody (about 0.2 s).
* ``prosody_pool`` (session): ``get(policy, domain=..., ip=..., extra_options=..., cert_options=...)`` for
  other instances (each started on first use; one per address at a time).
* ``interop_ca`` (session): the :class:`fedgate.certs.TestCA` every peer trusts.
* ``interop_hosts`` (session): the :class:`HostsFile` with gw.test, prosody.test, peer.test. Prosody reads
  /etc/hosts only when it starts: add further domains with ``prosody_pool.add_hosts({domain: ip})``, which
  restarts running instances when the file changed.
* ``interop_dir`` (session): a directory the ``prosody`` user can reach (pytest's tmp_path cannot be).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fedgate.certs import TestCA

from .prosody import (
    DEFAULT_HOSTS,
    PROSODY_DOMAIN,
    PROSODY_IP,
    HostsFile,
    ProsodyPolicy,
    ProsodyServer,
    prosody_unavailable_reason,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_prosody() -> None:
    """Fail (CI=true) or skip (elsewhere) when a Prosody peer cannot run on this machine."""
    reason = prosody_unavailable_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and the Prosody interop peer cannot run: {reason}", pytrace=False)
    pytest.skip(f"Prosody interop peer unavailable: {reason}")


@pytest.fixture(autouse=True)
def _prosody_marker(request: pytest.FixtureRequest) -> None:
    """Every ``@pytest.mark.prosody`` test goes through :func:`require_prosody`, fixture or not."""
    if request.node.get_closest_marker("prosody") is not None:
        require_prosody()


@pytest.fixture(scope="session")
def interop_dir() -> Iterator[Path]:
    """A fresh directory under /tmp that the prosody user can traverse; removed at the end of the session
    (kept when FEDGATE_KEEP_INTEROP=1, for reading logs)."""
    require_prosody()
    path = Path(tempfile.mkdtemp(prefix="fedgate-interop-"))
    path.chmod(0o755)
    yield path
    if os.environ.get("FEDGATE_KEEP_INTEROP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def interop_ca(interop_dir: Path) -> TestCA:
    return TestCA.create(interop_dir / "ca", name="fedgate interop test CA")


@pytest.fixture(scope="session")
def interop_hosts() -> Iterator[HostsFile]:
    """gw.test → 127.0.0.2, prosody.test → 127.0.0.3, peer.test → 127.0.0.4 in /etc/hosts for the session
    (removed even on failure)."""
    require_prosody()
    with HostsFile() as hosts:
        hosts.add(DEFAULT_HOSTS)
        yield hosts


class ProsodyPool:
    """Running Prosody instances, one per (domain, ip, policy, extra options), started on first use.

    Instances that would share an address with the requested one (another policy for the same domain) are
    stopped first; a stopped instance keeps its directory, so its users survive a restart. Starting takes
    about 0.15 s and stopping about 0.01 s, so switching policies is cheap.
    """

    def __init__(self, directory: Path, ca: TestCA, hosts: HostsFile) -> None:
        self.directory = directory
        self.ca = ca
        self.hosts = hosts
        self.servers: dict[tuple[Any, ...], ProsodyServer] = {}

    def get(
        self,
        policy: ProsodyPolicy | None = None,
        *,
        domain: str = PROSODY_DOMAIN,
        ip: str = PROSODY_IP,
        extra_options: Mapping[str, Any] | None = None,
        cert_options: Mapping[str, Any] | None = None,
    ) -> ProsodyServer:
        policy = policy or ProsodyPolicy()
        extra = dict(extra_options or {})
        cert = dict(cert_options or {})
        key = (domain, ip, policy, repr(sorted(extra.items())), repr(sorted(cert.items())))
        server = self.servers.get(key)
        if server is not None and server.running:
            return server
        for other_key, other in self.servers.items():
            if other_key != key and other.running and (other.ip == ip or other.domain == domain):
                other.stop()
        if server is None:
            name = f"{domain}_{ip}_{policy.id}" + (f"_{len(self.servers)}" if extra or cert else "")
            server = ProsodyServer(
                self.directory / "prosody" / name,
                self.ca,
                domain=domain,
                ip=ip,
                policy=policy,
                extra_options=extra,
                cert_options=cert,
            )
            self.servers[key] = server
        self.add_hosts({domain: ip})
        server.start()
        return server

    def add_hosts(self, entries: Mapping[str, str]) -> None:
        """Add ``{domain: ip}`` to /etc/hosts; running instances restart to see them (about 0.2 s)."""
        if self.hosts.add(entries):
            for server in self.servers.values():
                if server.running:
                    server.stop()
                    server.start()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def prosody_pool(interop_dir: Path, interop_ca: TestCA, interop_hosts: HostsFile) -> Iterator[ProsodyPool]:
    pool = ProsodyPool(interop_dir, interop_ca, interop_hosts)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def prosody_policy() -> ProsodyPolicy:
    """The policy of the ``prosody`` fixture; parametrize this name to choose another."""
    return ProsodyPolicy()


@pytest.fixture
def prosody(prosody_pool: ProsodyPool, prosody_policy: ProsodyPolicy) -> ProsodyServer:
    """prosody.test on 127.0.0.3 under ``prosody_policy``, running, with S2S streams closed and the log
    helpers (``log_text``, ``s2s_events``) starting at this test."""
    require_prosody()
    server = prosody_pool.get(prosody_policy)
    server.reset()
    return server
