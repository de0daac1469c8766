"""Central's side of the department link in its store: the transactional outbox and contacts.

Tables (central's migration ``0007_department_outbox`` creates them):

``outbox``
    one row per (department, record) central must publish to it, numbered in the order
    the records were stored, with when the broker confirmed it (NULL: not yet). The row
    is written by :class:`OutboxProjector` inside the transaction that stores the record,
    so a record is in the outbox exactly when it is in the log: a crash between storing
    and publishing loses nothing, and the publisher marks a row only after the broker
    confirmed its event (:mod:`central.department_link`).
``department_contacts``
    when central last heard from each department over RPC, and the head of its chain
    central held then.

What a department must see: every record of central's own chain (certificates,
revocations, catalog and calendar releases, heartbeats …, so that its store verifies
everything as every store does), and every record of a case it decides (the intake, its
forward, a supplement supplied, a withdrawal, a rating) that it did not sign itself. Only
departments with an unrevoked certificate get rows. A case's own records come after its
intake in its node's chain, which central holds whole, so the case's decider is known when
each of them is stored. When a department is certified again (its machine replaced), the
records of its open cases are queued for it again: the new machine's store holds none.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.admin import is_department
from sync.projection import case_queries
from sync.projection.departments import departments
from sync.record import kinds
from sync.record.db import transaction
from sync.record.envelope import Record
from sync.record.log import anchor_of


class OutboxProjector:
    """Writes the outbox rows of each record stored at central (see the module docstring).

    It owns no projection table: the outbox is a queue written in the ingest transaction,
    not a view of the log. A rebuild must not clear it (published rows would be sent
    again), and replaying the log adds nothing (one row per department and record).
    """

    kinds = frozenset(kinds.KINDS)
    tables: tuple[str, ...] = ()
    refuses = False  # it writes rows, never refuses a record (sync.record.projector)

    def __init__(self) -> None:
        self._root: str | None = None

    def _resend_open_cases(self, db: Database, department: str) -> None:
        """A department certified again (a machine replaced) holds none of its cases yet:
        the records of its open cases go to it again, before anything newer."""
        _resend(db, department, case_queries.open_case_records(db, department))

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        if self._root is None:
            anchor = anchor_of(db)
            self._root = anchor.origin if anchor is not None else record.origin
        if record.kind == kinds.DEPARTMENT_CERT:
            self._resend_open_cases(db, str(record.body["code"]))
        if record.origin == self._root:
            targets = linked_departments(db)
            case = None
        elif record.kind in (kinds.CASE_INTAKE, kinds.CASE_EVENT):
            case = str(record.body["case"])
            decider = _decider(db, record, case)
            if decider is None or decider == record.origin or decider not in linked_departments(db):
                return
            targets = [decider]
        else:
            return
        db.conn.executemany(
            "INSERT OR IGNORE INTO outbox (department, record_id, kind, case_no) VALUES (?, ?, ?, ?)",
            [(department, record.id, record.kind, case) for department in targets],
        )


def _resend(db: Database, department: str, rows: list[tuple[str, bytes, bool]]) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO outbox (department, record_id, kind, case_no) VALUES (?, ?, ?, ?)",
        [
            (department, rid, kinds.CASE_INTAKE if intake else kinds.CASE_EVENT, case)
            for case, rid, intake in rows
        ],
    )
    db.conn.executemany(
        "UPDATE outbox SET published_at = NULL WHERE department = ? AND record_id = ?",
        [(department, rid) for _, rid, _ in rows],
    )


def _decider(db: Database, record: Record, case: str) -> str | None:
    if record.kind == kinds.CASE_INTAKE:
        decider = str(record.body["decider"])
    else:
        row = case_queries.case(db, case)
        if row is None:
            return None
        decider = row.decider
    return decider if is_department(decider) else None


def linked_departments(db: Database) -> list[str]:
    """The departments with an unrevoked certificate, by code: those central publishes to."""
    return sorted({d.code for d in departments(db) if not d.revoked})


@dataclass(frozen=True)
class Pending:
    """An outbox row not yet confirmed by the broker."""

    seq: int
    department: str
    record_id: bytes
    kind: str
    case: str | None


def pending(db: Database, limit: int) -> list[Pending]:
    """Up to ``limit`` unpublished rows, oldest first."""
    rows = db.conn.execute(
        "SELECT seq, department, record_id, kind, case_no FROM outbox WHERE published_at IS NULL"
        " ORDER BY seq LIMIT ?",
        (limit,),
    ).fetchall()
    return [Pending(seq, department, bytes(rid), kind, case) for seq, department, rid, kind, case in rows]


def mark_published(db: Database, seqs: list[int], at: int) -> None:
    """The broker confirmed the events of these rows at ``at``."""
    if not seqs:
        return
    with transaction(db):
        db.conn.executemany(
            "UPDATE outbox SET published_at = ? WHERE seq = ? AND published_at IS NULL",
            [(at, s) for s in seqs],
        )


@dataclass(frozen=True)
class OutboxCounts:
    department: str
    total: int
    waiting: int  # not confirmed by the broker yet
    oldest_waiting: int | None  # its outbox number


def outbox_counts(db: Database) -> dict[str, OutboxCounts]:
    """Per department: its rows, those not yet confirmed, and the oldest of them."""
    rows = db.conn.execute(
        "SELECT department, count(*), count(*) - count(published_at),"
        " min(CASE WHEN published_at IS NULL THEN seq END) FROM outbox GROUP BY department"
    )
    return {row[0]: OutboxCounts(*row) for row in rows}


def note_contact(db: Database, department: str, at: int, head: int) -> None:
    """Central heard from ``department`` at ``at``, holding its chain up to ``head``."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO department_contacts (department, last_seen, head) VALUES (?, ?, ?)"
            " ON CONFLICT (department) DO UPDATE SET last_seen = excluded.last_seen, head = excluded.head",
            (department, at, head),
        )


def contacts(db: Database) -> dict[str, int]:
    """When central last heard from each department (epoch s)."""
    return {
        str(d): int(at) for d, at in db.conn.execute("SELECT department, last_seen FROM department_contacts")
    }


OUTBOX_TABLES = (
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        department TEXT NOT NULL,
        record_id BLOB NOT NULL,
        kind TEXT NOT NULL,
        case_no TEXT,
        published_at INTEGER,
        UNIQUE (department, record_id)
    )
    """,
    "CREATE INDEX outbox_waiting ON outbox (seq) WHERE published_at IS NULL",
    """
    CREATE TABLE department_contacts (
        department TEXT PRIMARY KEY,
        last_seen INTEGER NOT NULL,
        head INTEGER NOT NULL
    )
    """,
)
"""Central's migration ``0007_department_outbox``."""
