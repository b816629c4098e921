"""The SQLite store: partners and gateway settings kept, refusals write nothing, concurrent writers lose nothing,
the file is private, the revision counter moves with every change."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fedgate.partners import FieldError, InvalidSettings, Partner
from fedgate.policy import Tls
from fedgate.store import (
    DatabaseUnusable,
    PartnerExists,
    PartnerStore,
    SchemaTooNew,
    UnknownPartner,
    default_db_path,
    open_store,
)
from fedgate.store.sqlite import SCHEMA_VERSION, SqliteStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "fedgate.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(db)
    yield s
    s.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sqlite_store_implements_the_interface(store: SqliteStore) -> None:
    assert isinstance(store, PartnerStore)


def test_default_path_from_environment_or_user_data_dir(tmp_path: Path) -> None:
    assert default_db_path({"FEDGATE_DB": str(tmp_path / "x.db")}) == tmp_path / "x.db"
    fallback = default_db_path({})
    assert fallback.name == "fedgate.sqlite3"
    assert "fedgate" in fallback.parent.parts


def test_partner_round_trip_and_lookup_by_any_domain(store: SqliteStore) -> None:
    p = Partner(
        "Bücher.example",
        additional_domains=("chat.example", "muc.example"),
        tls="optional",  # type: ignore[arg-type]
        proxy_fqdn="127.0.0.7:5269",
        description="books",
        connection_limit=3,
    )
    store.add_partner(p)
    assert store.get_partner("bücher.EXAMPLE") == p
    assert store.find_partner("MUC.example") == p
    assert store.find_partner("xn--bcher-kva.example") == p
    assert store.find_partner("other.example") is None
    assert store.find_partner("not a domain") is None
    with pytest.raises(UnknownPartner):
        store.get_partner("chat.example")  # an additional domain is not the partner's identity


def test_wildcards_match_domain_or_additional_domain(store: SqliteStore) -> None:
    for name, extra in [("a.example.com", ()), ("b.example.com", ("b.example.org",)), ("c.example.net", ())]:
        store.add_partner(Partner(name, additional_domains=extra))
    assert [p.domain for p in store.list_partners()] == ["a.example.com", "b.example.com", "c.example.net"]
    assert [p.domain for p in store.list_partners("*.example.com")] == ["a.example.com", "b.example.com"]
    assert [p.domain for p in store.list_partners("*.ORG")] == ["b.example.com"]
    assert [p.domain for p in store.list_partners("?.example.net")] == ["c.example.net"]
    assert store.list_partners("[xy].*") == []


def test_wildcards_match_unicode_and_ascii_forms(store: SqliteStore) -> None:
    store.add_partner(Partner("bücher.example", additional_domains=("chat.例え.テスト",)))
    store.add_partner(Partner("books.example"))
    assert [p.domain for p in store.list_partners("bü*")] == ["xn--bcher-kva.example"]
    assert [p.domain for p in store.list_partners("BÜCHER.*")] == ["xn--bcher-kva.example"]
    assert [p.domain for p in store.list_partners("xn--bcher*")] == ["xn--bcher-kva.example"]
    assert [p.domain for p in store.list_partners("*.例え.*")] == ["xn--bcher-kva.example"]
    assert [p.domain for p in store.list_partners("b*")] == ["books.example", "xn--bcher-kva.example"]
    assert store.list_partners("bü?") == []


def test_duplicates_are_refused_whichever_field_holds_the_name(store: SqliteStore) -> None:
    store.add_partner(Partner("a.example", additional_domains=("alias.example",)))
    with pytest.raises(PartnerExists) as info:
        store.add_partner(Partner("A.example"))
    assert (info.value.field, info.value.owner) == ("domain", "a.example")
    with pytest.raises(PartnerExists) as info:
        store.add_partner(Partner("alias.example"))
    assert (info.value.domain, info.value.owner) == ("alias.example", "a.example")
    with pytest.raises(PartnerExists) as info:
        store.add_partner(Partner("b.example", additional_domains=("alias.example",)))
    assert info.value.field == "additional_domains"
    store.add_partner(Partner("b.example"))
    with pytest.raises(PartnerExists):
        store.update_partner("b.example", additional_domains=["a.example"])
    assert [p.domain for p in store.list_partners()] == ["a.example", "b.example"]
    assert store.get_partner("b.example").additional_domains == ()


def test_update_changes_only_named_fields(store: SqliteStore) -> None:
    before = store.add_partner(
        Partner("a.example", additional_domains=("x.example",), description="keep", connection_limit=7)
    )
    after = store.update_partner("a.example", tls="optional", enable_keepalive=False)
    assert store.get_partner("a.example") == after
    assert (after.tls, after.enable_keepalive) == (Tls.OPTIONAL, False)
    unchanged = {k: v for k, v in after.as_dict().items() if k not in ("tls", "enable_keepalive")}
    assert unchanged == {k: v for k, v in before.as_dict().items() if k not in ("tls", "enable_keepalive")}
    # Moving an additional domain to the partner itself: the old one is free again.
    store.update_partner("a.example", additional_domains=["y.example"])
    assert store.find_partner("x.example") is None
    assert store.find_partner("y.example") == store.get_partner("a.example")


def test_update_validates_the_merged_result_and_unknown_partners(store: SqliteStore) -> None:
    store.add_partner(Partner("a.example", dialback=False))
    with pytest.raises(InvalidSettings) as info:
        store.update_partner("a.example", sasl="not_supported")  # with dialback already off: nothing left
    assert info.value.field == "settings"
    assert store.get_partner("a.example").sasl.value == "required"
    with pytest.raises(UnknownPartner):
        store.update_partner("b.example", tls="optional")
    with pytest.raises(FieldError):
        store.update_partner("a.example", colour="red")


def test_remove(store: SqliteStore) -> None:
    store.add_partner(Partner("a.example", additional_domains=("alias.example",)))
    assert store.remove_partner("A.example").domain == "a.example"
    assert store.list_partners() == []
    assert store.find_partner("alias.example") is None
    store.add_partner(Partner("alias.example"))  # the name is free again
    with pytest.raises(UnknownPartner):
        store.remove_partner("a.example")


def test_refusals_leave_the_file_byte_for_byte_unchanged(db: Path) -> None:
    with SqliteStore(db) as s:
        s.add_partner(Partner("a.example", dialback=False, additional_domains=("alias.example",)))
        s.update_gateway(max_stanza_size=1000)
    before = digest(db)
    with SqliteStore(db) as s:
        refusals: list[Callable[[], object]] = [
            lambda: s.update_partner("a.example", sasl="not_supported"),
            lambda: s.add_partner(Partner("alias.example")),
            lambda: s.update_partner("nobody.example", tls="optional"),
            lambda: s.remove_partner("nobody.example"),
            lambda: s.update_gateway(unlisted_domains="optional/not_supported/false"),
            lambda: s.update_gateway(keepalive_interval=0),
        ]
        revision = s.revision()
        for refuse in refusals:
            with pytest.raises((InvalidSettings, PartnerExists, UnknownPartner, FieldError)):
                refuse()
        assert s.revision() == revision
    assert digest(db) == before


def test_gateway_settings_persist_and_only_named_ones_change(db: Path) -> None:
    with SqliteStore(db) as s:
        assert s.get_gateway().connection_limit == 1000
        s.update_gateway(connection_limit="50", unlisted_domains="optional/optional/true")
        s.update_gateway(log_message_bodies=True)
    with SqliteStore(db) as s:
        g = s.get_gateway()
    assert (g.connection_limit, str(g.unlisted_domains), g.log_message_bodies) == (50, "optional/optional/true", True)
    assert g.partner_connection_limit == 20


def test_modify_gateway_writes_nothing_when_the_change_refuses(db: Path) -> None:
    with SqliteStore(db) as s:
        s.update_gateway(connection_limit=100)
        before, revision = digest(db), s.revision()
        with pytest.raises(FieldError) as info:
            s.modify_gateway(lambda g: g.changed(partner_connection_limit=101).check_limits())
        assert (info.value.field, info.value.problem, dict(info.value.details)) == (
            "partner_connection_limit", "above_connection_limit", {"connection_limit": 100})
        assert s.revision() == revision
        assert s.get_gateway().partner_connection_limit == 20
        assert s.modify_gateway(lambda g: g.changed(keepalive_interval=5)).keepalive_interval == 5
        assert s.get_gateway().connection_limit == 100
    assert digest(db) != before


def test_dialback_passphrase_is_made_once_and_kept(db: Path) -> None:
    with SqliteStore(db) as s:
        assert s.get_gateway().dialback_passphrase is None
        first = s.dialback_passphrase()
        assert len(first) >= 32
        assert s.dialback_passphrase() == first
    with SqliteStore(db) as s:
        assert s.dialback_passphrase() == first
        assert s.get_gateway().dialback_passphrase == first
        s.update_gateway(dialback_passphrase="another-long-passphrase")
        assert s.dialback_passphrase() == "another-long-passphrase"


def test_revision_moves_with_every_change_seen_from_another_connection(db: Path) -> None:
    with SqliteStore(db) as writer, SqliteStore(db) as watcher:
        seen = [watcher.revision()]
        writer.add_partner(Partner("a.example"))
        seen.append(watcher.revision())
        writer.update_partner("a.example", description="x")
        seen.append(watcher.revision())
        writer.update_gateway(keepalive_interval=30)
        seen.append(watcher.revision())
        writer.remove_partner("a.example")
        seen.append(watcher.revision())
        watcher.get_gateway()
        watcher.list_partners()
        assert watcher.revision() == seen[-1]  # reading changes nothing
    assert seen == sorted(set(seen))
    assert len(seen) == 5


def test_database_and_its_wal_files_are_private(db: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        with SqliteStore(db) as s:
            s.add_partner(Partner("a.example"))
            s.dialback_passphrase()
            files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
            for f in files:
                assert f.exists(), f
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        os.umask(old)


def test_missing_directories_are_created_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "dir" / "fedgate.sqlite3"
    s = open_store(db)
    s.add_partner(Partner("a.example"))
    s.close()
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_file_that_is_not_a_fedgate_database_is_refused_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not SQLite\n")
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    for path, problem in [(garbage, "not_a_database"), (foreign, "foreign")]:
        before = digest(path)
        with pytest.raises(DatabaseUnusable) as info:
            open_store(path)
        assert (info.value.path, info.value.problem, info.value.field) == (str(path), problem, "db")
        assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db", "garbage.db"]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DatabaseUnusable) as info:
        open_store(tmp_path / "a-file" / "fedgate.sqlite3")
    assert info.value.problem == "no_directory"


class _NoWal:
    """An SQLite connection on a file system where WAL cannot be used: SQLite keeps the old journal mode
    without an error."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self._real = real

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if "journal_mode" in sql:
            return self._real.execute("SELECT 'delete'")
        return self._real.execute(sql, *args)

    def close(self) -> None:
        self._real.close()


