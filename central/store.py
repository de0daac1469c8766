"""Central's SQLite store: the record log of the whole city plus central's projections.

Only this module (and the log it wraps, the operators' accounts of :mod:`web.accounts` and
the catalog draft of :mod:`central.drafts`) touches central's database. Schema changes are
named migrations in the ``central`` set, applied after the ``log`` set; a database written
by newer software is refused (``E_STORE_TOO_NEW``).
"""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.clock import Clock
from sync import projection
from sync.record.db import execute_all, open_database
from sync.record.inspect import VerifyReport, verify_store
from sync.record.log import RecordLog
from sync.schema import log_migrations, sync_migrations
from web.accounts import ACCOUNT_TABLES

central_migrations = Migrations("central")


@central_migrations(name="0001_enrollment_requests")
def _enrollment_requests(db: Database) -> None:
    execute_all(
        db,
        [
            # Every enrollment request central has seen, accepted or refused, for audit.
            """
            CREATE TABLE enrollment_requests (
                request_id BLOB PRIMARY KEY,
                code TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                cert_id BLOB
            )
            """,
        ],
    )


@central_migrations(name="0002_accounts")
def _accounts(db: Database) -> None:
    # Operators' password hashes, login backoff and sessions (web.accounts); the accounts
    # themselves are clerk.set records in the log.
    execute_all(db, ACCOUNT_TABLES)


@central_migrations(name="0003_catalog_draft")
def _catalog_draft(db: Database) -> None:
    execute_all(
        db,
        [
            # The one catalog draft being prepared on the operator web (central.drafts):
            # not a record until it is published as a catalog release.
            """
            CREATE TABLE catalog_draft (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                base_version INTEGER,
                source TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                created_by TEXT NOT NULL,
                changed_at INTEGER NOT NULL,
                changed_by TEXT NOT NULL
            )
            """,
            "CREATE TABLE catalog_draft_items (code TEXT PRIMARY KEY, body TEXT NOT NULL)",
        ],
    )


@central_migrations(name="0004_intake_checks")
def _intake_checks(db: Database) -> None:
    execute_all(
        db,
        [
            # Central's re-check of every intake against the chain at its intake time
            # (central.recheck): derived from the log, rebuilt by deleting the rows.
            """
            CREATE TABLE intake_checks (
                case_no TEXT PRIMARY KEY,
                node TEXT NOT NULL,
                item TEXT NOT NULL,
                received INTEGER NOT NULL,
                verdict TEXT NOT NULL,
                code TEXT,
                detail TEXT NOT NULL
            )
            """,
            "CREATE INDEX intake_checks_verdict ON intake_checks (verdict, received)",
            "CREATE TABLE central_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ],
    )


MIGRATION_SETS = (log_migrations, central_migrations, sync_migrations)


class CentralStore:
    """Central's database: the city's record log and central's projections."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.log = RecordLog(db, clock, projection.standard())

    @classmethod
    def open(cls, path: Path, clock: Clock, *, create: bool = False) -> CentralStore:
        return cls(open_database(path, MIGRATION_SETS, create=create), clock)

    def note_request(self, request_id: bytes, code: str, outcome: str, cert_id: bytes | None) -> None:
        """Remember an enrollment request and what became of it."""
        self.db.conn.execute(
            "INSERT OR REPLACE INTO enrollment_requests (request_id, code, received_at, outcome, cert_id)"
            " VALUES (?, ?, ?, ?, ?)",
            (request_id, code, self.log.clock.now(), outcome, cert_id),
        )

    def unrevoked_certs(self, code: str) -> list[dict[str, object]]:
        """Certificates of ``code`` that are not revoked, expired or not: their keys still sign."""
        rows = self.db.conn.execute(
            "SELECT c.cert_id, c.tier, c.kid FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id"
            " WHERE c.code = ? AND r.cert_id IS NULL",
            (code,),
        ).fetchall()
        return [{"cert_id": r[0], "tier": r[1], "kid": r[2]} for r in rows]

    def live_certs(self, code: str, now: int) -> list[dict[str, object]]:
        """Certificates of ``code`` that are unrevoked and unexpired at ``now``."""
        rows = self.db.conn.execute(
            "SELECT c.cert_id, c.tier, c.kid FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id"
            " WHERE c.code = ? AND r.cert_id IS NULL AND c.exp > ?",
            (code, now),
        ).fetchall()
        return [{"cert_id": r[0], "tier": r[1], "kid": r[2]} for r in rows]

    def close(self) -> None:
        self.db.close()


def verify(path: Path, clock: Clock) -> VerifyReport:
    """Re-verify central's store at ``path`` from its signed bytes (:func:`verify_store`)."""
    return verify_store(path, MIGRATION_SETS, clock, projection.standard())
