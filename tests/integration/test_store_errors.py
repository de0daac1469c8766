"""The store's error boundary on real SQLite files: each way a store can fail has its own code.

A store made busy (another connection holds the write lock past the busy timeout), a disk
that is full (SQLite's own page limit, which SQLite reports exactly as a full disk), a file
that is read-only, and a damaged file each come out of :mod:`sync.record.db` as a
:class:`core.errors.StoreError` with its code, and a failed transaction leaves the store
as it was. The same conditions at the clerk's screen, the API and the command line are in
``test_store_errors_at_the_window.py``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from core.errors import ErrorCode, StoreError
from sync.record import db as store_db
from sync.record.db import open_database, transaction
from sync.schema import log_migrations


def _store(path: Path) -> sqlite3.Connection:
    db = open_database(path, [log_migrations])
    db.conn.execute("CREATE TABLE notes (n INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    db.conn.execute("INSERT INTO notes (text) VALUES ('kept')")
    return db.conn


def _notes(path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT n, text FROM notes ORDER BY n").fetchall()
    finally:
        conn.close()


def test_a_store_held_by_another_writer_is_busy_and_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "busy.db"
    _store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        db = open_database(path, [log_migrations])
        with pytest.raises(StoreError) as caught, transaction(db):
            db.conn.execute("INSERT INTO notes (text) VALUES ('lost')")
        assert caught.value.code is ErrorCode.STORE_BUSY
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _notes(path) == [(1, "kept")]


def test_a_full_disk_is_full_and_the_transaction_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    conn = _store(path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    db = store_db.Database(conn)
    with pytest.raises(StoreError) as caught, transaction(db):
        conn.execute("INSERT INTO notes (text) VALUES ('first')")
        conn.executemany("INSERT INTO notes (text) VALUES (?)", [("x" * 4000,)] * 50)
    assert caught.value.code is ErrorCode.STORE_FULL
    conn.close()
    assert _notes(path) == [(1, "kept")]


def test_a_read_only_file_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    _store(path).close()
    conn = store_db.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(StoreError) as caught:
        conn.execute("INSERT INTO notes (text) VALUES ('lost')")
    assert caught.value.code is ErrorCode.STORE_READONLY
    conn.close()
    assert _notes(path) == [(1, "kept")]


def test_a_damaged_file_is_corrupt_at_open(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    _store(path).close()
    with path.open("r+b") as f:
        f.write(os.urandom(100))  # the header: no longer a database
    with pytest.raises(StoreError) as caught:
        open_database(path, [log_migrations])
    assert caught.value.code is ErrorCode.STORE_CORRUPT


def test_an_append_only_refusal_keeps_its_own_code(tmp_path: Path) -> None:
    conn = _store(tmp_path / "log.db")
    conn.execute(
        "INSERT INTO records (id, origin, seq, kind, kid, ts, envelope, received_at, source)"
        " VALUES (x'00', '330481', 1, 'net.genesis', x'00', 0, x'00', 0, 'test')"
    )
    with pytest.raises(StoreError) as caught:
        conn.execute("DELETE FROM records")
    assert caught.value.code is ErrorCode.STORE_APPEND_ONLY


def test_a_statement_of_this_software_the_store_refuses_is_a_fault_not_a_damaged_file(tmp_path: Path) -> None:
    conn = _store(tmp_path / "s.db")
    with pytest.raises(StoreError) as caught:
        conn.execute("SELECT * FROM no_such_table")
    assert caught.value.code is ErrorCode.STORE_FAULT
    conn.close()
    with pytest.raises(StoreError) as closed:
        conn.execute("SELECT 1")
    assert closed.value.code is ErrorCode.STORE_FAULT


def test_rows_fetched_one_by_one_come_through_the_boundary(tmp_path: Path) -> None:
    conn = _store(tmp_path / "iter.db")
    assert [row for row in conn.execute("SELECT text FROM notes")] == [("kept",)]
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (1,)


def test_the_boundary_keeps_no_memory_per_statement(tmp_path: Path) -> None:
    """Every statement runs on a cursor the connection tracks: 200,000 of them leave the
    process no bigger (a cursor made outside the connection kept 35 MB)."""

    def rss_mb() -> float:  # the process's resident size now (not its peak)
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024

    conn = store_db.connect(str(tmp_path / "m.db"))
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB)")
    conn.execute("BEGIN")
    for _ in range(20_000):  # warm up: caches and allocator arenas reach their size
        conn.execute("INSERT INTO t (b) VALUES (?)", (b"x" * 300,))
    before = rss_mb()
    for i in range(100_000):
        conn.execute("INSERT INTO t (b) VALUES (?)", (b"x" * 300,))
        conn.execute("SELECT b FROM t WHERE a = ?", (i,)).fetchone()
    conn.execute("COMMIT")
    grown_mb = rss_mb() - before
    assert grown_mb < 8, grown_mb
