"""Node status reports (``node.status``) and when each node was last heard of.

Central's dashboard needs, for every node, what only the node knows: the catalog and
calendar it holds, how many records its store holds back or refused, how many wait to go
up, how many forks it holds evidence of (``forks``), for a parent when each child last
ended a session with it (``seen``: a village behind a town is otherwise heard of only when
its chain moves), and the software version it runs and the newest sync protocol it speaks
(``software``, ``protocol``) — the last four named only when there are, or to a parent
that takes them (a parent of older software knows no such field). A node says so in a small signed
``node.status`` record that it appends when its parent has welcomed a sync session and
before it sends anything up (:func:`report_status`, which the node's link hook calls,
:mod:`node.sync_hooks`), if its last report is an hour old or any figure but ``at``
changed. The record goes up with that session and never down
(:func:`sync.record.kinds.scope_of` scopes it to its origin). A node that cannot reach its
parent reports nothing, and status records are not counted in the backlog they report.

Tables (kept by every store; a relay town holds its villages' rows too):

``node_status``
    the newest report of each origin (by its seq, so any arrival order gives the same row).
``link_receipts``
    the newest ``link.receipt`` each witness (a parent, or central) signed for each child:
    when the child was last seen by someone who signs for it.
``receipt_history``
    every ``link.receipt`` held: which seq of the child's chain a witness saw, and when. A
    record of the child existed when the first receipt covering its seq was signed, which
    bounds how long before that its author can have signed it (:func:`first_witness`;
    central's re-check, :mod:`central.recheck`).

All may hold rows of quarantined records (signed after a revocation's cut-off, arrived
before it); readers leave those out through the ``quarantined`` view.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from core.admin import within
from sync.projection.calendars import newest_version as calendar_version
from sync.projection.catalog import newest_version as catalog_version
from sync.record import kinds
from sync.record.db import transaction
from sync.record.envelope import Keyring, Record, Signer
from sync.record.forks import open_forks
from sync.record.log import RecordLog, stored_record
from sync.record.outcome import Heads

REPORT_EVERY = 3600
"""Seconds after which a node reports again although nothing changed."""

FIGURES = ("catalog", "calendar", "held", "rejected", "backlog")
"""The fields of a report that make it news; ``at`` alone does not."""

Software = tuple[str, int]
"""The software version a node runs and the newest sync protocol it speaks."""

SEEN_STEP = 300
"""A parent reports again when a child's last session is this much newer than the report
before said (``seen``): the dashboard's last contact of a village behind a town is right
to within this, while the town signs at most one report per step, not one per session."""


class StatusProjector:
    """``node_status``, ``link_receipts`` and ``receipt_history`` (see the module docstring)."""

    kinds = frozenset({kinds.NODE_STATUS, kinds.LINK_RECEIPT})
    tables: tuple[str, ...] = ("node_status", "link_receipts", "receipt_history")
    contained = kinds  # one upsert, never a refusal

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        if record.kind == kinds.NODE_STATUS:
            db.conn.execute(
                "INSERT INTO node_status (origin, seq, ts, catalog, calendar, held, rejected, backlog, at,"
                " record_id, files_up, files_down, files_held) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (origin) DO UPDATE SET"
                " seq = excluded.seq, ts = excluded.ts, catalog = excluded.catalog,"
                " calendar = excluded.calendar, held = excluded.held, rejected = excluded.rejected,"
                " backlog = excluded.backlog, at = excluded.at, record_id = excluded.record_id,"
                " files_up = excluded.files_up, files_down = excluded.files_down,"
                " files_held = excluded.files_held WHERE excluded.seq > node_status.seq",
                (
                    record.origin,
                    record.seq,
                    record.payload.ts,
                    *(body[name] for name in FIGURES),
                    body["at"],
                    record.id,
                    *_files_in(body),
                ),
            )
            return
        db.conn.execute(
            "INSERT INTO link_receipts (child, witness, seq, at, record_id) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (child, witness) DO UPDATE SET seq = excluded.seq, at = excluded.at,"
            " record_id = excluded.record_id WHERE excluded.seq > link_receipts.seq",
            (body["child"], record.origin, record.seq, body["at"], record.id),
        )
        note_receipt(db, record)


FILE_FIGURES = ("up", "down", "held")
"""The ``files`` map of a report: bytes of files waiting to go up, to come down, and held."""


def _files_in(body: dict[str, Any]) -> tuple[int | None, ...]:
    """The ``files`` figures of a report's body (None each where it names none, or not a count)."""
    files = body.get("files")
    if not isinstance(files, dict):
        return (None, None, None)
    return tuple(
        v if isinstance(v := files.get(name), int) and not isinstance(v, bool) and v >= 0 else None
        for name in FILE_FIGURES
    )


