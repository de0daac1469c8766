"""Opening a Tongban SQLite database: WAL, named migrations, refusing the future, and the
one boundary where SQLite's errors become the store's.

Each component's schema is one or more named migration sets (sqlite-utils
``Migrations``): ``log`` (the record log, :mod:`sync.record.log`), then ``node`` or ``central``.
A migration that shipped is never edited; a change is a new migration.

A database that records a migration this code does not know was written by newer
software. Opening it would risk writing rows the newer schema does not expect, so it is
refused with ``E_STORE_TOO_NEW`` before anything is written.

**The error boundary.** Every connection this module makes is a :class:`GuardedConnection`:
a ``sqlite3`` error raised by any statement, fetch or commit on it comes out as a
:class:`core.errors.StoreError` whose code says what an operator can do about it
(:func:`store_error`): the store is busy (another writer held the lock past the busy
timeout), the disk is full, the file is read-only, the file is damaged, the disk failed, a
write conflicted with what is stored, or this software asked something the store refused.
Nothing above this module catches ``sqlite3`` errors; a failed statement inside
:func:`transaction` rolls the whole transaction back, so nothing stored changes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.errors import ErrorCode, StoreError, error

MIGRATIONS_TABLE = Migrations.migrations_table


def open_database(path: Path | str, sets: Sequence[Migrations], *, create: bool = True) -> Database:
    """Open (or create) the database at ``path`` and bring it up to date.

    Args:
        path: a file path, or ``":memory:"`` for a scratch database (verification).
        sets: the migration sets this component uses, in order.
        create: when false, a missing file is ``E_STORE_MISSING`` instead of a new store.

    Raises:
        StoreError: ``E_STORE_MISSING``, ``E_STORE_TOO_NEW``, or what :func:`store_error`
            makes of SQLite's refusal (a damaged file is ``E_STORE_CORRUPT``).
    """
    memory = str(path) == ":memory:"
    if not memory and not create and not Path(path).exists():
        raise StoreError(ErrorCode.STORE_MISSING, str(path))
    if not memory and Path(path).exists() and not writable(Path(path)):
        return _open_read_only(Path(path), sets)
    conn = connect(str(path))
    try:
        db = Database(conn)
        if not memory:
            db.enable_wal()
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        refuse_newer(db, sets)
        for migration_set in sets:
            migration_set.apply(db)
    except sqlite3.Error as exc:  # sqlite-utils' own statements, on the raw connection
        conn.close()
        raise store_error(exc, str(path)) from exc
    except BaseException:
        conn.close()
        raise
    return db


def writable(path: Path) -> bool:
    """Whether the store at ``path`` can be written: its file and its directory (for the
    journal), on a file system mounted for writing."""
    try:
        read_only_fs = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_fs = False
    return not read_only_fs and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_read_only(path: Path, sets: Sequence[Migrations]) -> Database:
    """A store that cannot be written, opened so that it can still be read: every write is
    ``E_STORE_READONLY``. Refused when what it holds cannot be read whole (changes still in
    its write-ahead log) or when it needs a migration."""
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            ErrorCode.STORE_READONLY, f"{path}: its newest changes are in {wal.name}, which cannot be read"
        )
    conn = connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    db = Database(conn)
    try:
        applied = {
            (row[0], row[1]) for row in conn.execute(f"SELECT migration_set, name FROM {MIGRATIONS_TABLE}")
        }
    except StoreError:
        conn.close()
        raise
    missing = [f"{s.name}/{m.name}" for s in sets for m in s._migrations if (s.name, m.name) not in applied]
    if missing:
        conn.close()
        raise StoreError(ErrorCode.STORE_READONLY, f"{path} needs migrations it cannot take: {missing[0]} …")
    refuse_newer(db, sets)
    return db


BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another writer's lock before the store is busy."""


def connect(target: str, *, uri: bool = False) -> GuardedConnection:
    """A :class:`GuardedConnection` to ``target`` (autocommit: :func:`transaction` begins)."""
    try:
        conn = sqlite3.connect(
            target, check_same_thread=False, isolation_level=None, uri=uri, factory=GuardedConnection
        )
    except sqlite3.Error as exc:
        raise store_error(exc, target) from exc
    assert isinstance(conn, GuardedConnection)
    return conn


def open_readonly(path: Path) -> GuardedConnection:
    """Open a store for reading only; a missing file is ``E_STORE_MISSING``."""
    if not Path(path).is_file():
        raise StoreError(ErrorCode.STORE_MISSING, str(path))
    return connect(f"file:{path}?mode=ro", uri=True)


