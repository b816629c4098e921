"""Fixtures for the ejabberd interop tests: a real ejabberd (Debian package ``ejabberd``) peer for
``ejabberd.test`` on 127.0.0.5, and the test CA it trusts.

When ``CI=true`` every test here FAILS if ejabberd cannot run on this machine (not installed, not root);
elsewhere it skips with the reason. That rule lives in :func:`require_ejabberd` only, which the
``ejabberd_dir`` fixture (under all others) calls.

* ``ejabberd_pool`` (session): ``get(policy)`` → a running :class:`EjabberdServer` under that policy (one
  instance at a time on 127.0.0.5; switching policy stops the other, about 2 s, and starts, about 1.3 s).
* ``ejabberd_hosts`` (session): gw6.test and ejabberd.test in /etc/hosts (``tests.interop``'s HostsFile).
* ``ejabberd_ca`` (session): the :class:`fedgate.certs.TestCA` ejabberd trusts and fedgate's gateway uses.
* ``ejabberd_dir`` (session): a directory the ``ejabberd`` user can reach (kept with FEDGATE_KEEP_INTEROP=1).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedgate.certs import TestCA

from ..interop.prosody import HostsFile
from .ejabberd import (
    EJABBERD_DOMAIN,
    EJABBERD_IP,
    GATEWAY_DOMAIN,
    GATEWAY_IP,
    EjabberdPolicy,
    EjabberdServer,
    ejabberd_unavailable_reason,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_ejabberd() -> None:
    """Fail (CI=true) or skip (elsewhere) when an ejabberd peer cannot run on this machine."""
    reason = ejabberd_unavailable_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and the ejabberd interop peer cannot run: {reason}", pytrace=False)
    pytest.skip(f"ejabberd interop peer unavailable: {reason}")


@pytest.fixture(scope="session")
def ejabberd_dir() -> Iterator[Path]:
    require_ejabberd()
    path = Path(tempfile.mkdtemp(prefix="fedgate-ejabberd-"))
    path.chmod(0o755)
    yield path
    if os.environ.get("FEDGATE_KEEP_INTEROP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def ejabberd_ca(ejabberd_dir: Path) -> TestCA:
    return TestCA.create(ejabberd_dir / "ca", name="fedgate ejabberd interop test CA")


class EjabberdPool:
    """One running ejabberd at a time for ejabberd.test, per policy; each policy keeps its directory."""

    def __init__(self, directory: Path, ca: TestCA) -> None:
        self.directory = directory
        self.ca = ca
        self.servers: dict[EjabberdPolicy, EjabberdServer] = {}

    def get(self, policy: EjabberdPolicy) -> EjabberdServer:
        server = self.servers.get(policy)
        if server is not None and server.running:
            return server
        for other in self.servers.values():
            other.stop()
        if server is None:
            server = EjabberdServer(
                self.directory / f"ejabberd-{policy.id}",
                self.ca,
                policy=policy,
                hosts={GATEWAY_DOMAIN: GATEWAY_IP},
            )
            self.servers[policy] = server
        server.start()
        return server

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def ejabberd_hosts() -> Iterator[HostsFile]:
    """gw6.test → 127.0.0.6 and ejabberd.test → 127.0.0.5 in /etc/hosts for the session (removed even on
    failure): ejabberd's A/AAAA lookups go through libc (``net:getaddrinfo``), which reads /etc/hosts."""
    require_ejabberd()
    with HostsFile() as hosts:
        hosts.add({GATEWAY_DOMAIN: GATEWAY_IP, EJABBERD_DOMAIN: EJABBERD_IP})
        yield hosts


@pytest.fixture(scope="session")
def ejabberd_pool(ejabberd_dir: Path, ejabberd_ca: TestCA, ejabberd_hosts: HostsFile) -> Iterator[EjabberdPool]:
    pool = EjabberdPool(ejabberd_dir, ejabberd_ca)
    try:
        yield pool
    finally:
        pool.close()