def reported_files(db: Database) -> dict[str, tuple[int, int, int]]:
    """The bytes of files each node said wait to go up, to come down, and it holds (nodes
    whose newest report names them: a report to a parent of protocol 4)."""
    rows = db.conn.execute(
        "SELECT origin, files_up, files_down, files_held FROM node_status WHERE files_up IS NOT NULL"
        " AND files_down IS NOT NULL AND files_held IS NOT NULL"
        " AND record_id NOT IN (SELECT id FROM quarantined)"
    ).fetchall()
    return {str(o): (int(u), int(d), int(h)) for o, u, d, h in rows}


def note_receipt(db: Database, record: Record) -> None:
    """Keep the ``link.receipt`` ``record`` in ``receipt_history``."""
    body = record.body
    db.conn.execute(
        "INSERT OR IGNORE INTO receipt_history (record_id, child, witness, seq, at) VALUES (?, ?, ?, ?, ?)",
        (record.id, body["child"], record.origin, body["seq"], body["at"]),
    )


def first_witness(db: Database, child: str, seq: int) -> int | None:
    """When ``child``'s record ``seq`` was first witnessed: the time of the earliest receipt
    that covers it; failing one, of the newest receipt held for ``child`` (it was signed
    after that). None: no receipt of ``child`` is held."""
    live = "record_id NOT IN (SELECT id FROM quarantined)"
    row = db.conn.execute(
        f"SELECT coalesce((SELECT min(at) FROM receipt_history WHERE child = ? AND seq >= ? AND {live}),"
        f" (SELECT max(at) FROM receipt_history WHERE child = ? AND seq < ? AND {live}))",
        (child, seq, child, seq),
    ).fetchone()
    return None if row[0] is None else int(row[0])


STATUS_TABLES = (
    """
    CREATE TABLE node_status (
        origin TEXT PRIMARY KEY, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
        catalog INTEGER NOT NULL, calendar INTEGER NOT NULL, held INTEGER NOT NULL,
        rejected INTEGER NOT NULL, backlog INTEGER NOT NULL, at INTEGER NOT NULL,
        record_id BLOB NOT NULL
    )
    """,
    """
    CREATE TABLE link_receipts (
        child TEXT NOT NULL, witness TEXT NOT NULL, seq INTEGER NOT NULL,
        at INTEGER NOT NULL, record_id BLOB NOT NULL, PRIMARY KEY (child, witness)
    )
    """,
)
"""Migration ``log/0006_node_status``."""

