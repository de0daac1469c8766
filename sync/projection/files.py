"""The files of the cases: which records refer to which files, and which files a store holds.

Tables:

``file_refs``
    a projection of the log (rebuilt from it like every projection): one row per (record,
    file) of every ``case.intake`` and ``case.event`` that lists files — the case number,
    the record's origin and time, the file's hash (hex), size, type and material, the page's
    place in the record, and ``intake`` or the event's name.
``files_held``
    bookkeeping of the store's file store (:mod:`sync.record.filestore`), not derived from
    the log: one row per file held, with its size, type, when it was stored and whether the
    node knows that central holds it (``at_root``). A file the retention rule removed keeps
    its row with ``removed_at`` set, so the store knows it let the file go on purpose and
    does not ask for it again.

Every statement on these tables is in this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from core.errors import ErrorCode, InputError, StoreError
from core.files import PDF, FileRef, refs_from_body
from core.scans import pdf_is_active
from sync.record import kinds
from sync.record.db import open_readonly
from sync.record.envelope import Record
from sync.record.filestore import FileStore, beside
from sync.record.inspect import VerifyReport

INTAKE_EVENT = "intake"


@dataclass(frozen=True)
class CaseFile:
    """A file of a case as its record lists it."""

    ref: FileRef
    case_no: str
    origin: str
    record_id: bytes
    event: str  # "intake" or the event's name
    ts: int
    page: int  # place in its record, from 0


class FileRefProjector:
    """``file_refs``: the files each case record lists (see the module docstring).

    It never refuses a record: the body's files were checked with the record's kind.
    """

    kinds = frozenset({kinds.CASE_INTAKE, kinds.CASE_EVENT})
    tables: tuple[str, ...] = ("file_refs",)
    refuses = False

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        if "files" not in body:
            return
        event = INTAKE_EVENT if record.kind == kinds.CASE_INTAKE else str(body["event"])
        case_no, ts = str(body["case"]), record.payload.ts
        rows = [
            (record.id, ref.hex, case_no, record.origin, ts, page, ref.size, ref.type, ref.material, event)
            for page, ref in enumerate(refs_from_body(body["files"]))
        ]
        db.conn.executemany(
            "INSERT OR IGNORE INTO file_refs (record_id, sha256, case_no, origin, ts, page, size, type,"
            " material, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


_CASE_FILE_COLUMNS = "sha256, size, type, material, case_no, origin, record_id, event, ts, page"


def _case_file(row: tuple[Any, ...]) -> CaseFile:
    sha, size, kind, material, case_no, origin, rid, event, ts, page = row
    return CaseFile(
        FileRef(bytes.fromhex(sha), int(size), str(kind), str(material)),
        str(case_no),
        str(origin),
        bytes(rid),
        str(event),
        int(ts),
        int(page),
    )


def refs_of_case(db: Database, case_no: str) -> list[CaseFile]:
    """Every file the records of ``case_no`` list, in the order of the records, then pages."""
    rows = db.conn.execute(
        f"SELECT {_CASE_FILE_COLUMNS} FROM file_refs WHERE case_no = ? ORDER BY ts, record_id, page",
        (case_no,),
    ).fetchall()
    return [_case_file(row) for row in rows]


def refs_of_sha(db: Database, sha: str) -> list[CaseFile]:
    """Every listing of the file ``sha`` (one per record that lists it)."""
    rows = db.conn.execute(
        f"SELECT {_CASE_FILE_COLUMNS} FROM file_refs WHERE sha256 = ? ORDER BY ts, record_id", (sha,)
    ).fetchall()
    return [_case_file(row) for row in rows]


def referenced(db: Database, sha: str) -> bool:
    """Whether any record held lists the file ``sha``."""
    row = db.conn.execute("SELECT EXISTS (SELECT 1 FROM file_refs WHERE sha256 = ?)", (sha,)).fetchone()
    return bool(row[0])


def case_bytes(db: Database, case_no: str) -> dict[str, int]:
    """The distinct files of ``case_no``'s records: hash → size."""
    rows = db.conn.execute(
        "SELECT DISTINCT sha256, size FROM file_refs WHERE case_no = ?", (case_no,)
    ).fetchall()
    return {str(sha): int(size) for sha, size in rows}


def missing(db: Database) -> list[tuple[str, int]]:
    """Files a record held lists that the store neither holds nor let go on purpose:
    (hash, size), by hash."""
    rows = db.conn.execute(
        "SELECT DISTINCT r.sha256, r.size FROM file_refs r LEFT JOIN files_held h ON h.sha256 = r.sha256"
        " WHERE h.sha256 IS NULL ORDER BY r.sha256"
    ).fetchall()
    return [(str(sha), int(size)) for sha, size in rows]


