"""kill -9 in the middle of store writes leaves the database consistent.

A subprocess runs ``fedgate partner new`` (the click command, in-process so that nearly all of its time is
spent writing: one ``BEGIN IMMEDIATE`` transaction per partner) in a loop against one database, and is killed
with SIGKILL at a random moment; then ``PRAGMA integrity_check`` must say ok and every partner row must be
complete: exactly its names in ``partner_names`` (its own domain at position 0, each additional domain at
1..n in order), no name without its partner, and the revision counter present. Twenty rounds, random delays.
A last round kills a ``python -m fedgate.cli partner new`` process itself, start-up included."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from fedgate.store.sqlite import SqliteStore

LOOP = r"""
import sys
from fedgate.cli import cli
start = int(sys.argv[2])
for i in range(start, start + 100000):
    try:
        cli.main(args=["--db", sys.argv[1], "partner", "new", f"p{i}.test", "--additional-domain", f"a{i}.test",
                       "--additional-domain", f"b{i}.test"],
                 prog_name="fedgate", standalone_mode=False)
    except SystemExit as exc:  # the command's own exit: fine when it is a success
        if exc.code not in (0, None):
            raise
    except Exception as exc:
        print("error", i, exc, file=sys.stderr)
        raise
    print("added", i, flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def check_consistent(db: Path) -> int:
    """Integrity and completeness of every partner; returns the number of partners."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        partners = [r[0] for r in con.execute("SELECT domain FROM partners")]
        names: dict[str, list[tuple[int, str]]] = {}
        for name, partner, position in con.execute("SELECT name, partner, position FROM partner_names"):
            names.setdefault(partner, []).append((position, name))
        assert set(names) == set(partners), set(names) ^ set(partners)
        for domain in partners:
            i = domain.removeprefix("p").removesuffix(".test")
            assert sorted(names[domain]) == [(0, domain), (1, f"a{i}.test"), (2, f"b{i}.test")], names[domain]
        assert con.execute("SELECT COUNT(*) FROM revision").fetchone() == (1,)
    finally:
        con.close()
    with SqliteStore(db) as store:  # and the store itself reads every partner back
        assert len(store.list_partners()) == len(partners)
    return len(partners)


def test_sigkill_during_cli_writes_leaves_the_database_consistent(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite3"
    rng = random.Random(int(os.environ.get("FEDGATE_CRASH_SEED", "6")))
    written = 0
    killed_with_progress = 0
    for round_ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", LOOP, str(db), str(round_ * 100000)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.35, 0.9))  # start-up is ~0.3 s; then it writes partners as fast as it can
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        assert b"error" not in err, err.decode()
        done = sum(1 for line in out.decode().splitlines() if line.startswith("added "))
        killed_with_progress += done > 0
        count = check_consistent(db)
        # Every partner the CLI reported as added is there; at most one more (committed, not yet printed).
        assert written + done <= count <= written + done + 1, (written, done, count)
        written = count
    assert killed_with_progress >= 10, "most kills should land in the middle of the writes"


def test_sigkill_of_the_cli_process_itself(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    rng = random.Random(7)
    for i in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "fedgate.cli", "--db", str(db), "partner", "new", f"p{i}.test",
             "--additional-domain", f"a{i}.test", "--additional-domain", f"b{i}.test"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if db.exists():
            check_consistent(db)