RECEIPT_HISTORY = (
    """
    CREATE TABLE receipt_history (
        record_id BLOB PRIMARY KEY, child TEXT NOT NULL, witness TEXT NOT NULL,
        seq INTEGER NOT NULL, at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX receipt_history_child ON receipt_history (child, seq)",
)
"""Migration ``log/0009_receipt_history`` (it also keeps the receipts a store held before)."""

STATUS_FILES = (
    "ALTER TABLE node_status ADD COLUMN files_up INTEGER",
    "ALTER TABLE node_status ADD COLUMN files_down INTEGER",
    "ALTER TABLE node_status ADD COLUMN files_held INTEGER",
)
"""Migration ``log/0013_node_status_files``: the ``files`` figures of each node's newest report
(NULL where it names none). No report written before it names them."""


def current_status(
    log: RecordLog,
    backlog: int,
    seen: dict[str, int] | None = None,
    software: Software | None = None,
    files: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The body of a ``node.status`` report about this store, now; ``backlog``: the
    records of its subtree that wait to go up, as its link counts them; ``seen``: when each
    child last ended a session with this store (named only when there are); ``software``:
    the version it runs and the newest sync protocol it speaks (named when given)."""
    body: dict[str, Any] = {
        "catalog": catalog_version(log.db),
        "calendar": calendar_version(log.db),
        "held": log.count("held"),
        "rejected": log.count("rejected"),
        "backlog": backlog,
        "at": log.clock.now(),
    }
    forks = len(open_forks(log.db))
    if forks:
        body["forks"] = forks
    if seen:
        body["seen"] = dict(sorted(seen.items()))
    if software is not None:
        body["software"], body["protocol"] = software
    if files is not None:
        body["files"] = {name: files[name] for name in FILE_FIGURES}
    return body


def _seen_in(body: dict[str, Any]) -> dict[str, int]:
    """The ``seen`` map of a report's body, leaving out what is not a code and a time."""
    seen = body.get("seen", {})
    if not isinstance(seen, dict):
        return {}
    return {
        c: t for c, t in seen.items() if isinstance(c, str) and isinstance(t, int) and not isinstance(t, bool)
    }


def _news_since(db: Database, record_id: bytes, body: dict[str, Any]) -> bool:
    """Whether ``body`` says more than the report ``record_id`` beyond its figures: other
    forks or software, or a child's last session :data:`SEEN_STEP` newer than it said (or
    a child it did not name)."""
    record = stored_record(db, record_id)
    before = record.body if record is not None else {}
    if any(before.get(name) != body.get(name) for name in ("software", "protocol", "files")):
        return True
    if int(before.get("forks", 0)) != body.get("forks", 0):
        return True
    seen = _seen_in(before)
    return any(
        at - seen.get(child, at - SEEN_STEP) >= SEEN_STEP for child, at in body.get("seen", {}).items()
    )


def _reports(db: Database) -> list[Record]:
    """The newest report of each origin, quarantined ones left out."""
    rows = db.conn.execute(
        "SELECT record_id FROM node_status WHERE record_id NOT IN (SELECT id FROM quarantined)"
    ).fetchall()
    found = (stored_record(db, bytes(record_id)) for (record_id,) in rows)
    return [record for record in found if record is not None]


def reported_software(db: Database) -> dict[str, Software]:
    """The software version and newest protocol each node said in its newest report, if it
    named them (reports of older software, or sent to an older parent, do not)."""
    found: dict[str, Software] = {}
    for record in _reports(db):
        software, protocol = record.body.get("software"), record.body.get("protocol")
        if isinstance(software, str) and isinstance(protocol, int) and not isinstance(protocol, bool):
            found[record.origin] = (software, protocol)
    return found


def reported_seen(db: Database) -> dict[str, int]:
    """When each node last ended a session with its parent, as the parents' newest
    reports say (``seen``; a parent speaks only for its own subtree); a child named by
    several parents: the newest."""
    found: dict[str, int] = {}
    for record in _reports(db):
        for child, at in _seen_in(record.body).items():
            if child != record.origin and within(child, record.origin):  # its own subtree only
                found[child] = max(at, found.get(child, at))
    return found


def report_status(
    log: RecordLog,
    signer: Signer | Keyring,
    code: str,
    parent_heads: Heads,
    backlog: int,
    seen: dict[str, int] | None = None,
    software: Software | None = None,
    files: dict[str, int] | None = None,
) -> Record | None:
    """Append a ``node.status`` of ``code`` if its last one is stale or says otherwise.

    ``parent_heads`` are the heads the parent welcomed the session with; ``backlog``,
    ``seen`` and ``software`` what :func:`current_status` reports (a child's newer session makes a report due
    only :data:`SEEN_STEP` after the last one said). A node whose
    parent holds more of its chain than it does (a store restored from an older copy) or
    another record at its head (a fork) authors nothing: a record signed now would take a
    sequence number its chain has used already. It reports once its chain is whole again.

    One transaction: the figures and the record agree. Returns the record, or ``None``.
    """
    with transaction(log.db):
        if code in parent_heads:
            seq, rid = parent_heads[code]
            if log.id_at(code, seq) != rid:
                return None
        body = current_status(log, backlog, seen, software, files)
        last: Any = log.db.conn.execute(
            f"SELECT at, record_id, {', '.join(FIGURES)} FROM node_status WHERE origin = ?", (code,)
        ).fetchone()
        if (
            last is not None
            and body["at"] - last[0] < REPORT_EVERY
            and tuple(last[2:]) == tuple(body[name] for name in FIGURES)
            and not _news_since(log.db, bytes(last[1]), body)
        ):
            return None
        return log.append_local(signer, code, kinds.NODE_STATUS, body, actor="sys:sync")
