"""The record log's tables, as the ``log`` migration set.

``records`` is append-only (triggers refuse update and delete); ``rejected``, ``held``
and ``forks`` keep everything ingest refused, parked or found as evidence; ``meta``
holds the pinned trust anchor. The projection tables every store shares are added by
:mod:`sync.projections`. Never edit a migration that shipped: add a new one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from sync.calendars import add_calendar_migrations
from sync.case_projection import add_case_migrations
from sync.central_keys import add_central_key_migrations
from sync.db import execute_all
from sync.projections import add_projection_migrations
from sync.status import add_status_migrations

log_migrations = Migrations("log")


@log_migrations(name="0001_records")
def _records(db: Database) -> None:
    execute_all(
        db,
        [
            """
            CREATE TABLE records (
                arrival INTEGER PRIMARY KEY AUTOINCREMENT,
                id BLOB NOT NULL UNIQUE,
                origin TEXT NOT NULL,
                seq INTEGER NOT NULL,
                kind TEXT NOT NULL,
                kid BLOB NOT NULL,
                ts INTEGER NOT NULL,
                actor TEXT,
                envelope BLOB NOT NULL,
                received_at INTEGER NOT NULL,
                source TEXT NOT NULL,
                UNIQUE (origin, seq)
            )
            """,
            "CREATE INDEX records_kind ON records (kind, arrival)",
            """
            CREATE TRIGGER records_no_update BEFORE UPDATE ON records
            BEGIN SELECT RAISE(ABORT, 'E_STORE_APPEND_ONLY: records are append-only'); END
            """,
            """
            CREATE TRIGGER records_no_delete BEFORE DELETE ON records
            BEGIN SELECT RAISE(ABORT, 'E_STORE_APPEND_ONLY: records are append-only'); END
            """,
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
            """
            CREATE TABLE rejected (
                n INTEGER PRIMARY KEY AUTOINCREMENT,
                digest BLOB NOT NULL,
                code TEXT NOT NULL,
                reason TEXT NOT NULL,
                origin TEXT,
                seq INTEGER,
                kind TEXT,
                record_id BLOB,
                size INTEGER NOT NULL,
                envelope BLOB NOT NULL,
                source TEXT NOT NULL,
                first_at INTEGER NOT NULL,
                last_at INTEGER NOT NULL,
                times INTEGER NOT NULL DEFAULT 1,
                UNIQUE (digest, code)
            )
            """,
            """
            CREATE TABLE held (
                digest BLOB PRIMARY KEY,
                id BLOB NOT NULL,
                origin TEXT NOT NULL,
                seq INTEGER NOT NULL,
                code TEXT NOT NULL,
                envelope BLOB NOT NULL,
                received_at INTEGER NOT NULL,
                source TEXT NOT NULL
            )
            """,
            "CREATE INDEX held_origin ON held (origin, seq)",
            """
            CREATE TABLE forks (
                n INTEGER PRIMARY KEY AUTOINCREMENT,
                origin TEXT NOT NULL,
                seq INTEGER NOT NULL,
                held_id BLOB NOT NULL,
                other_id BLOB NOT NULL UNIQUE,
                other_envelope BLOB NOT NULL,
                detected_at INTEGER NOT NULL,
                source TEXT NOT NULL
            )
            """,
        ],
    )


add_projection_migrations(log_migrations)


@log_migrations(name="0003_quarantine")
def _quarantine(db: Database) -> None:
    execute_all(
        db,
        [
            # Records signed with a key after its revocation's cut-off that arrived before
            # the revocation did. They stay in the append-only log as evidence; every
            # projection that acts on records must leave them out.
            """
            CREATE VIEW quarantined AS
            SELECT r.arrival, r.id, r.origin, r.seq, r.kind, v.last_good_seq
            FROM records r
            JOIN certs c ON c.code = r.origin AND c.kid = r.kid
            JOIN revocations v ON v.cert_id = c.cert_id
            WHERE r.seq > v.last_good_seq
            """,
        ],
    )


add_case_migrations(log_migrations)
add_central_key_migrations(log_migrations)
add_calendar_migrations(log_migrations)
add_status_migrations(log_migrations)


@log_migrations(name="0007_quarantine_from_revocations")
def _quarantine_from_revocations(db: Database) -> None:
    execute_all(
        db,
        [
            # The same rows as 0003's view, found from the few revocations through the
            # (origin, seq) index instead of by a scan of every record: readers such as
            # central's dashboard leave quarantined records out of every figure.
            "DROP VIEW quarantined",
            """
            CREATE VIEW quarantined AS
            SELECT r.arrival, r.id, r.origin, r.seq, r.kind, v.last_good_seq
            FROM revocations v
            CROSS JOIN certs c
            CROSS JOIN records r
            WHERE c.cert_id = v.cert_id AND r.origin = c.code AND r.kid = c.kid
            AND r.seq > v.last_good_seq
            """,
        ],
    )
