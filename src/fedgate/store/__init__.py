"""Where partners and gateway settings are kept: the ``PartnerStore`` interface.

``fedgate.store.sqlite.SqliteStore`` is the embedded default; a PostgreSQL store can implement the same
interface. Every store validates through ``fedgate.partners`` (records that exist are well formed and their
settings valid), writes each change in one transaction, and bumps ``revision()`` with every change so a
running gateway can poll it and reload.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import platformdirs

from ..errors import FedgateError
from ..partners import GatewaySettings, Partner

APP_NAME = "fedgate"
DB_ENV = "FEDGATE_DB"
DB_FILENAME = "fedgate.sqlite3"


class StoreError(FedgateError):
    """A change the store refuses (the CLI's exit code 1). ``field`` names what it is about."""

    field = "domain"

    def __init__(self, domain: str) -> None:
        self.domain = domain
        super().__init__(domain)


class UnknownPartner(StoreError):
    """No partner has this domain."""


class PartnerExists(StoreError):
    """The domain is already taken, as ``owner``'s domain or one of its additional domains."""

    def __init__(self, domain: str, owner: str, field_name: str = "domain") -> None:
        self.owner = owner
        self.field = field_name
        super().__init__(domain)


class SchemaTooNew(StoreError):
    """The database was written by a newer fedgate."""

    field = "db"

    def __init__(self, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(str(found))


class DatabaseUnusable(StoreError):
    """The database at ``path`` cannot be used; it is left as it is. ``problem`` is a stable code (message key
    ``db.problem.<problem>``): ``not_a_database`` (damaged, or another kind of file), ``foreign`` (another
    program's database), ``no_directory``, ``no_permission``, ``read_only``, ``busy``, ``cannot_open``,
    ``io_error``, ``in_memory`` (SQLite's name for a database kept in memory), ``no_wal`` (the file system cannot
    keep SQLite's write-ahead log)."""

    field = "db"

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(path)
        self.args = (f"{path}: {problem}",)


@runtime_checkable
class PartnerStore(Protocol):
    """Partners and gateway-wide settings. Domains given to any method are IDNA-normalised first."""

    def add_partner(self, partner: Partner) -> Partner:
        """Adds a partner; ``PartnerExists`` when any of its domains is taken by another partner."""
        ...

    def update_partner(self, domain: str, **changes: object) -> Partner:
        """Changes only the named fields; the merged result is validated as a whole. Returns it."""
        ...

    def modify_partner(self, domain: str, change: Callable[[Partner], Partner]) -> Partner:
        """Stores ``change(partner)`` in place of the partner, read inside the same write transaction, so that
        edits made at the same time (``Partner.edit_additional_domains`` in two processes) all survive. Whatever
        ``change`` raises is raised and nothing is written. Returns the stored result."""
        ...

    def get_partner(self, domain: str) -> Partner:
        """The partner whose domain this is; ``UnknownPartner`` otherwise."""
        ...

    def find_partner(self, domain: str) -> Partner | None:
        """The partner answering for ``domain`` as its domain or an additional domain (what S2S asks)."""
        ...

    def list_partners(self, pattern: str | None = None) -> list[Partner]:
        """Partners, by domain; ``pattern`` (shell wildcards) must match the domain or an additional domain, as
        ``Partner.matches`` decides (A-label or U-label form, any case)."""
        ...

    def remove_partner(self, domain: str) -> Partner:
        """Removes and returns the partner; ``UnknownPartner`` when there is none."""
        ...

    def get_gateway(self) -> GatewaySettings: ...

    def update_gateway(self, **changes: object) -> GatewaySettings:
        """Changes only the named gateway fields; returns the result."""
        ...

    def modify_gateway(self, change: Callable[[GatewaySettings], GatewaySettings]) -> GatewaySettings:
        """Stores ``change(settings)``, read inside the same write transaction (as ``modify_partner``); whatever
        ``change`` raises is raised and nothing is written. Returns the stored result."""
        ...

    def dialback_passphrase(self) -> str:
        """The dialback secret; generated with ``secrets`` and stored on first use."""
        ...

    def record_authorization(self, local_bare: str, remote_bare: str) -> None:
        """Remember that a local user reached out to a remote contact (public_unverified partners)."""
        ...

    def authorizations(self) -> list[tuple[str, str]]:
        """Every recorded (local bare JID, remote bare JID)."""
        ...

    def revision(self) -> int:
        """A number that grows with every change to partners or gateway settings, from any process."""
        ...

    def close(self) -> None: ...


def default_db_path(environ: dict[str, str] | None = None) -> Path:
    """``$FEDGATE_DB``, else ``fedgate.sqlite3`` in the user data directory."""
    env = os.environ if environ is None else environ
    if env.get(DB_ENV):
        return Path(env[DB_ENV])
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / DB_FILENAME


def open_store(path: str | os.PathLike[str] | None = None) -> PartnerStore:
    """The embedded SQLite store at ``path`` (default: ``default_db_path()``), created and migrated as needed."""
    from .sqlite import SqliteStore

    return SqliteStore(Path(path) if path is not None else default_db_path())


__all__ = [
    "DatabaseUnusable",
    "PartnerExists",
    "PartnerStore",
    "SchemaTooNew",
    "StoreError",
    "UnknownPartner",
    "default_db_path",
    "open_store",
]
