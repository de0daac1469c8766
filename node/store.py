"""The node's SQLite store: the record log, the projections every store keeps, and the node's own tables.

Schema changes are named migrations in the ``node`` set, applied after the ``log`` set and
before ``sync`` (:mod:`sync.schema`); a database written by newer software is refused
(``E_STORE_TOO_NEW``).

The node's own tables:

``node_state``
    small local facts that are not records. Written by no current code: what the sync
    link knows of itself is in its ``link_state`` table (:func:`sync.link.store.link_state`).
``clerk_secrets`` / ``sessions``
    the clerks' password hashes, login backoff and sessions (:mod:`web.account_store`).
``device_tokens``
    the SHA-256 of each kiosk's or script's token, its roles (:mod:`node.clerks`).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.clock import Clock
from sync import projection
from sync.record.db import execute_all, open_database
from sync.record.inspect import VerifyReport, verify_store
from sync.record.log import RecordLog, dense_policy_of
from sync.schema import log_migrations, sync_migrations

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


MIGRATION_SETS = (log_migrations, node_migrations, sync_migrations)


class NodeStore:
    """A node's database: its record log and projections. A context manager (closes)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        # A node holds the root's chain and its own subtree whole, other origins in part.
        self.log = RecordLog(db, clock, projection.standard(), dense=dense_policy_of(db))

    @classmethod
    def open(cls, path: Path, clock: Clock, *, create: bool = False) -> NodeStore:
        return cls(open_database(path, MIGRATION_SETS, create=create), clock)

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
    return verify_store(path, MIGRATION_SETS, clock, projection.standard())