def test_a_file_system_without_wal_is_refused_after_the_busy_deadline(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fedgate.store import sqlite as store_sqlite

    real_connect = sqlite3.connect
    monkeypatch.setattr(store_sqlite, "BUSY_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(store_sqlite.sqlite3, "connect", lambda *a, **k: _NoWal(real_connect(*a, **k)))
    with pytest.raises(DatabaseUnusable) as info:
        SqliteStore(db)
    assert (info.value.path, info.value.problem) == (str(db), "no_wal")


def test_the_in_memory_name_is_refused_before_anything_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (":memory:", ""):
        with pytest.raises(DatabaseUnusable) as info:
            SqliteStore(name)
        assert (info.value.path, info.value.problem) == (name, "in_memory")
    assert list(tmp_path.iterdir()) == []


def test_a_file_damaged_after_opening_is_reported_not_raised_raw(db: Path) -> None:
    with SqliteStore(db) as s:
        s.add_partner(Partner("a.example"))
    with SqliteStore(db) as s:
        db.write_bytes(b"\0" * 100 + b"garbage" * 1000)  # another program overwrites it while we have it open
        with pytest.raises(DatabaseUnusable) as info:
            s.list_partners()
        assert info.value.problem == "not_a_database"


def test_schema_is_versioned(db: Path) -> None:
    with SqliteStore(db):
        pass
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew) as info:
        SqliteStore(db)
    assert info.value.found == SCHEMA_VERSION + 1


def _add_many(db: str, prefix: str, count: int) -> None:
    with SqliteStore(db) as s:
        for i in range(count):
            s.add_partner(Partner(f"{prefix}{i}.example", additional_domains=(f"alias-{prefix}{i}.example",)))
            if i % 10 == 0:
                s.update_gateway(keepalive_interval=100 + i)


def _in_processes(target: Callable[..., None], args: list[tuple[object, ...]]) -> None:
    """Runs ``target`` in spawned processes at once (one per ``args``); each must exit 0."""
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=target, args=a) for a in args]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0] * len(args)


