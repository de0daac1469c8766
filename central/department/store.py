"""A department's SQLite store: its record log, the projections every store keeps, its own tables.

The log holds central's chain whole (every certificate, revocation and catalog release, so
each record is verified as any store verifies it), the department's own records whole, and
of every other origin the records central sent it: the intakes and steps of the cases the
department decides. The cases are the cases projection's (:mod:`sync.projection.cases`),
replayed by the same state machine as at every node.

Schema changes are named migrations in the ``department`` set, after the ``log`` set
(:mod:`sync.schema`). The department's own tables:

``clerk_secrets`` / ``sessions``
    the desk accounts' password hashes, login backoff and sessions (:mod:`web.account_store`).
``inbox``
    one row per event received from central, by record id: its outbox number, what ingest
    made of it and how many times it was delivered (a redelivery is counted, never applied
    again). Written in the transaction that ingests the record (:meth:`DepartmentStore.receive`).
``sent``
    central's reply to each of the department's own records handed over by RPC, by seq:
    appended (or held already), held, or refused with its code.

The files of the cases (the scans the windows took in, the department's decision letters)
are in the department's file store beside the database (:mod:`sync.record.filestore`),
their bookkeeping in the log set's file tables (:mod:`sync.projection.files`):
:mod:`central.department.files`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.clock import Clock
from sync import projection
from sync.projection import files
from sync.record import filestore
from sync.record.db import execute_all, open_database, quick_check, transaction
from sync.record.filestore import FileStore
from sync.record.inspect import VerifyReport, verify_store
from sync.record.log import RecordLog, dense_policy_of
from sync.record.outcome import Outcome
from sync.schema import log_migrations
from web.account_store import ACCOUNT_TABLES, LOGIN_FAILURE_TABLES

department_migrations = Migrations("department")


@department_migrations(name="0001_accounts")
def _accounts(db: Database) -> None:
    execute_all(db, [*ACCOUNT_TABLES, *LOGIN_FAILURE_TABLES])


@department_migrations(name="0002_inbox")
def _inbox(db: Database) -> None:
    execute_all(
        db,
        [
            """
            CREATE TABLE inbox (
                record_id BLOB PRIMARY KEY,
                seq INTEGER NOT NULL,
                kind TEXT NOT NULL,
                outcome TEXT NOT NULL,
                code TEXT,
                first_at INTEGER NOT NULL,
                last_at INTEGER NOT NULL,
                deliveries INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE sent (
                seq INTEGER PRIMARY KEY,
                status TEXT NOT NULL,
                code TEXT,
                detail TEXT NOT NULL,
                at INTEGER NOT NULL
            )
            """,
        ],
    )


MIGRATION_SETS = (log_migrations, department_migrations)


@dataclass(frozen=True)
class InboxCounts:
    """What arrived from central: distinct records, deliveries, and the highest outbox number."""

    records: int
    deliveries: int
    last_seq: int


@dataclass(frozen=True)
class SentCounts:
    """The department's own records and how far central holds them."""

    own: int  # the head of the department's chain
    delivered: int  # the highest seq central appended (or held already)
    refused: tuple[tuple[int, str], ...]  # (seq, code) central refused, oldest first


class DepartmentStore:
    """A department's database. A context manager: ``with DepartmentStore.open(...) as store``."""

    def __init__(self, db: Database, clock: Clock, files: FileStore) -> None:
        self.db = db
        self.files = files  # the files of its cases, beside the database
        # Central's chain and the department's own whole, the cases' records in part.
        self.log = RecordLog(db, clock, projection.standard(), dense=dense_policy_of(db))

    @classmethod
    def open(cls, path: Path, clock: Clock, *, create: bool = False) -> DepartmentStore:
        return cls(open_database(path, MIGRATION_SETS, create=create), clock, filestore.beside(path))

    def check(self) -> None:
        """The first check before a service starts on the store (:func:`quick_check`)."""
        quick_check(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> DepartmentStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def receive(self, record_id: bytes, seq: int, kind: str, envelope: bytes) -> Outcome:
        """Ingest one event's record and note its delivery, in one transaction.

        A record held already is a duplicate: its delivery is counted and nothing else
        changes. A refused record is kept in ``rejected`` as everywhere; its event is done.
        """
        now = self.log.clock.now()
        with transaction(self.db):
            outcome = self.log.ingest(envelope, "central")
            code = outcome.code.value if outcome.code is not None else None
            self.db.conn.execute(
                "INSERT INTO inbox (record_id, seq, kind, outcome, code, first_at, last_at, deliveries)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (record_id) DO UPDATE SET"
                " deliveries = deliveries + 1, last_at = excluded.last_at",
                (record_id, seq, kind, outcome.status.value, code, now, now),
            )
        return outcome

    def inbox_counts(self) -> InboxCounts:
        row = self.db.conn.execute(
            "SELECT count(*), coalesce(sum(deliveries), 0), coalesce(max(seq), 0) FROM inbox"
        ).fetchone()
        return InboxCounts(int(row[0]), int(row[1]), int(row[2]))

    def note_reply(self, seq: int, status: str, code: str, detail: str) -> None:
        """Central's reply to the department's record ``seq``."""
        with transaction(self.db):
            self.db.conn.execute(
                "INSERT INTO sent (seq, status, code, detail, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (seq) DO UPDATE SET status = excluded.status, code = excluded.code,"
                " detail = excluded.detail, at = excluded.at",
                (seq, status, code or None, detail, self.log.clock.now()),
            )

    def sent_counts(self, code: str) -> SentCounts:
        head = self.log.head(code)
        delivered = self.db.conn.execute(
            "SELECT coalesce(max(seq), 0) FROM sent WHERE status = 'appended'"
        ).fetchone()[0]
        refused = self.db.conn.execute(
            "SELECT seq, code FROM sent WHERE status = 'refused' ORDER BY seq"
        ).fetchall()
        return SentCounts(
            head.seq if head else 0, int(delivered), tuple((int(s), str(c)) for s, c in refused)
        )

    def redelivered(self) -> int:
        """How many records arrived more than once."""
        return int(self.db.conn.execute("SELECT count(*) FROM inbox WHERE deliveries > 1").fetchone()[0])

    def applied(self) -> dict[str, int]:
        """How many events' records each outcome had (appended, held, rejected; a duplicate
        delivery of a record received before keeps its first outcome)."""
        rows = self.db.conn.execute("SELECT outcome, count(*) FROM inbox GROUP BY outcome")
        return {str(outcome): int(n) for outcome, n in rows}


def verify(path: Path, clock: Clock) -> VerifyReport:
    """Re-verify the department store at ``path`` from its signed bytes (:func:`verify_store`)."""
    report = verify_store(path, MIGRATION_SETS, clock, projection.standard())
    files.verify_files(path, report)
    return report
