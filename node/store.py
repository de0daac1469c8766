"""The node's SQLite store: the record log plus the node's own projections.

Only this module (and the log it wraps) touches the node's database. Schema changes are
named migrations in the ``node`` set, applied after the ``log`` set; a database written by
newer software is refused (``E_STORE_TOO_NEW``).
"""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.clock import Clock
from node.clerks import add_clerk_migrations
from sync.calendars import CalendarProjector
from sync.db import execute_all, open_database
from sync.link_schema import sync_migrations
from sync.log import RecordLog, dense_policy_of
from sync.log_schema import log_migrations
from sync.status import StatusProjector

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


add_clerk_migrations(node_migrations)

MIGRATION_SETS = (log_migrations, node_migrations, sync_migrations)


class NodeStore:
    """A node's database: its record log and projections."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        # A node holds the root's chain and its own subtree whole, other origins in part.
        self.log = RecordLog(db, clock, (CalendarProjector(), StatusProjector()), dense=dense_policy_of(db))

    @classmethod
    def open(cls, path: Path, clock: Clock, *, create: bool = False) -> NodeStore:
        return cls(open_database(path, MIGRATION_SETS, create=create), clock)

    def close(self) -> None:
        self.db.close()
