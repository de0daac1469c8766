"""After the run: the end state checked, and central's ingest measured against bare verify.

``verify_all`` re-verifies every store from its signed bytes (:func:`sync.record.inspect.verify_store`:
every signature, chain link, certificate and authority, and every projection table equal
to a rebuild from the log), two stores at a time. ``cases_at_central`` checks that central
holds every case of the month in the state the month left it in.

``central_ingest`` replays what central received while the city converged — the same
records, in the order they arrived, in batches of at most :data:`BATCH_RECORDS` from one
sender — into a copy of central's store as it was when the links came back, through the
commit path its sync endpoint uses (:meth:`sync.link.parent_link.ParentLink.commit_batch`,
signatures on a :class:`sync.record.verify.ThreadVerifier`). The baseline is PyNaCl's
``VerifyKey.verify`` over the same signed bytes, one after the other, on one core.

Two floors of that ingest are measured in the same run, each on one core: the strict
decode and body check every record needs (:func:`sync.record.ingest.parse`,
:func:`sync.record.kinds.check`), and the writes the replay left behind, written again into
another copy of the snapshot in the same batches with nothing else (:func:`_write_rate`).
Signatures, decode and writes are work every record needs in this implementation; spread
perfectly over every core they give a ceiling on the ingest rate (:attr:`IngestFigures.ceiling`) that the
checks, the projections' reads and their Python come on top of.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import VerifyKey

from bench.city.clock import SimClock
from central.store import MIGRATION_SETS as CENTRAL_SETS
from node.store import MIGRATION_SETS as NODE_SETS
from sync.link.parent_link import ParentLink
from sync.link.protocol import BATCH_RECORDS
from sync.projection import standard
from sync.record import kinds
from sync.record.db import transaction
from sync.record.envelope import PREFIX_RECORD, split
from sync.record.ingest import parse
from sync.record.inspect import verify_store
from sync.record.verify import ThreadVerifier
from tongban.homes import open_home


def snapshot_central(root: Path, target: Path) -> int:
    """Copy central's directory, its store through SQLite's backup (consistent while it is
    open elsewhere); the store's last arrival number."""
    shutil.copytree(root / "central", target, ignore=shutil.ignore_patterns("central.db*"))
    source = sqlite3.connect(root / "central" / "central.db")
    copy = sqlite3.connect(target / "central.db")
    try:
        source.backup(copy)
        return int(copy.execute("SELECT coalesce(max(arrival), 0) FROM records").fetchone()[0])
    finally:
        copy.close()
        source.close()


def _verify_one(path: str, central: bool, at: int) -> tuple[str, int, list[str]]:
    report = verify_store(Path(path), CENTRAL_SETS if central else NODE_SETS, SimClock(at), standard())
    return path, report.records, report.faults


def verify_all(root: Path, codes: list[str], at: int) -> tuple[int, list[str]]:
    """Verify central's store and every node's; the records verified and the faults."""
    jobs = [(str(root / "central" / "central.db"), True, at)]
    jobs += [(str(root / code / "node.db"), False, at) for code in codes]
    records, faults = 0, []
    with ProcessPoolExecutor(2) as pool:
        for path, count, found in pool.map(_verify_one, *zip(*jobs, strict=True)):
            records += count
            faults.extend(f"{Path(path).parent.name}: {fault}" for fault in found)
    return records, faults


def cases_at_central(root: Path, direct: int, proxy: int) -> list[str]:
    """What is wrong with central's cases after the month (nothing, when all is well)."""
    conn = sqlite3.connect(root / "central" / "central.db")
    try:
        states = dict(conn.execute("SELECT state, count(*) FROM cases GROUP BY state").fetchall())
    finally:
        conn.close()
    want = {"delivered": direct, "approved": proxy}
    if states != {k: v for k, v in want.items() if v}:
        return [f"central's cases by state are {states}, expected {want}"]
    return []


def moved_bytes(root: Path, codes: list[str], since: int) -> int:
    """Bytes of the records every store received from another since ``since`` (sim time)."""
    total = 0
    for path in [root / "central" / "central.db", *(root / code / "node.db" for code in codes)]:
        conn = sqlite3.connect(path)
        try:
            total += conn.execute(
                "SELECT coalesce(sum(length(envelope)), 0) FROM records"
                " WHERE received_at >= ? AND source NOT IN ('local', 'bundle')",
                (since,),
            ).fetchone()[0]
        finally:
            conn.close()
    return int(total)


