"""The embedded store: one SQLite file, WAL mode, versioned schema.

* The file (and SQLite's -wal and -shm files beside it, which take its mode) is created 0600: it holds the
  dialback passphrase.
* Every change is one ``BEGIN IMMEDIATE`` transaction that also bumps the revision counter; with WAL and a
  busy timeout, processes writing at the same time wait for each other instead of failing or losing a change.
* Validation happens before anything is written; a refused change leaves the file as it was.
* The schema version is ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes version ``i`` to ``i + 1``.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from ..partners import GATEWAY_FIELDS, FieldError, GatewaySettings, Partner, new_passphrase, normalize_domain
from . import DatabaseUnusable, PartnerExists, SchemaTooNew, UnknownPartner

BUSY_TIMEOUT_SECONDS = 60.0

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: partners, every name each answers for, gateway settings, the revision counter.
    (
        """CREATE TABLE partners (
            domain TEXT PRIMARY KEY,
            tls TEXT NOT NULL,
            sasl TEXT NOT NULL,
            dialback INTEGER NOT NULL,
            partner_type TEXT NOT NULL,
            proxy_fqdn TEXT,
            enable_keepalive INTEGER NOT NULL,
            connection_limit INTEGER,
            description TEXT NOT NULL DEFAULT ''
        )""",
        # position 0 is the partner's own domain, 1.. its additional domains in order. The primary key makes a
        # name belong to one partner at most.
        """CREATE TABLE partner_names (
            name TEXT PRIMARY KEY,
            partner TEXT NOT NULL REFERENCES partners(domain) ON DELETE CASCADE,
            position INTEGER NOT NULL
        )""",
        "CREATE INDEX partner_names_partner ON partner_names(partner, position)",
        # Gateway settings that differ from the defaults: field name -> JSON value.
        "CREATE TABLE gateway (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)",
        "INSERT INTO revision (id, value) VALUES (1, 0)",
    ),
    # 1 -> 2: who each local user has reached out to (public_unverified partners may write only to them).
    (
        """CREATE TABLE authorizations (
            local_bare TEXT NOT NULL,
            remote_bare TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (local_bare, remote_bare)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_PARTNER_COLUMNS = (
    "domain",
    "tls",
    "sasl",
    "dialback",
    "partner_type",
    "proxy_fqdn",
    "enable_keepalive",
    "connection_limit",
    "description",
)


# Names SQLite takes for a private, temporary database rather than a file ("" is one on disk, deleted at close).
_NOT_FILES = frozenset({":memory:", ""})


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an empty file is an empty SQLite database)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


@contextmanager
def _private_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


# SQLite's primary result codes (sqlite3.h) -> DatabaseUnusable problems.
_SQLITE_PROBLEMS = {
    3: "no_permission",  # SQLITE_PERM
    5: "busy",  # SQLITE_BUSY
    6: "busy",  # SQLITE_LOCKED
    8: "read_only",  # SQLITE_READONLY
    10: "io_error",  # SQLITE_IOERR
    11: "not_a_database",  # SQLITE_CORRUPT
    13: "io_error",  # SQLITE_FULL
    14: "cannot_open",  # SQLITE_CANTOPEN
    23: "no_permission",  # SQLITE_AUTH
    26: "not_a_database",  # SQLITE_NOTADB
}

_T = TypeVar("_T")
_P = ParamSpec("_P")


def _problem(error: Exception, path: Path) -> str | None:
    """The ``DatabaseUnusable`` problem for an error from the file system or SQLite; None for anything else."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return _SQLITE_PROBLEMS.get(code & 0xFF) if isinstance(code, int) else None
    if isinstance(error, FileNotFoundError | NotADirectoryError | FileExistsError):
        # FileExistsError: a file stands where a folder should be. A folder that is there but takes no new
        # files (such as /proc) is another matter.
        return "cannot_open" if path.parent.is_dir() else "no_directory"
    if isinstance(error, PermissionError):
        return "no_permission"
    if isinstance(error, IsADirectoryError):
        return "cannot_open"
    if isinstance(error, OSError):
        return "io_error"
    return None


def _database_errors(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """``method`` with the database's own failures (a damaged file, a missing folder...) as ``DatabaseUnusable``
    naming the file, instead of SQLite's or the OS's exception."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, OSError) as error:
            store = args[0]
            assert isinstance(store, SqliteStore)
            problem = _problem(error, store.path)
            if problem is None:
                raise
            raise DatabaseUnusable(str(store.path), problem) from error

    return guarded


