"""Opening a Tongban SQLite database: WAL, named migrations, and refusing the future.

Each component's schema is one or more named migration sets (sqlite-utils
``Migrations``): ``log`` (the record log, :mod:`sync.record.log`), then ``node`` or ``central``.
A migration that shipped is never edited; a change is a new migration.

A database that records a migration this code does not know was written by newer
software. Opening it would risk writing rows the newer schema does not expect, so it is
refused with ``E_STORE_TOO_NEW`` before anything is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.errors import ErrorCode, StoreError

MIGRATIONS_TABLE = Migrations.migrations_table


def open_database(path: Path | str, sets: Sequence[Migrations], *, create: bool = True) -> Database:
    """Open (or create) the database at ``path`` and bring it up to date.

    Args:
        path: a file path, or ``":memory:"`` for a scratch database (verification).
        sets: the migration sets this component uses, in order.
        create: when false, a missing file is ``E_STORE_MISSING`` instead of a new store.

    Raises:
        StoreError: ``E_STORE_MISSING``, ``E_STORE_TOO_NEW`` or ``E_STORE_CORRUPT``.
    """
    memory = str(path) == ":memory:"
    if not memory and not create and not Path(path).exists():
        raise StoreError(ErrorCode.STORE_MISSING, str(path))
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        db = Database(conn)
        if not memory:
            db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA busy_timeout = 5000")
        refuse_newer(db, sets)
        for migration_set in sets:
            migration_set.apply(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(ErrorCode.STORE_CORRUPT, f"{path}: {exc}") from exc
    return db


def refuse_newer(db: Database, sets: Sequence[Migrations]) -> None:
    """Raise ``E_STORE_TOO_NEW`` if ``db`` has migrations this code does not know."""
    if MIGRATIONS_TABLE not in db.table_names():
        return
    known = {(s.name, m.name) for s in sets for m in s._migrations}
    unknown = [
        f"{row['migration_set']}/{row['name']}"
        for row in db.query(f"SELECT migration_set, name FROM {MIGRATIONS_TABLE}")
        if (row["migration_set"], row["name"]) not in known
    ]
    if unknown:
        raise StoreError(ErrorCode.STORE_TOO_NEW, "unknown migrations: " + ", ".join(sorted(unknown)))


@contextmanager
def transaction(db: Database) -> Iterator[None]:
    """One write transaction, ``BEGIN IMMEDIATE`` so writers queue instead of deadlocking.

    Nested use becomes a savepoint, so a caller's transaction and an inner step (an
    ingest inside a local action) commit or roll back together.
    """
    conn = db.conn
    if conn.in_transaction:
        name = f"sp_{id(conn)}_{_depth.get(id(conn), 0)}"
        _depth[id(conn)] = _depth.get(id(conn), 0) + 1
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        else:
            conn.execute(f"RELEASE {name}")
        finally:
            _depth[id(conn)] -= 1
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


_depth: dict[int, int] = {}


def execute_all(db: Database, statements: Sequence[str]) -> None:
    """Run DDL statements one by one inside the caller's transaction.

    (``executescript`` would commit the migration's transaction half-way.)
    """
    for statement in statements:
        db.conn.execute(statement)