@dataclass
class IngestFigures:
    records: int
    rate: float
    verify_rate: float
    decode_rate: float
    write_rate: float
    cores: int
    cpu_s: float
    """CPU time of the replay, every thread of the process."""

    @property
    def ratio(self) -> float:
        return self.rate / self.verify_rate

    @property
    def ceiling(self) -> float:
        """The best rate ``cores`` cores could reach with verify, decode and writes alone."""
        return self.cores * 1e6 / self.floors_us

    @property
    def ceiling_ratio(self) -> float:
        return self.ceiling / self.verify_rate

    @property
    def cpu_us(self) -> float:
        """CPU a record the replay took, in µs."""
        return 1e6 * self.cpu_s / self.records

    @property
    def floors_us(self) -> float:
        """CPU a record of verify, decode and writes alone, in µs."""
        return 1e6 * (1 / self.verify_rate + 1 / self.decode_rate + 1 / self.write_rate)


def central_ingest(root: Path, snapshot: Path, after: int, at: int) -> IngestFigures:
    """Replay central's arrivals after ``after`` into a copy of ``snapshot`` (module docstring)."""
    copy = snapshot.with_name(snapshot.name + "-replay")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(snapshot, copy)
    conn = sqlite3.connect(root / "central" / "central.db")
    try:
        rows: list[tuple[bytes, str]] = [
            (bytes(e), s)
            for e, s in conn.execute(
                "SELECT envelope, source FROM records WHERE arrival > ? AND source != 'local'"
                " ORDER BY arrival",
                (after,),
            )
        ]
        keys = {
            (code, bytes(kid)): bytes(pk)
            for code, kid, pk in conn.execute("SELECT code, kid, sign_pk FROM certs")
        }
    finally:
        conn.close()
    batches = _batches(rows)
    opened = open_home(copy, SimClock(at))
    verifier = ThreadVerifier()
    try:
        link = ParentLink(opened.log, opened.code, opened.keys, verifier)
        appended = 0
        started, cpu = time.perf_counter(), time.process_time()
        for source, batch in batches:
            with transaction(opened.log.db):
                committed = link.commit_batch(batch, source)
            appended += committed.counts.get("appended", 0)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        verifier.close()
        opened.close()
    if appended != len(rows):
        raise RuntimeError(f"central's replay appended {appended} of {len(rows)} records")
    envelopes = [e for e, _ in rows]
    return IngestFigures(
        records=len(rows),
        rate=len(rows) / elapsed,
        verify_rate=_verify_rate(envelopes, keys),
        decode_rate=_decode_rate(envelopes),
        write_rate=_write_rate(snapshot, copy, after, [len(batch) for _, batch in batches]),
        cores=len(os.sched_getaffinity(0)),
        cpu_s=cpu,
    )


def _batches(rows: list[tuple[bytes, str]]) -> list[tuple[str, list[bytes]]]:
    out: list[tuple[str, list[bytes]]] = []
    for envelope, source in rows:
        if out and out[-1][0] == source and len(out[-1][1]) < BATCH_RECORDS:
            out[-1][1].append(envelope)
        else:
            out.append((source, [envelope]))
    return out


def _verify_rate(envelopes: list[bytes], keys: dict[tuple[str, bytes], bytes]) -> float:
    from sync.record.envelope import read_header

    jobs: list[tuple[Any, bytes, bytes]] = []
    verify_keys: dict[bytes, VerifyKey] = {}
    for envelope in envelopes:
        payload, sig = split(envelope)
        header = read_header(payload)
        pk = keys[(header.origin, header.kid)]
        key = verify_keys.setdefault(pk, VerifyKey(pk))
        jobs.append((key, PREFIX_RECORD + payload, sig))
    started = time.perf_counter()
    for key, message, sig in jobs:
        key.verify(message, sig)
    return len(jobs) / (time.perf_counter() - started)


def _decode_rate(envelopes: list[bytes]) -> float:
    """Records per second through the strict decode and the body check alone, one core."""
    started = time.perf_counter()
    for envelope in envelopes:
        payload = parse(envelope).payload
        assert payload is not None
        kinds.check(payload.kind, payload.body)
    return len(envelopes) / (time.perf_counter() - started)