class SqliteStore:
    """``PartnerStore`` on an SQLite file. A file that is not a fedgate database is refused untouched."""

    @_database_errors
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if os.fspath(path) in _NOT_FILES:  # (checked before anything is created: no file named ":memory:")
            raise DatabaseUnusable(os.fspath(path), "in_memory")
        with _private_umask():
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            try:
                self._setup()
            except BaseException:
                self._db.close()
                raise

    # --- connection and schema -------------------------------------------------------------------------------

    def _setup(self) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        if self._user_version() == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            # Tables but no schema version of ours: another program's database. Leave it as it is.
            raise DatabaseUnusable(str(self.path), "foreign")
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # Switching to WAL needs the file to itself; only the very first opening ever does it. SQLite says
            # busy, or keeps the old mode without a word: then try again, until the deadline (a file system
            # without the shared memory WAL needs never switches).
            try:
                db.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
            else:
                if time.monotonic() > deadline:
                    raise DatabaseUnusable(str(self.path), "no_wal")
            time.sleep(0.05)
        if self._user_version() != SCHEMA_VERSION:
            self._migrate()

    def _user_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _migrate(self) -> None:
        with self._transaction(bump=False) as db:
            version = self._user_version()  # again, now that we hold the write lock
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(version, SCHEMA_VERSION)
            for step in MIGRATIONS[version:]:
                for statement in step:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self, *, bump: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; with ``bump`` it also counts as a change (``revision()`` grows)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            if bump:
                db.execute("UPDATE revision SET value = value + 1 WHERE id = 1")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- partners ----------------------------------------------------------------------------------------------

    def _load(self, domains: Sequence[str] | None = None) -> list[Partner]:
        """Partners by domain (all when ``domains`` is None), ordered by domain."""
        db = self._db
        args = tuple(domains or ())
        only = f" IN ({', '.join('?' * len(args))})" if domains is not None else ""
        names: dict[str, list[str]] = {}
        for name, partner in db.execute(
            "SELECT name, partner FROM partner_names WHERE position > 0"
            + (f" AND partner{only}" if only else "")
            + " ORDER BY partner, position",
            args,
        ):
            names.setdefault(partner, []).append(name)
        rows = db.execute(
            f"SELECT {', '.join(_PARTNER_COLUMNS)} FROM partners" + (f" WHERE domain{only}" if only else "")
            + " ORDER BY domain",
            args,
        )
        partners = []
        for row in rows:
            values: dict[str, Any] = dict(zip(_PARTNER_COLUMNS, row, strict=True))
            values["dialback"] = bool(values["dialback"])
            values["enable_keepalive"] = bool(values["enable_keepalive"])
            partners.append(Partner.parse(**values, additional_domains=names.get(values["domain"], [])))
        return partners

    def _write_partner(self, db: sqlite3.Connection, partner: Partner, replacing: str | None) -> None:
        """Insert ``partner`` (in place of the partner ``replacing``), refusing names another partner holds."""
        marks = ", ".join("?" * len(partner.domains))
        for name, owner in db.execute(
            f"SELECT name, partner FROM partner_names WHERE name IN ({marks})", partner.domains
        ).fetchall():
            if owner != replacing:
                field = "domain" if name == partner.domain else "additional_domains"
                raise PartnerExists(name, owner, field)
        if replacing is not None:
            db.execute("DELETE FROM partners WHERE domain = ?", (replacing,))
        values = partner.as_dict()
        db.execute(
            f"INSERT INTO partners ({', '.join(_PARTNER_COLUMNS)}) VALUES ({', '.join('?' * len(_PARTNER_COLUMNS))})",
            [values[c] for c in _PARTNER_COLUMNS],
        )
        db.executemany(
            "INSERT INTO partner_names (name, partner, position) VALUES (?, ?, ?)",
            [(name, partner.domain, i) for i, name in enumerate(partner.domains)],
        )

    @_database_errors
    def add_partner(self, partner: Partner) -> Partner:
        with self._transaction() as db:
            self._write_partner(db, partner, None)
        return partner

    def update_partner(self, domain: str, **changes: object) -> Partner:
        return self.modify_partner(domain, lambda current: current.changed(**changes))

    @_database_errors
    def modify_partner(self, domain: str, change: Callable[[Partner], Partner]) -> Partner:
        key = normalize_domain(domain)
        with self._transaction() as db:  # BEGIN IMMEDIATE: nobody else writes between our read and our write
            current = self._load([key])
            if not current:
                raise UnknownPartner(key)
            updated = change(current[0])
            self._write_partner(db, updated, key)
        return updated

    @_database_errors
    def get_partner(self, domain: str) -> Partner:
        key = normalize_domain(domain)
        found = self._load([key])
        if not found:
            raise UnknownPartner(key)
        return found[0]

    @_database_errors
    def find_partner(self, domain: str) -> Partner | None:
        try:
            key = normalize_domain(domain)
        except FieldError:
            return None
        row = self._db.execute("SELECT partner FROM partner_names WHERE name = ?", (key,)).fetchone()
        if row is None:
            return None
        found = self._load([row[0]])
        return found[0] if found else None

    @_database_errors
    def list_partners(self, pattern: str | None = None) -> list[Partner]:
        partners = self._load()
        if pattern is None:
            return partners
        return [p for p in partners if p.matches(pattern)]

    @_database_errors
    def record_authorization(self, local_bare: str, remote_bare: str) -> None:
        # Not a settings change: running gateways need not reload for it.
        with self._transaction(bump=False) as db:
            db.execute(
                "INSERT OR IGNORE INTO authorizations (local_bare, remote_bare, created) VALUES (?, ?, ?)",
                (local_bare, remote_bare, time.time()),
            )

    @_database_errors
    def authorizations(self) -> list[tuple[str, str]]:
        rows = self._db.execute("SELECT local_bare, remote_bare FROM authorizations ORDER BY created").fetchall()
        return [(str(a), str(b)) for a, b in rows]

    @_database_errors
    def remove_partner(self, domain: str) -> Partner:
        key = normalize_domain(domain)
        with self._transaction() as db:
            found = self._load([key])
            if not found:
                raise UnknownPartner(key)
            db.execute("DELETE FROM partners WHERE domain = ?", (key,))
        return found[0]

    # --- gateway settings ----------------------------------------------------------------------------------

    @_database_errors
    def get_gateway(self) -> GatewaySettings:
        stored = {
            key: json.loads(value)
            for key, value in self._db.execute("SELECT key, value FROM gateway")
            if key in GATEWAY_FIELDS
        }
        return GatewaySettings.parse(**stored)

    def _write_gateway(self, db: sqlite3.Connection, settings: GatewaySettings, keys: Sequence[str]) -> None:
        values = settings.as_dict(show_secrets=True)
        db.executemany(
            "INSERT INTO gateway (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(key, json.dumps(values[key])) for key in keys],
        )

    def update_gateway(self, **changes: object) -> GatewaySettings:
        return self.modify_gateway(lambda current: current.changed(**changes))

    @_database_errors
    def modify_gateway(self, change: Callable[[GatewaySettings], GatewaySettings]) -> GatewaySettings:
        with self._transaction() as db:
            current = self.get_gateway()
            updated = change(current)
            before, after = current.as_dict(show_secrets=True), updated.as_dict(show_secrets=True)
            self._write_gateway(db, updated, [key for key in GATEWAY_FIELDS if before[key] != after[key]])
        return updated

    @_database_errors
    def dialback_passphrase(self) -> str:
        passphrase = self.get_gateway().dialback_passphrase
        if passphrase is not None:
            return passphrase
        with self._transaction() as db:
            current = self.get_gateway()  # another process may have made one meanwhile
            if current.dialback_passphrase is None:
                current = current.changed(dialback_passphrase=new_passphrase())
                self._write_gateway(db, current, ["dialback_passphrase"])
        assert current.dialback_passphrase is not None
        return current.dialback_passphrase

    @_database_errors
    def revision(self) -> int:
        value: int = self._db.execute("SELECT value FROM revision WHERE id = 1").fetchone()[0]
        return value
