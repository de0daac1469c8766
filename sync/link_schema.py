"""The tables of sync links, as the ``sync`` migration set (after ``log``).

``link_checkpoints``
    per child certificate and direction, the arrival index of the *parent's* scan that the
    child has committed (``down``) and of the *child's* scan the parent has committed
    (``up``). Both live at the parent, in the same database as what they describe, so a
    parent restored from an older copy rewinds its checkpoints together with its records.
``link_peers``
    per child certificate: its heads as last reported, when it was last seen, the
    highest seq of its log a receipt was signed for.
``link_rejections``
    per peer and error code, how many records or messages were refused.
``link_state``
    the child's own view of its link: last success, last error, what waits.

Never edit a migration that shipped: add a new one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from sync.db import execute_all

sync_migrations = Migrations("sync")


@sync_migrations(name="0001_links")
def _links(db: Database) -> None:
    execute_all(
        db,
        [
            """
            CREATE TABLE link_checkpoints (
                peer TEXT NOT NULL,
                cert BLOB NOT NULL,
                direction TEXT NOT NULL CHECK (direction IN ('up', 'down')),
                arrival INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (peer, cert, direction)
            )
            """,
            """
            CREATE TABLE link_peers (
                peer TEXT NOT NULL,
                cert BLOB NOT NULL,
                heads BLOB NOT NULL,
                last_seen INTEGER NOT NULL,
                receipt_seq INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (peer, cert)
            )
            """,
            """
            CREATE TABLE link_rejections (
                peer TEXT NOT NULL,
                code TEXT NOT NULL,
                times INTEGER NOT NULL,
                last_at INTEGER NOT NULL,
                PRIMARY KEY (peer, code)
            )
            """,
            "CREATE TABLE link_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ],
    )