def missing_by_case(db: Database) -> list[tuple[str, int, str]]:
    """:func:`missing`, each file with a case that lists it: (hash, size, case number)."""
    rows = db.conn.execute(
        "SELECT r.sha256, min(r.size), min(r.case_no) FROM file_refs r"
        " LEFT JOIN files_held h ON h.sha256 = r.sha256"
        " WHERE h.sha256 IS NULL GROUP BY r.sha256 ORDER BY r.sha256"
    ).fetchall()
    return [(str(sha), int(size), str(case_no)) for sha, size, case_no in rows]


def held_by_case(db: Database) -> list[tuple[str, str, bool, int, list[str]]]:
    """Every file held that a record lists, with a case that lists it, whether central
    holds it, its size and the origins of the records that list it: (hash, case number,
    at_root, size, origins)."""
    rows = db.conn.execute(
        "SELECT h.sha256, min(r.case_no), h.at_root, h.size, group_concat(DISTINCT r.origin)"
        " FROM files_held h JOIN file_refs r ON r.sha256 = h.sha256 WHERE h.removed_at IS NULL"
        " GROUP BY h.sha256 ORDER BY h.sha256"
    ).fetchall()
    return [
        (str(sha), str(case_no), bool(root), int(size), str(origins).split(","))
        for sha, case_no, root, size, origins in rows
    ]


def should_hold(db: Database) -> list[tuple[str, str]]:
    """Every file the store should hold — listed by a record it holds, not let go by the
    retention rule — with the origin of the case it belongs to: (hash, intake node of a
    case that lists it)."""
    rows = db.conn.execute(
        "SELECT r.sha256, min(substr(r.case_no, 1, instr(r.case_no, '-') - 1)) FROM file_refs r"
        " LEFT JOIN files_held h ON h.sha256 = r.sha256"
        " WHERE h.removed_at IS NULL GROUP BY r.sha256 ORDER BY r.sha256"
    ).fetchall()
    return [(str(sha), str(node)) for sha, node in rows]


def listed_by(db: Database, origin: str) -> set[str]:
    """The files listed in records ``origin`` signed."""
    rows = db.conn.execute("SELECT DISTINCT sha256 FROM file_refs WHERE origin = ?", (origin,))
    return {str(row[0]) for row in rows}


def note_held(db: Database, sha: str, size: int, type_: str, at: int) -> None:
    """The file store holds ``sha`` now (stored at ``at``)."""
    db.conn.execute(
        "INSERT INTO files_held (sha256, size, type, stored_at, at_root, removed_at)"
        " VALUES (?, ?, ?, ?, 0, NULL) ON CONFLICT (sha256) DO UPDATE SET removed_at = NULL",
        (sha, size, type_, at),
    )


def note_removed(db: Database, sha: str) -> None:
    """The file store no longer holds ``sha`` (an orphan swept, a refused record's file)."""
    db.conn.execute("DELETE FROM files_held WHERE sha256 = ?", (sha,))


def note_released(db: Database, sha: str, at: int) -> None:
    """The retention rule let ``sha`` go at ``at``: central holds it, its case closed long ago."""
    db.conn.execute("UPDATE files_held SET removed_at = ? WHERE sha256 = ?", (at, sha))


def is_held(db: Database, sha: str) -> bool:
    row = db.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM files_held WHERE sha256 = ? AND removed_at IS NULL)", (sha,)
    ).fetchone()
    return bool(row[0])


def stored_at(db: Database, sha: str) -> int | None:
    """When the file ``sha`` was noted held, if it is."""
    row = db.conn.execute("SELECT stored_at FROM files_held WHERE sha256 = ?", (sha,)).fetchone()
    return int(row[0]) if row else None


def held(db: Database) -> list[str]:
    """The hashes of every file the bookkeeping says is held."""
    rows = db.conn.execute("SELECT sha256 FROM files_held WHERE removed_at IS NULL ORDER BY sha256")
    return [str(row[0]) for row in rows]


def held_among(db: Database, shas: Iterable[str]) -> set[str]:
    """Those of ``shas`` the bookkeeping says are held. A store from before the file
    tables holds none."""
    wanted = list(shas)
    if not wanted or "files_held" not in db.table_names():
        return set()
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # SQLite's bound on host parameters
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = db.conn.execute(
            f"SELECT sha256 FROM files_held WHERE removed_at IS NULL AND sha256 IN ({marks})", chunk
        )
        found.update(str(row[0]) for row in rows)
    return found


def held_bytes(db: Database) -> int:
    """The bytes of every file held."""
    row = db.conn.execute("SELECT coalesce(sum(size), 0) FROM files_held WHERE removed_at IS NULL").fetchone()
    return int(row[0])


def orphans(db: Database, shas: Iterable[str]) -> list[str]:
    """Those of ``shas`` (files held) that no record held lists, in the order given."""
    return [sha for sha in shas if not referenced(db, sha)]


def mark_at_root(db: Database, shas: Iterable[str]) -> None:
    """Central holds the files ``shas`` (the village learned it from its parent)."""
    db.conn.executemany("UPDATE files_held SET at_root = 1 WHERE sha256 = ?", [(sha,) for sha in shas])


