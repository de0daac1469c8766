"""Central's SQLite store: the record log of the whole city, central's projections, and
central's own tables.

Schema changes are named migrations in the ``central`` set, applied after the ``log`` set
and before ``sync`` (:mod:`sync.schema`); a database written by newer software is refused
(``E_STORE_TOO_NEW``). Central's own tables, and their owners:

``enrollment_requests``
    every enrollment request central has seen and what became of it (this module).
``enrollment_tokens``
    the one-time tokens central issued, one per node code: the SHA-256 of each (never the
    token), its code, when it expires, and when it was used and for which certificate
    (this module; the rules are :func:`central.authority.enroll`).
``intake_checks`` / ``central_state``
    the re-check's verdict on each intake, and how many grants and revocations it last
    took into account (this module; the rules are :mod:`central.recheck`). Its queries
    also read ``cases`` (:mod:`sync.projection.cases`) and the ``quarantined`` view
    (:mod:`sync.record.trust`).
``catalog_draft`` / ``catalog_draft_items``
    the catalog draft (:mod:`central.draft_store`).
``clerk_secrets`` / ``sessions`` / ``login_failures``
    the operators' password hashes, sessions and login backoff (:mod:`web.account_store`).
``peer_proposals``
    agreements with other cities proposed, not yet confirmed (:mod:`central.peer_store`).
``peer_links`` / ``peer_out`` / ``peer_contacts`` / ``peer_expected`` / ``peer_refusals``
    the links with other cities' centrals: where each is reached, what central owes it,
    what it delivered (:mod:`central.peer_link_store`, driven by :mod:`central.peer_link`).
``outbox`` / ``department_contacts``
    the events central owes each department and when each last called
    (:mod:`central.department_store`, whose projector the log runs).

The dashboard's and the registry's reads over several projections are
:mod:`central.report_store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from central.crossing_store import CROSSING_TABLES, CrossingProjector
from central.department_store import OUTBOX_TABLES, OutboxProjector
from central.peer_link_store import PEER_LINK_TABLES
from central.peer_store import PROPOSAL_TABLES
from core.clock import Clock
from core.errors import ErrorCode
from sync import projection
from sync.projection import files
from sync.record import filestore
from sync.record.db import execute_all, open_database, quick_check, transaction
from sync.record.filestore import FileStore
from sync.record.inspect import VerifyReport, verify_store
from sync.record.log import RecordLog
from sync.schema import log_migrations, sync_migrations
from web.account_store import ACCOUNT_TABLES, LOGIN_FAILURE_TABLES

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
            # The one catalog draft being prepared on the operator web (central.draft_store):
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


@central_migrations(name="0005_enrollment_tokens")
def _enrollment_tokens(db: Database) -> None:
    execute_all(
        db,
        [
            # One-time enrollment tokens: only their digests (central.authority.enroll).
            """
            CREATE TABLE enrollment_tokens (
                digest BLOB PRIMARY KEY,
                code TEXT NOT NULL,
                issued_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                used_at INTEGER,
                cert_id BLOB
            )
            """,
        ],
    )


@central_migrations(name="0006_login_failures")
def _login_failures(db: Database) -> None:
    # The operators' login backoff per (user, source address) (web.account_store).
    execute_all(db, LOGIN_FAILURE_TABLES)


@central_migrations(name="0007_department_outbox")
def _department_outbox(db: Database) -> None:
    # The outbox of events to departments and when each last called (central.department_store).
    execute_all(db, OUTBOX_TABLES)


@central_migrations(name="0008_peer_proposals")
def _peer_proposals(db: Database) -> None:
    # Agreements with other cities proposed and not yet confirmed (central.peer_store).
    execute_all(db, PROPOSAL_TABLES)


@central_migrations(name="0009_peer_link")
def _peer_link(db: Database) -> None:
    # The links with other cities' centrals: where, the outbox, the inbox's marks (central.peer_outbox).
    execute_all(db, PEER_LINK_TABLES)


@central_migrations(name="0010_crossing")
def _crossing(db: Database) -> None:
    # Cases that cross to another city, what of them was queued, what was admitted (central.crossing_store).
    execute_all(db, CROSSING_TABLES)


MIGRATION_SETS = (log_migrations, central_migrations, sync_migrations)

RECHECK_MARKS = {"revocations": "recheck_revocations", "grants": "recheck_grants"}
"""The ``central_state`` keys of the re-check: how many grant revocations, and grants, it
last took into account."""


@dataclass(frozen=True)
class IntakeCheck:
    """Central's verdict on one intake (a row of ``intake_checks``)."""

    case_no: str
    node: str
    item: str
    received: int
    verdict: str  # ok, stale or refused
    code: str | None
    detail: str


