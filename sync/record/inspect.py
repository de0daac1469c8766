"""Offline inspection of a store: full verification and a readable listing.

``verify_store`` trusts nothing in the database but the pinned anchor id (and, for which
origins it holds whole or in part, whose store it is: the origin of its own records). It replays every
stored envelope, in arrival order, into a fresh in-memory log that runs every ingest check
(signature, canonical encoding, chain, certificate, authority, schema). It then checks
that the stored index columns say what the signed bytes say, and that every projection
table equals the one the replay built. Any difference is a fault; a single flipped byte
anywhere in a stored record is caught.

A store last opened by older software lacks what this software's newer migrations add
(they run when the store is next opened for writing): verification says which are pending
and compares the tables and columns the store has.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.clock import Clock
from core.errors import EnrollmentError, ErrorCode, RecordError, StoreError
from sync.record.db import MIGRATIONS_TABLE, open_database, open_readonly
from sync.record.envelope import Record
from sync.record.log import DensePolicy, Projector, RecordLog, all_dense, decode_stored, dense_for
from sync.record.outcome import Status


@dataclass
class VerifyReport:
    """What verification found. ``ok`` is false when there is any fault."""

    records: int = 0
    origins: int = 0
    faults: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    anchor: bytes | None = None
    own: str | None = None  # the origin whose records the store authors, if any yet

    @property
    def ok(self) -> bool:
        return not self.faults


def verify_store(
    path: Path, sets: Sequence[Migrations], clock: Clock, projectors: Sequence[Projector]
) -> VerifyReport:
    """Re-verify the whole log at ``path`` (see the module docstring).

    ``sets`` are the store's migration sets and ``projectors`` fresh instances of the
    projections it keeps (its store module knows both: ``node.store.verify`` …).
    """
    report = VerifyReport()
    conn = open_readonly(path)
    try:
        # One read transaction: every statement below sees the same snapshot, so a node
        # that takes a sync while it is verified does not look like a damaged projection.
        conn.execute("BEGIN")
        rows = conn.execute(
            "SELECT arrival, id, origin, seq, kind, kid, ts, actor, envelope, source FROM records"
            " ORDER BY arrival"
        ).fetchall()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except StoreError as exc:
        conn.close()
        if exc.code is not ErrorCode.STORE_CORRUPT:
            raise  # busy, unreadable: not a finding about the log, the check could not run
        report.faults.append(f"{exc.code.value}: the database cannot be read ({exc.detail})")
        return report
    report.anchor = meta.get("anchor_id")
    report.own = next((row[2] for row in rows if row[9] == "local"), None)
    _check_bookkeeping(conn, rows, meta, report)
    replay_db = open_database(":memory:", sets)
    replay = RecordLog(replay_db, clock, projectors, dense=_policy_of(rows, meta))
    for row in rows:
        report.records += 1
        _replay_one(replay, row, report)
    report.origins = len({row[2] for row in rows})
    pending = _pending(conn, sets)
    if pending:
        report.warnings.append(
            "the store was last opened by older software; these migrations run when it is next opened"
            f" (what they add is not compared): {', '.join(pending)}"
        )
    if report.ok:
        for table in sorted(set(replay.projectors.tables)):
            columns = _columns(conn, table)
            if not columns and pending:
                continue
            if _table_rows(conn, table, columns) != _table_rows(replay_db.conn, table, columns):
                report.faults.append(f"projection table '{table}' differs from a rebuild from the log")
    forks = conn.execute("SELECT origin, seq FROM forks").fetchall()
    for origin, seq in forks:
        report.warnings.append(
            f"{ErrorCode.CHAIN_FORK.value}: {origin} signed two records #{seq} (evidence kept)"
        )
    quarantined = conn.execute("SELECT count(*) FROM quarantined").fetchone()[0]
    if quarantined:
        report.warnings.append(
            f"{quarantined} record(s) signed after their key's revocation cut-off"
            " (quarantined, kept as evidence)"
        )
    held = conn.execute("SELECT count(*) FROM held").fetchone()[0]
    if held:
        report.warnings.append(f"{held} record(s) held, waiting for a certificate or earlier records")
    rejected = conn.execute("SELECT count(*), coalesce(sum(times), 0) FROM rejected").fetchone()
    if rejected[0]:
        report.warnings.append(f"{rejected[0]} distinct record(s) rejected ({rejected[1]} times in all)")
    conn.close()
    replay_db.close()
    return report


def _check_bookkeeping(
    conn: sqlite3.Connection, rows: list[tuple[Any, ...]], meta: dict[str, Any], report: VerifyReport
) -> None:
    """Rows deleted from the log or an edited anchor leave traces the replay cannot see."""
    arrivals = [row[0] for row in rows]
    if arrivals != list(range(1, len(arrivals) + 1)):
        missing = sorted(set(range(1, (max(arrivals) if arrivals else 0) + 1)) - set(arrivals))
        report.faults.append(f"arrival numbers are not contiguous: missing {missing[:10]}")
    issued = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
    if issued is not None and issued[0] != len(arrivals):
        report.faults.append(f"{issued[0]} arrivals were numbered but {len(arrivals)} records remain")
    if "anchor_id" not in meta:
        report.faults.append("no trust anchor is pinned in this store")
        return
    if rows:
        try:
            genesis = decode_stored(rows[0][8]) if rows[0][4] == "net.genesis" else None
        except RecordError:
            return  # the replay reports the damaged genesis itself
        if genesis is None or (meta.get("net"), meta.get("anchor_origin")) != (
            genesis.payload.net.encode(),
            genesis.origin.encode(),
        ):
            report.faults.append("the pinned network or anchor origin disagrees with the genesis record")


def _policy_of(rows: list[tuple[Any, ...]], meta: dict[str, Any]) -> DensePolicy:
    """The store's dense/sparse policy, from its own origin (what it authored) and root."""
    root = meta.get("anchor_origin")
    own = next((row[2] for row in rows if row[9] == "local"), None)
    if root is None or own is None or own == bytes(root).decode():
        return all_dense
    return dense_for(own, bytes(root).decode())