@pytest.mark.slow
def test_concurrent_processes_lose_nothing(db: Path) -> None:
    """Four processes, each its own connection, all starting on a file that does not exist yet."""
    _in_processes(_add_many, [(str(db), f"w{n}-", 60) for n in range(4)])
    with SqliteStore(db) as s:
        partners = s.list_partners()
        assert len(partners) == 240
        assert all(s.find_partner(f"alias-{p.domain}") == p for p in partners)
        assert s.revision() == 240 + 4 * 6  # every change counted once
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()


def _add_domains(db: str, worker: int, count: int) -> None:
    with SqliteStore(db) as s:
        for i in range(count):
            name = f"w{worker}-{i}.example"
            s.modify_partner("shared.example", lambda p, name=name: p.edit_additional_domains(add=[name]))


@pytest.mark.slow
def test_concurrent_additional_domain_edits_lose_nothing(db: Path) -> None:
    """Four processes adding additional domains to one partner at once: every domain is kept."""
    with SqliteStore(db) as s:
        s.add_partner(Partner("shared.example", additional_domains=("first.example",)))
    _in_processes(_add_domains, [(str(db), n, 15) for n in range(4)])
    with SqliteStore(db) as s:
        kept = s.get_partner("shared.example").additional_domains
        assert sorted(kept) == sorted(["first.example", *(f"w{n}-{i}.example" for n in range(4) for i in range(15))])
        assert all(s.find_partner(name) is not None for name in kept)


