"""The node's SQLite store: the record log, the projections every store keeps, and the node's own tables.

Schema changes are named migrations in the ``node`` set, applied after the ``log`` set and
before ``sync`` (:mod:`sync.schema`); a database written by newer software is refused
(``E_STORE_TOO_NEW``).

The node's own tables:

``node_state``
    small local facts that are not records (:func:`get_state`, :func:`set_state`): where
    the SMS outbox began. What the sync link knows of itself is in its ``link_state``
    table (:func:`sync.link.store.link_state`).
``clerk_secrets`` / ``sessions`` / ``login_failures``
    the clerks' password hashes, sessions and login backoff (:mod:`web.account_store`).
``device_tokens``
    the SHA-256 of each kiosk's or script's token, its roles; read and written by the
    device-token functions below, for :mod:`node.clerks`.
``papers`` / ``sms_outbox`` / ``clerk_looks``
    the window's numbered papers, the messages for residents, what each clerk has seen
    (:mod:`node.window_store`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.clock import Clock
from node.window_store import WINDOW_TABLES
from sync import projection
from sync.projection import files
from sync.record import filestore
from sync.record.db import execute_all, open_database, quick_check, transaction
from sync.record.filestore import FileStore
from sync.record.inspect import VerifyReport, verify_store
from sync.record.log import RecordLog, dense_policy_of
from sync.schema import log_migrations, sync_migrations
from web.account_store import LOGIN_FAILURE_TABLES

node_migrations = Migrations("node")


@node_migrations(name="0001_node_state")
def _node_state(db: Database) -> None:
    execute_all(
        db,
        [
            # Small local facts that are not records: when the node last synced, etc.
            "CREATE TABLE node_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ],
    )


@node_migrations(name="0002_clerk_secrets")
def _secrets(db: Database) -> None:
    execute_all(
        db,
        [
            """
            CREATE TABLE clerk_secrets (
                user TEXT PRIMARY KEY, hash BLOB NOT NULL, failed INTEGER NOT NULL DEFAULT 0,
                locked_until INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE sessions (
                digest BLOB PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL,
                created INTEGER NOT NULL, seen INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE device_tokens (
                digest BLOB PRIMARY KEY, name TEXT NOT NULL UNIQUE, roles TEXT NOT NULL,
                created INTEGER NOT NULL, active INTEGER NOT NULL, last_used INTEGER
            )
            """,
        ],
    )


@node_migrations(name="0003_login_failures")
def _login_failures(db: Database) -> None:
    # The login backoff per (user, source address) (web.account_store).
    execute_all(db, LOGIN_FAILURE_TABLES)


@node_migrations(name="0004_window")
def _window(db: Database) -> None:
    # The window's papers, the SMS outbox and what each clerk has seen (node.window_store).
    execute_all(db, WINDOW_TABLES)


MIGRATION_SETS = (log_migrations, node_migrations, sync_migrations)


class NodeStore:
    """A node's database: its record log and projections. A context manager (closes)."""

    def __init__(self, db: Database, clock: Clock, files: FileStore) -> None:
        self.db = db
        self.files = files  # the scanned pages of its cases, beside the database
        # A node holds the root's chain and its own subtree whole, other origins in part.
        self.log = RecordLog(db, clock, projection.standard(), dense=dense_policy_of(db))

    @classmethod
    def open(cls, path: Path, clock: Clock, *, create: bool = False) -> NodeStore:
        return cls(open_database(path, MIGRATION_SETS, create=create), clock, filestore.beside(path))

    def check(self) -> None:
        """The first check before a service starts on the store (:func:`quick_check`)."""
        quick_check(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def verify(path: Path, clock: Clock) -> VerifyReport:
    """Re-verify the node store at ``path`` from its signed bytes (:func:`verify_store`)."""
    report = verify_store(path, MIGRATION_SETS, clock, projection.standard())
    files.verify_files(path, report)
    return report


# -- small local facts -------------------------------------------------------------------------


def get_state(db: Database, key: str) -> str | None:
    """A small local fact (``node_state``), if set."""
    row = db.conn.execute("SELECT value FROM node_state WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


def set_state(db: Database, key: str, value: str) -> None:
    with transaction(db):
        db.conn.execute(
            "INSERT INTO node_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


# -- device tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceToken:
    """A kiosk's or script's token as the store keeps it: never the token, only its digest."""

    name: str
    roles: tuple[str, ...]
    created: int
    active: bool
    last_used: int | None


def add_device_token(db: Database, name: str, token_digest: bytes, roles: list[str], now: int) -> bool:
    """Keep a new device's token digest; False (nothing written) when ``name`` is taken."""
    with transaction(db):
        if db.conn.execute("SELECT 1 FROM device_tokens WHERE name = ?", (name,)).fetchone():
            return False
        db.conn.execute(
            "INSERT INTO device_tokens (digest, name, roles, created, active) VALUES (?, ?, ?, ?, 1)",
            (token_digest, name, json.dumps(sorted(set(roles))), now),
        )
    return True


def device_token_rows(db: Database) -> list[tuple[bytes, str, str, int, int, int | None]]:
    """Every device token as stored (digest, name, roles, created, active, last_used), to
    carry them to the same node's new store when its keys are rotated."""
    rows = db.conn.execute(
        "SELECT digest, name, roles, created, active, last_used FROM device_tokens ORDER BY name"
    ).fetchall()
    return [(bytes(d), n, r, c, a, lu) for d, n, r, c, a, lu in rows]


def put_device_token_rows(db: Database, rows: list[tuple[bytes, str, str, int, int, int | None]]) -> int:
    """Keep device tokens read by :func:`device_token_rows`; a name already held is left as
    it is. How many were added."""
    added = 0
    with transaction(db):
        for row in rows:
            cur = db.conn.execute(
                "INSERT INTO device_tokens (digest, name, roles, created, active, last_used)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                row,
            )
            added += cur.rowcount
    return added


def disable_device_token(db: Database, name: str) -> bool:
    """Disable the device ``name``'s token; False when there is no such device."""
    with transaction(db):
        cur = db.conn.execute("UPDATE device_tokens SET active = 0 WHERE name = ?", (name,))
        return cur.rowcount > 0


def device_tokens(db: Database) -> list[DeviceToken]:
    """Every device, by name."""
    rows = db.conn.execute(
        "SELECT name, roles, created, active, last_used FROM device_tokens ORDER BY name"
    ).fetchall()
    return [DeviceToken(n, tuple(json.loads(r)), c, bool(a), lu) for n, r, c, a, lu in rows]


def device_of(db: Database, token_digest: bytes) -> DeviceToken | None:
    """The device whose token has the digest ``token_digest``, active or not."""
    row = db.conn.execute(
        "SELECT name, roles, created, active, last_used FROM device_tokens WHERE digest = ?", (token_digest,)
    ).fetchone()
    if row is None:
        return None
    name, roles, created, active, last_used = row
    return DeviceToken(name, tuple(json.loads(roles)), created, bool(active), last_used)
