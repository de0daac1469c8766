"""After the run: the end state checked, and central's ingest measured against bare verify.

``verify_all`` re-verifies every store from its signed bytes (:func:`sync.inspect.verify_store`:
every signature, chain link, certificate and authority, and every projection table equal
to a rebuild from the log), two stores at a time. ``cases_at_central`` checks that central
holds every case of the month in the state the month left it in.

``central_ingest`` replays what central received while the city converged — the same
records, in the order they arrived, in batches of at most :data:`BATCH_RECORDS` from one
sender — into a copy of central's store as it was when the links came back, through the
commit path its sync endpoint uses (:meth:`sync.link_store.ParentLink.commit_batch`,
signatures on a :class:`sync.ingest.ThreadVerifier`). The baseline is PyNaCl's
``VerifyKey.verify`` over the same signed bytes, one after the other, on one core.
"""

from __future__ import annotations

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
from sync.db import transaction
from sync.envelope import PREFIX_RECORD, split
from sync.ingest import ThreadVerifier
from sync.inspect import verify_store
from sync.link_store import ParentLink
from sync.protocol import BATCH_RECORDS
from tongban.sync_cli import open_home


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
    report = verify_store(Path(path), CENTRAL_SETS if central else NODE_SETS, SimClock(at))
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

    @property
    def ratio(self) -> float:
        return self.rate / self.verify_rate


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
        started = time.perf_counter()
        for source, batch in batches:
            with transaction(opened.log.db):
                committed = link.commit_batch(batch, source)
            appended += committed.counts.get("appended", 0)
        elapsed = time.perf_counter() - started
    finally:
        verifier.close()
        opened.close()
    if appended != len(rows):
        raise RuntimeError(f"central's replay appended {appended} of {len(rows)} records")
    return IngestFigures(len(rows), len(rows) / elapsed, _verify_rate([e for e, _ in rows], keys))


def _batches(rows: list[tuple[bytes, str]]) -> list[tuple[str, list[bytes]]]:
    out: list[tuple[str, list[bytes]]] = []
    for envelope, source in rows:
        if out and out[-1][0] == source and len(out[-1][1]) < BATCH_RECORDS:
            out[-1][1].append(envelope)
        else:
            out.append((source, [envelope]))
    return out


def _verify_rate(envelopes: list[bytes], keys: dict[tuple[str, bytes], bytes]) -> float:
    from sync.envelope import read_header

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