def test_additional_domains_added_and_removed_one_by_one(store: SqliteStore) -> None:
    store.add_partner(Partner("a.example", additional_domains=("x.example", "y.example")))
    updated = store.modify_partner(
        "a.example", lambda p: p.edit_additional_domains(add=["Z.example", "y.example"], remove=["X.EXAMPLE"])
    )
    assert updated.additional_domains == ("y.example", "z.example")
    assert store.get_partner("a.example") == updated
    revision = store.revision()
    with pytest.raises(FieldError) as info:
        store.modify_partner(
            "a.example", lambda p: p.changed(description="not kept").edit_additional_domains(remove=["q.example"])
        )
    assert (info.value.field, info.value.problem, info.value.allowed) == (
        "additional_domains", "not_listed", ("y.example", "z.example"))
    assert store.get_partner("a.example") == updated
    assert store.revision() == revision
    store.add_partner(Partner("b.example"))
    with pytest.raises(PartnerExists):
        store.modify_partner("b.example", lambda p: p.edit_additional_domains(add=["z.example"]))
    with pytest.raises(UnknownPartner):
        store.modify_partner("c.example", lambda p: p)


def test_authorizations_are_recorded_once_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    store = SqliteStore(path)
    before = store.revision()
    store.record_authorization("bob@b.test", "alice@a.test")
    store.record_authorization("bob@b.test", "alice@a.test")
    assert store.revision() == before  # not a settings change: gateways need not reload
    store.close()
    assert SqliteStore(path).authorizations() == [("bob@b.test", "alice@a.test")]


def test_a_version_1_database_is_migrated_keeping_its_partners(tmp_path: Path) -> None:
    from fedgate.store.sqlite import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO partners VALUES ('p.test', 'required', 'required', 1, 'federated', NULL, 1, NULL, '')")
    conn.execute("INSERT INTO partner_names VALUES ('p.test', 'p.test', 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    assert store.get_partner("p.test").partner_type.value == "federated"
    store.record_authorization("x@b.test", "y@p.test")
    assert store.authorizations() == [("x@b.test", "y@p.test")]