def _replay_one(replay: RecordLog, row: tuple[Any, ...], report: VerifyReport) -> None:
    arrival, rid, origin, seq, kind, kid, ts, actor, envelope, _ = row
    where = f"record {arrival} ({origin} #{seq} {kind})"
    try:
        record = decode_stored(envelope)
    except RecordError as exc:
        report.faults.append(f"{where}: {exc.render('en')}")
        return
    payload = record.payload
    stored = (bytes(rid), origin, seq, kind, bytes(kid), ts, actor)
    signed = (record.id, payload.origin, payload.seq, payload.kind, payload.kid, payload.ts, payload.actor)
    if stored != signed:
        report.faults.append(f"{where}: stored columns disagree with the signed record")
    if arrival == 1 or replay.anchor() is None:
        try:
            replay.install_anchor(envelope, expected_id=report.anchor)
        except (RecordError, EnrollmentError) as exc:
            report.faults.append(f"{where}: not the pinned trust anchor: {exc.render('en')}")
        return
    outcome = replay.ingest(envelope, "verify")
    if outcome.status is not Status.APPENDED:
        code = outcome.code.value if outcome.code else outcome.status.value
        report.faults.append(f"{where}: {code} {outcome.reason}".rstrip())


def _pending(conn: sqlite3.Connection, sets: Sequence[Migrations]) -> list[str]:
    """The migrations of ``sets`` the store at ``conn`` has not run yet."""
    try:
        done = set(conn.execute(f"SELECT migration_set, name FROM {MIGRATIONS_TABLE}").fetchall())
    except StoreError:
        done = set()
    return [f"{s.name}/{m.name}" for s in sets for m in s._migrations if (s.name, m.name) not in done]


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The columns ``table`` has in the store at ``conn`` (none: it has no such table)."""
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})").fetchall()]


def _table_rows(conn: sqlite3.Connection, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    names = ", ".join(f'"{c}"' for c in columns) or "*"
    return sorted(conn.execute(f"SELECT {names} FROM {table}").fetchall(), key=repr)


# -- listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    arrival: int
    origin: str
    seq: int
    kind: str
    ts: int
    actor: str | None
    record_id: bytes
    summary: str
    source: str


def list_records(
    db: Database, *, kind: str | None = None, origin: str | None = None, limit: int | None = None
) -> Iterator[Line]:
    """The stored records, oldest arrival first, each with a one-line summary."""
    sql = "SELECT arrival, envelope, source FROM records WHERE 1=1"
    params: list[Any] = []
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    if origin:
        sql += " AND origin = ?"
        params.append(origin)
    sql += " ORDER BY arrival"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for arrival, envelope, source in db.conn.execute(sql, params):
        record = decode_stored(envelope)
        p = record.payload
        yield Line(arrival, p.origin, p.seq, p.kind, p.ts, p.actor, record.id, summarize(record), source)


def summarize(record: Record) -> str:
    """A one-line, human description of a record's body."""
    body = record.body
    kind = record.kind
    if kind == "net.genesis":
        return f"network {body['net']} founded by {body['code']} {body['name']}"
    if kind == "node.cert":
        until = dt.datetime.fromtimestamp(body["exp"], dt.UTC).date().isoformat()
        return (
            f"certifies {body['node']} {body['name']} ({body['tier']}, parent {body['parent']}) until {until}"
        )
    if kind == "cert.revoke":
        return f"revokes {body['node']} after #{body['last_good_seq']}: {body['reason']}"
    if kind == "catalog.release":
        return f"catalog release v{body.get('version')} with {len(body.get('items', []))} items"
    if kind == "calendar.release":
        return f"calendar release v{body.get('version')} for {body.get('year')}: {body.get('source')}"
    if kind == "node.enrolled":
        return f"came into service ({body['software']})"
    fields = ", ".join(sorted(body))
    return f"{kind} {{{fields}}}"


def format_time(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