def _write_rate(snapshot: Path, replayed: Path, after: int, sizes: list[int]) -> float:
    """Records per second through the writes alone: the rows that ``replayed`` gained
    after arrival ``after`` — records, cases taken in, case events, and each event's
    update of its case — written into another copy of ``snapshot``, in batches of
    ``sizes`` records, one transaction each, with ``executemany``. Smaller tables (link
    state, node status) are left out: a floor, not the whole. Every update must find its
    case, and afterwards the three tables must equal the replay's, row for row."""
    done = sqlite3.connect(replayed / "central.db")
    try:
        records = done.execute(
            "SELECT id, origin, seq, kind, kid, ts, actor, envelope, received_at, source FROM records"
            " WHERE arrival > ? ORDER BY arrival",
            (after,),
        ).fetchall()
        if sum(sizes) != len(records):
            raise RuntimeError(f"batches of {sum(sizes)} records for {len(records)} replayed")
        ids = [row[0] for row in records]
        case_columns = _columns(done, "cases")
        intake = case_columns.index("intake_id")
        cases = {row[intake]: row for row in done.execute("SELECT * FROM cases")}
        event_columns = _columns(done, "case_events")
        event_id, event_case = event_columns.index("record_id"), event_columns.index("case_no")
        events = {
            row[event_id]: row
            for row in done.execute(
                "SELECT * FROM case_events WHERE record_id IN (SELECT id FROM records WHERE arrival > ?)",
                (after,),
            )
        }
        states = {
            row[0]: row[1:]
            for row in done.execute(
                "SELECT case_no, state, rating, comment, delivery, decided_at, closed_at, missing,"
                " paused_since, paused_days, deadline, events FROM cases"
            )
        }
    finally:
        done.close()
    target = snapshot.with_name(snapshot.name + "-writes")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(snapshot, target)
    conn = sqlite3.connect(target / "central.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # as every store runs (sync.record.db)
        conn.execute("PRAGMA synchronous = NORMAL")
        case_no = case_columns.index("case_no")
        present = {row[0] for row in conn.execute("SELECT case_no FROM cases")}
        updates = expected = 0
        started = time.perf_counter()
        position = 0
        for size in sizes:
            batch = ids[position : position + size]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO records (id, origin, seq, kind, kid, ts, actor, envelope, received_at, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                records[position : position + size],
            )
            taken = [cases[rid] for rid in batch if rid in cases]
            conn.executemany(f"INSERT INTO cases VALUES ({', '.join('?' * len(case_columns))})", taken)
            happened = [events[rid] for rid in batch if rid in events]
            conn.executemany(
                f"INSERT INTO case_events VALUES ({', '.join('?' * len(event_columns))})", happened
            )
            # An event whose case is not taken in yet changes no case (it waits, pending).
            present.update(row[case_no] for row in taken)
            moved = [(*states[e[event_case]], e[event_case]) for e in happened if e[event_case] in present]
            updates += conn.executemany(
                "UPDATE cases SET state = ?, rating = ?, comment = ?, delivery = ?, decided_at = ?,"
                " closed_at = ?, missing = ?, paused_since = ?, paused_days = ?, deadline = ?, events = ?"
                " WHERE case_no = ?",
                moved,
            ).rowcount
            expected += len(moved)
            conn.execute("COMMIT")
            position += size
        rate = len(records) / (time.perf_counter() - started)
        if updates != expected:
            raise RuntimeError(f"the writes alone updated {updates} cases for {expected} events")
        conn.execute("ATTACH DATABASE ? AS replayed", (str(replayed / "central.db"),))
        for table in ("records", "cases", "case_events"):
            ours, theirs = f"SELECT * FROM main.{table}", f"SELECT * FROM replayed.{table}"
            differ = conn.execute(
                f"SELECT count(*) FROM ({ours} EXCEPT {theirs})"
                f" UNION ALL SELECT count(*) FROM ({theirs} EXCEPT {ours})"
            ).fetchall()
            if differ != [(0,), (0,)]:
                raise RuntimeError(f"the writes alone left {table} other than the replay did")
        return rate
    finally:
        conn.close()
        shutil.rmtree(target, ignore_errors=True)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