@dataclass(frozen=True)
class EnrollmentToken:
    """What central keeps of an enrollment token it issued (a row of ``enrollment_tokens``)."""

    code: str
    issued_at: int
    expires_at: int
    used_at: int | None


@dataclass(frozen=True)
class Unchecked:
    """An intake not checked yet: what the re-check needs of its case."""

    case_no: str
    node: str
    item: str
    mode: str
    grant_id: bytes | None
    cat: int
    received: int  # when its intake record was signed (the record's ts)
    quarantined: bool  # its intake record was signed after its node's cut-off
    intake_id: bytes


class CentralStore:
    """Central's database: the city's record log, central's projections and its own tables.

    A context manager: ``with CentralStore.open(path, clock) as store`` closes it.
    """

    def __init__(self, db: Database, clock: Clock, files: FileStore) -> None:
        self.db = db
        self.files = files  # every file of every case of the city, beside the database
        # The outbox is written in the transaction that stores each record departments see.
        self.log = RecordLog(db, clock, (*projection.standard(), OutboxProjector(), CrossingProjector()))

    @classmethod
    def open(cls, path: Path, clock: Clock, *, create: bool = False) -> CentralStore:
        return cls(open_database(path, MIGRATION_SETS, create=create), clock, filestore.beside(path))

    def check(self) -> None:
        """The first check before a service starts on the store (:func:`quick_check`)."""
        quick_check(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CentralStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- enrollment requests ----------------------------------------------------------------

    def note_request(self, request_id: bytes, code: str, outcome: str, cert_id: bytes | None) -> None:
        """Remember an enrollment request and what became of it."""
        with transaction(self.db):
            self.db.conn.execute(
                "INSERT OR REPLACE INTO enrollment_requests (request_id, code, received_at, outcome,"
                " cert_id) VALUES (?, ?, ?, ?, ?)",
                (request_id, code, self.log.clock.now(), outcome, cert_id),
            )

    # -- enrollment tokens ------------------------------------------------------------------

    def add_enrollment_token(self, digest: bytes, code: str, issued_at: int, expires_at: int) -> None:
        """Keep a token just issued for ``code``: its digest only."""
        with transaction(self.db):
            self.db.conn.execute(
                "INSERT INTO enrollment_tokens (digest, code, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                (digest, code, issued_at, expires_at),
            )

    def enrollment_token(self, digest: bytes) -> EnrollmentToken | None:
        """The token whose digest is ``digest``, if central issued it."""
        row = self.db.conn.execute(
            "SELECT code, issued_at, expires_at, used_at FROM enrollment_tokens WHERE digest = ?", (digest,)
        ).fetchone()
        return EnrollmentToken(*row) if row else None

    def use_enrollment_token(self, digest: bytes, now: int, cert_id: bytes) -> bool:
        """Mark the token used for ``cert_id``, in the caller's transaction (the one that
        appends the certificate); False when it was used meanwhile."""
        used = self.db.conn.execute(
            "UPDATE enrollment_tokens SET used_at = ?, cert_id = ? WHERE digest = ? AND used_at IS NULL",
            (now, cert_id, digest),
        )
        return used.rowcount == 1

    # -- the re-check of intakes (central.recheck) ------------------------------------------

    def recheck_seen(self, what: str) -> int | None:
        """How many grant ``revocations`` (or ``grants``) the re-check last took into
        account; None before its first run."""
        row = self.db.conn.execute(
            "SELECT value FROM central_state WHERE key = ?", (RECHECK_MARKS[what],)
        ).fetchone()
        return int(row[0]) if row else None

    def forget_checks_since(self, since: int, revocations: int) -> None:
        """Forget the verdicts on intakes received at or after ``since`` (the effective
        time of a revocation that arrived), now that ``revocations`` are taken into account."""
        with transaction(self.db):
            self.db.conn.execute("DELETE FROM intake_checks WHERE received >= ?", (since,))
            self._mark("revocations", revocations)

    def forget_outdated_checks(self, grants: int) -> None:
        """Forget the verdicts that records arrived since may change.

        An intake signed after a certificate cut-off learnt since (``cert.revoke`` may also
        lower a cut-off) is refused now whatever its verdict was; and when the number of
        ``grants`` held moved, a chain that did not hold may hold now (a grant of it had
        not reached central yet).
        """
        conn = self.db.conn
        with transaction(self.db):
            conn.execute(
                "DELETE FROM intake_checks WHERE coalesce(code, '') != ? AND case_no IN"
                " (SELECT c.case_no FROM quarantined q JOIN cases c ON c.intake_id = q.id)",
                (ErrorCode.CERT_REVOKED.value,),
            )
            if self.recheck_seen("grants") != grants:
                conn.execute(
                    "DELETE FROM intake_checks WHERE code = ?", (ErrorCode.GRANT_CHAIN_BROKEN.value,)
                )
                self._mark("grants", grants)

    def _mark(self, what: str, value: int) -> None:
        self.db.conn.execute(
            "INSERT INTO central_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (RECHECK_MARKS[what], str(value)),
        )

    def unchecked_intakes(self, limit: int) -> list[Unchecked]:
        """Up to ``limit`` cases whose intake has no verdict yet."""
        rows = self.db.conn.execute(
            "SELECT c.case_no, c.node, c.item, c.mode, c.grant_id, c.cat, c.received,"
            " EXISTS (SELECT 1 FROM quarantined q WHERE q.id = c.intake_id), c.intake_id"
            " FROM cases c LEFT JOIN intake_checks k ON k.case_no = c.case_no"
            " WHERE k.case_no IS NULL LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            Unchecked(
                case_no, node, item, mode, None if grant is None else bytes(grant), cat, at, bool(q),
                bytes(intake_id),
            )
            for case_no, node, item, mode, grant, cat, at, q, intake_id in rows
        ]  # fmt: skip

    def record_checks(self, checks: Sequence[IntakeCheck]) -> None:
        """Keep these verdicts (replacing any earlier verdict on the same case)."""
        with transaction(self.db):
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO intake_checks (case_no, node, item, received, verdict, code,"
                " detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [astuple(check) for check in checks],
            )

    def flagged_intakes(self, limit: int) -> list[IntakeCheck]:
        """The intakes with a verdict other than ``ok``, newest first."""
        rows = self.db.conn.execute(
            "SELECT case_no, node, item, received, verdict, code, detail FROM intake_checks"
            " WHERE verdict != 'ok' ORDER BY received DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [IntakeCheck(*row) for row in rows]

    def check_counts(self) -> dict[str, int]:
        """How many intakes have each verdict, and how many are ``pending`` (no verdict yet)."""
        conn = self.db.conn
        counts = dict(conn.execute("SELECT verdict, count(*) FROM intake_checks GROUP BY verdict"))
        pending = conn.execute(
            "SELECT count(*) FROM cases c LEFT JOIN intake_checks k ON k.case_no = c.case_no"
            " WHERE k.case_no IS NULL"
        ).fetchone()
        return {str(verdict): int(n) for verdict, n in counts.items()} | {"pending": int(pending[0])}


def verify(path: Path, clock: Clock) -> VerifyReport:
    """Re-verify central's store at ``path`` from its signed bytes (:func:`verify_store`)."""
    report = verify_store(path, MIGRATION_SETS, clock, projection.standard())
    files.verify_files(path, report)
    return report