def quick_check(db: Database) -> None:
    """The first check before a service starts on a store: SQLite's ``quick_check`` of
    every page and index; ``E_STORE_CORRUPT`` with the first faults it found."""
    found = [str(row[0]) for row in db.conn.execute("PRAGMA quick_check(5)").fetchall()]
    if found != ["ok"]:
        raise StoreError(ErrorCode.STORE_CORRUPT, "; ".join(found)[:300])


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
    ingest inside a local action) commit or roll back together. After a disk-full or I/O
    error SQLite may have rolled the transaction back itself; the rollback here then has
    nothing left to undo, and the original error is what the caller sees.
    """
    conn = db.conn
    if conn.in_transaction:
        name = f"sp_{id(conn)}_{_depth.get(id(conn), 0)}"
        _depth[id(conn)] = _depth.get(id(conn), 0) + 1
        pending = _after.setdefault(id(conn), [])
        mark = len(pending)
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
            conn.execute(f"RELEASE {name}")
        except BaseException:
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            del pending[mark:]  # what the undone part asked for is undone with it
            raise
        finally:
            _depth[id(conn)] -= 1
        return
    _after[id(conn)] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        _after.pop(id(conn), None)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    for action in _after.pop(id(conn), []):
        action()


_depth: dict[int, int] = {}
_after: dict[int, list[Callable[[], None]]] = {}


def after_commit(db: Database, action: Callable[[], None]) -> None:
    """Run ``action`` once the write transaction in progress on ``db`` has committed (at
    once when none is): never when it rolls back, nor when the savepoint it was asked in
    does. Asked twice in one transaction, it runs once. ``action`` must not raise.

    For what must follow a commit and cannot be part of it: a file outside the store that
    records what the store has committed (:mod:`sync.record.watermark`).
    """
    conn = db.conn
    if not conn.in_transaction:
        action()
        return
    pending = _after.setdefault(id(conn), [])
    if action not in pending:
        pending.append(action)


def copy_database(source: Database, target: Path) -> None:
    """A consistent copy of the open store ``source`` in a new file ``target`` (SQLite's
    backup API: it reads through the write-ahead log, and other connections may go on
    writing meanwhile). ``target`` must not exist; a failure leaves no file behind."""
    if target.exists():
        raise StoreError(ErrorCode.STORE_CONFLICT, f"{target} exists already")
    try:
        copy = sqlite3.connect(str(target))
        try:
            source.conn.backup(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        raise store_error(exc, str(target)) from exc


def execute_all(db: Database, statements: Sequence[str]) -> None:
    """Run DDL statements one by one inside the caller's transaction.

    (``executescript`` would commit the migration's transaction half-way.)
    """
    for statement in statements:
        db.conn.execute(statement)


# -- the boundary ---------------------------------------------------------------------------

_BY_PRIMARY: dict[str, ErrorCode] = {
    "SQLITE_BUSY": ErrorCode.STORE_BUSY,
    "SQLITE_LOCKED": ErrorCode.STORE_BUSY,
    "SQLITE_FULL": ErrorCode.STORE_FULL,
    "SQLITE_READONLY": ErrorCode.STORE_READONLY,
    "SQLITE_PERM": ErrorCode.STORE_READONLY,
    "SQLITE_AUTH": ErrorCode.STORE_READONLY,
    "SQLITE_CORRUPT": ErrorCode.STORE_CORRUPT,
    "SQLITE_NOTADB": ErrorCode.STORE_CORRUPT,
    "SQLITE_IOERR": ErrorCode.STORE_IO,
    "SQLITE_CANTOPEN": ErrorCode.STORE_IO,
    "SQLITE_NOMEM": ErrorCode.STORE_IO,
    "SQLITE_PROTOCOL": ErrorCode.STORE_BUSY,
    "SQLITE_CONSTRAINT": ErrorCode.STORE_CONFLICT,
}


def store_error(exc: sqlite3.Error, where: str = "") -> StoreError:
    """The :class:`StoreError` for what SQLite said, telling apart what an operator can act
    on. By SQLite's own result code (``SQLITE_IOERR_WRITE`` is an ``SQLITE_IOERR``), never
    by the wording of its message, except for the append-only triggers' own code."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if text.startswith(ErrorCode.STORE_APPEND_ONLY.value):
        code = ErrorCode.STORE_APPEND_ONLY
    elif isinstance(exc, sqlite3.ProgrammingError) or not name:
        code = ErrorCode.STORE_FAULT  # a closed connection, a bad parameter: this software's
    else:
        primary = name if name in _BY_PRIMARY else "_".join(name.split("_")[:2])
        code = _BY_PRIMARY.get(primary, ErrorCode.STORE_FAULT)
    detail = f"{where}: {text}" if where else text
    made = error(code, detail[:300])
    assert isinstance(made, StoreError)  # every code above is a store's
    return made


class GuardedCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise :class:`StoreError` (:func:`store_error`)."""

    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> GuardedCursor:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        return self

    def executescript(self, sql_script: str, /) -> GuardedCursor:
        try:
            super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(size)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def __iter__(self) -> GuardedCursor:
        return self

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc


class GuardedConnection(sqlite3.Connection):
    """A connection whose every statement runs on a :class:`GuardedCursor`."""

    def cursor(self, factory: Any = GuardedCursor) -> Any:
        try:
            return super().cursor(factory)
        except sqlite3.Error as exc:  # a closed connection
            raise store_error(exc) from exc

    # Through cursor(), never GuardedCursor(self): a cursor made directly is not one the
    # connection tracks, and each kept its statement's memory (35 MB over 400,000 statements).
    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        cursor: GuardedCursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> GuardedCursor:
        cursor: GuardedCursor = self.cursor()
        return cursor.executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> GuardedCursor:
        cursor: GuardedCursor = self.cursor()
        return cursor.executescript(sql_script)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def rollback(self) -> None:
        try:
            super().rollback()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