def at_root(db: Database, sha: str) -> bool:
    row = db.conn.execute("SELECT at_root FROM files_held WHERE sha256 = ?", (sha,)).fetchone()
    return bool(row and row[0])


def releasable(db: Database) -> list[tuple[str, list[str]]]:
    """Files held that central holds too: each with the cases that list it."""
    rows = db.conn.execute(
        "SELECT h.sha256, group_concat(DISTINCT r.case_no) FROM files_held h"
        " JOIN file_refs r ON r.sha256 = h.sha256"
        " WHERE h.at_root = 1 AND h.removed_at IS NULL GROUP BY h.sha256 ORDER BY h.sha256"
    ).fetchall()
    return [(str(sha), sorted(str(cases).split(","))) for sha, cases in rows]


def check_files(db: Database, store: FileStore, own: str | None) -> tuple[list[str], list[str]]:
    """Every file the store should hold (:func:`should_hold`) against its hash: (faults,
    warnings). A damaged file is a fault (``E_FILE_HASH``); so is a missing one that must
    be here — a file listed in a record ``own`` signed (it stored the file first), or one
    the bookkeeping says is held (``E_FILE_MISSING``). A file another node listed and that
    has not been received yet is a warning: it may still be on its way."""
    faults: list[str] = []
    waiting = 0
    own_files = listed_by(db, own) if own is not None else set()
    for sha, node in should_hold(db):
        found = store.check(sha)
        if found is ErrorCode.FILE_HASH:
            faults.append(f"{found.value}: file {sha} (a case of {node}) does not match its hash")
        elif found is ErrorCode.FILE_MISSING:
            if is_held(db, sha) or sha in own_files:
                faults.append(f"{found.value}: file {sha} (a case of {node}) is not in the file store")
            else:
                waiting += 1
    warnings = [f"{ErrorCode.FILE_MISSING.value}: {waiting} file(s) of other nodes' cases not received yet"]
    return faults, warnings if waiting else []


def verify_files(database: Path, report: VerifyReport) -> None:
    """``tongban verify``'s check of the files (:func:`check_files`) of the store whose
    database is ``database``, added to ``report``. A store whose database cannot be read,
    or that does not have the file tables yet, has no files to check."""
    try:
        conn = open_readonly(database)
    except StoreError:
        return
    try:
        db = Database(conn)
        if "file_refs" not in db.table_names():
            return
        faults, warnings = check_files(db, beside(database), report.own)
    except StoreError as exc:
        report.faults.append(f"{exc.code.value}: the file tables cannot be read ({exc.detail})")
        return
    finally:
        conn.close()
    report.faults.extend(faults)
    report.warnings.extend(warnings)


FILE_TABLES = (
    """
    CREATE TABLE file_refs (
        record_id BLOB NOT NULL, sha256 TEXT NOT NULL, case_no TEXT NOT NULL, origin TEXT NOT NULL,
        ts INTEGER NOT NULL, page INTEGER NOT NULL, size INTEGER NOT NULL, type TEXT NOT NULL,
        material TEXT NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (record_id, sha256)
    )
    """,
    "CREATE INDEX file_refs_by_sha ON file_refs (sha256)",
    "CREATE INDEX file_refs_by_case ON file_refs (case_no)",
    """
    CREATE TABLE files_held (
        sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, type TEXT NOT NULL,
        stored_at INTEGER NOT NULL, at_root INTEGER NOT NULL DEFAULT 0, removed_at INTEGER
    )
    """,
)
"""Migration ``log/0012_files``. No store written before it holds a record with files."""


class HeldFiles:
    """A case's file as a page serves it, for any store with a file store: the node's desk
    and a department's. Whether a PDF carries active content is judged once per file (files
    that came over a link never went through :func:`core.scans.normalise`)."""

    def __init__(self, db: Database, store: FileStore) -> None:
        self.db = db
        self.store = store
        self._active: dict[str, bool] = {}

    def file(self, case_no: str, sha: str) -> tuple[Path, FileRef, bool]:
        """The held file ``sha`` of ``case_no``: its path, its ref and whether it is a PDF
        with active content (served only as a download). ``E_FILE_SCOPE`` when the case
        lists no such file, ``E_FILE_MISSING`` when it is not held (yet)."""
        row = next((r for r in refs_of_case(self.db, case_no) if r.ref.hex == sha), None)
        if row is None:
            raise InputError(
                ErrorCode.FILE_SCOPE, f"{sha} is not a file of {case_no}", zh="该文件不属于此办件"
            )
        if not self.store.has(sha):
            raise StoreError(ErrorCode.FILE_MISSING, f"{sha} of {case_no}", zh="该文件传输中，本机尚未收到")
        return self.store.path(sha), row.ref, self.active(sha, row.ref.type)

    def active(self, sha: str, kind: str) -> bool:
        """Whether the held file ``sha`` is a PDF with active content (remembered)."""
        if kind != PDF:
            return False
        if sha not in self._active:
            self._active[sha] = pdf_is_active(self.store.read(sha))
        return self._active[sha]
