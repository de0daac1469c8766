"""Every SQL statement of the sync link: its tables, and its scans of the log.

This module owns the link's tables (:data:`LINK_TABLES`: ``link_checkpoints``,
``link_peers``, ``link_rejections``, ``link_state``; :data:`EVIDENCE_TABLES`:
``link_evidence``) and runs the link's reads of the log it serves (``records``, by arrival
and by chain: that is what it sends). :class:`LinkStore` has them for one store, the
child's own view of its link is :func:`link_state`, :func:`set_state` and
:func:`parent_view` (what it lacks at its parent is :mod:`sync.link.agreement`'s). The two
sides of a session build on :class:`LinkStore`: :class:`sync.link.child_link.ChildLink` and
:class:`sync.link.parent_link.ParentLink`, implementing :class:`sync.link.session.ChildStore`
and :class:`sync.link.session.ParentStore`; which records concern a child is
:mod:`sync.link.scopes`. Each write is one transaction: a batch of records together with
the checkpoint and the rejection counters it moves.

Where the checkpoints live, and why (``docs/sync-protocol.md``): both directions' at the
parent, in ``link_checkpoints``, keyed by the child's certificate. The up checkpoint is
committed with the records it covers; the down checkpoint describes the parent's own
arrival numbers. A parent restored from an older copy therefore rewinds both together
with what they describe, and neither direction can skip a record. A checkpoint can still
be wrong — a child's store restored, a re-enrolled child — so nothing relies on it alone:
the heads exchanged in HELLO and WELCOME and returned in every ACK filter what is sent,
and the child finishes the up phase by sending any seq the parent's heads still lack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from core.admin import within
from sync.link.flow import Committed
from sync.record import codec, kinds, trust
from sync.record.db import transaction
from sync.record.log import DensePolicy, RecordLog, dense_for
from sync.record.outcome import Heads, Outcome, Status
from sync.record.verify import SERIAL, Verifier

SCAN_ROWS = 2000
"""Rows a scan of ``records`` reads at a time."""

Row = tuple[Any, ...]


class LinkStore:
    """The link's reads and writes in one store, for both sides of a session: the log as a
    link scans it, the checkpoints, what each child reported, the rejection counters."""

    def __init__(self, log: RecordLog, code: str, verifier: Verifier = SERIAL) -> None:
        self.log = log
        self.db: Database = log.db
        self.conn = log.db.conn
        self.code = code
        self.verifier = verifier
        anchor = log.require_anchor()
        self.root = anchor.origin
        self.dense: DensePolicy = dense_for(code, self.root)

    # -- the log, as a link reads it ---------------------------------------------------------

    def heads_of(self, origins: list[str]) -> Heads:
        heads: Heads = {}
        for origin in origins:
            row = self.conn.execute(
                "SELECT seq, id FROM records WHERE origin = ? ORDER BY seq DESC LIMIT 1", (origin,)
            ).fetchone()
            if row is not None:
                heads[origin] = (row[0], bytes(row[1]))
        return heads

    def origins_within(self, ancestor: str) -> list[str]:
        """Every certified code in ``ancestor``'s subtree, plus the root."""
        codes = trust.certified_codes(self.db)
        return sorted({self.root} | {c for c in codes if within(c, ancestor)})

    def root_seq(self) -> int:
        """How far this store holds the root's chain."""
        return self.heads_of([self.root]).get(self.root, (0, b""))[0]

    def arrivals(self) -> int:
        row = self.conn.execute("SELECT max(arrival) FROM records").fetchone()
        return int(row[0] or 0)

    def record_at(self, origin: str, seq: int) -> tuple[int, bytes, bytes] | None:
        row = self.conn.execute(
            "SELECT arrival, id, envelope FROM records WHERE origin = ? AND seq = ?", (origin, seq)
        ).fetchone()
        return (row[0], bytes(row[1]), bytes(row[2])) if row else None

    def envelope_at(self, arrival: int) -> bytes:
        row = self.conn.execute("SELECT envelope FROM records WHERE arrival = ?", (arrival,)).fetchone()
        return bytes(row[0])

    def envelopes_at(self, arrivals: list[int]) -> list[tuple[int, bytes]]:
        """(arrival, envelope) of ``arrivals``, by arrival."""
        marks = ",".join("?" * len(arrivals))
        rows = self.conn.execute(
            f"SELECT arrival, envelope FROM records WHERE arrival IN ({marks}) ORDER BY arrival", arrivals
        ).fetchall()
        return [(arrival, bytes(envelope)) for arrival, envelope in rows]

    def arrived_after(self, arrival: int) -> list[Row]:
        """(arrival, origin, seq, envelope) of the next :data:`SCAN_ROWS` arrivals."""
        rows: list[Row] = self.conn.execute(
            "SELECT arrival, origin, seq, envelope FROM records WHERE arrival > ? ORDER BY arrival LIMIT ?",
            (arrival, SCAN_ROWS),
        ).fetchall()
        return rows

    def columns_after(self, arrival: int) -> list[Row]:
        """(arrival, origin, seq, kind) of the next :data:`SCAN_ROWS` arrivals: no envelopes,
        for a scan that reads only what it sends."""
        rows: list[Row] = self.conn.execute(
            "SELECT arrival, origin, seq, kind FROM records WHERE arrival > ? ORDER BY arrival LIMIT ?",
            (arrival, SCAN_ROWS),
        ).fetchall()
        return rows

    def chain_after(self, origin: str, seq: int) -> list[tuple[int, bytes]]:
        """(arrival, envelope) of ``origin``'s records after ``seq``, in chain order."""
        rows = self.conn.execute(
            "SELECT arrival, envelope FROM records WHERE origin = ? AND seq > ? ORDER BY seq",
            (origin, seq),
        ).fetchall()
        return [(arrival, bytes(envelope)) for arrival, envelope in rows]

    def chain_page(self, origin: str, seq: int) -> list[Row]:
        """(seq, arrival, envelope) of the next :data:`SCAN_ROWS` of ``origin``'s records
        after ``seq``, in chain order."""
        rows: list[Row] = self.conn.execute(
            "SELECT seq, arrival, envelope FROM records WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?",
            (origin, seq, SCAN_ROWS),
        ).fetchall()
        return rows

    def probes(self, theirs: Heads, mine: list[str]) -> list[tuple[int, bytes]]:
        """My records at the seqs where the peer's head names another id: fork evidence."""
        found = []
        for origin, (seq, rid) in theirs.items():
            if origin not in mine:
                continue
            held = self.record_at(origin, seq)
            if held is not None and held[1] != rid:
                found.append((held[0], held[2]))
        return found

    def commit_batch(
        self,
        records: list[bytes],
        source: str,
        admit: Callable[[str], bool] | None = None,
        signed: tuple[str, int] | None = None,
    ) -> Committed:
        """Ingest ``records`` in the caller's transaction; what an ACK reports."""
        before = self.arrivals()
        outcomes = self.log.ingest_many(records, source, verifier=self.verifier, admit=admit, signed=signed)
        counts: dict[str, int] = {}
        codes: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
            if outcome.status in (Status.REJECTED, Status.FORK) and outcome.code is not None:
                codes[outcome.code.value] = codes.get(outcome.code.value, 0) + 1
        touched = [
            row[0]
            for row in self.conn.execute("SELECT DISTINCT origin FROM records WHERE arrival > ?", (before,))
        ]
        heads = self.heads_of([o for o in touched if self.dense(o)])
        again = sum(1 for outcome in outcomes if outcome.again)
        return Committed(counts, codes, heads, again, self._newest_held(outcomes))

    def _newest_held(self, outcomes: list[Outcome]) -> Heads:
        """The newest record of each origin among ``outcomes`` that this store holds."""
        ids = [
            o.record_id for o in outcomes if o.status in (Status.APPENDED, Status.DUPLICATE) and o.record_id
        ]
        held: Heads = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self.conn.execute(
                f"SELECT origin, seq, id FROM records WHERE id IN ({','.join('?' * len(part))})", part
            ).fetchall()
            for origin, seq, rid in rows:
                if seq > held.get(origin, (0, b""))[0]:
                    held[origin] = (seq, bytes(rid))
        return held

    # -- the link's tables -------------------------------------------------------------------

    def count_rejections(self, peer: str, codes: dict[str, int]) -> None:
        now = self.log.clock.now()
        for code, times in codes.items():
            self.conn.execute(
                "INSERT INTO link_rejections (peer, code, times, last_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (peer, code) DO UPDATE SET times = times + excluded.times,"
                " last_at = excluded.last_at",
                (peer, code, times, now),
            )

    def checkpoint(self, child: str, cert: bytes, direction: str) -> int:
        """The ``"up"`` or ``"down"`` checkpoint of ``child``'s certificate (0: none yet)."""
        row = self.conn.execute(
            "SELECT arrival FROM link_checkpoints WHERE peer = ? AND cert = ? AND direction = ?",
            (child, cert, direction),
        ).fetchone()
        return int(row[0]) if row else 0

    def advance(self, child: str, cert: bytes, direction: str, arrival: int, *, rewind: bool = False) -> None:
        """Move a checkpoint forward to ``arrival`` (or set it there, ``rewind``), in the
        caller's transaction."""
        keep = "excluded.arrival" if rewind else "max(arrival, excluded.arrival)"
        self.conn.execute(
            "INSERT INTO link_checkpoints (peer, cert, direction, arrival, updated_at) VALUES (?, ?, ?, ?, ?)"
            f" ON CONFLICT (peer, cert, direction) DO UPDATE SET arrival = {keep},"
            " updated_at = excluded.updated_at",
            (child, cert, direction, arrival, self.log.clock.now()),
        )

    def reported_heads(self, child: str, cert: bytes) -> dict[str, int] | None:
        """The seq of each origin ``child`` held at the end of its last session, if one ended."""
        row = self.conn.execute(
            "SELECT heads FROM link_peers WHERE peer = ? AND cert = ?", (child, cert)
        ).fetchone()
        if row is None:
            return None
        heads: dict[str, int] = codec.decode(bytes(row[0]))
        return heads

    def note_reported(self, child: str, cert: bytes, heads: dict[str, int]) -> None:
        """Keep the seqs ``child`` reported at the end of a session."""
        with transaction(self.db):
            self.conn.execute(
                "INSERT INTO link_peers (peer, cert, heads, last_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (peer, cert) DO UPDATE SET heads = excluded.heads,"
                " last_seen = excluded.last_seen",
                (child, cert, codec.encode(heads), self.log.clock.now()),
            )

    def receipt_seq(self, child: str) -> int | None:
        """The seq of ``child``'s chain the newest receipt signed for it covers, if any."""
        row = self.conn.execute("SELECT max(receipt_seq) FROM link_peers WHERE peer = ?", (child,)).fetchone()
        return None if row[0] is None else int(row[0])

    def note_receipt(self, child: str, cert: bytes, seq: int) -> None:
        """Keep that a receipt for ``child`` covers ``seq``, in the caller's transaction."""
        self.conn.execute(
            "INSERT INTO link_peers (peer, cert, heads, last_seen, receipt_seq) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (peer, cert) DO UPDATE SET receipt_seq = excluded.receipt_seq",
            (child, cert, codec.encode({}), self.log.clock.now(), seq),
        )


def set_state(db: Database, values: dict[str, Any]) -> None:
    """Write ``link_state`` keys (the child's own view of its link, :func:`link_state`)."""
    with transaction(db):
        for key, value in values.items():
            db.conn.execute(
                "INSERT INTO link_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )


@dataclass(frozen=True)
class LinkState:
    """A child's view of its link to its parent, as its last sessions left it."""

    last_ok: int | None  # epoch s of the last session that ended well
    last_attempt: int | None
    last_error: str  # "" when the last attempt succeeded
    up_acked: int  # the child's arrival the parent has acknowledged
    down_pending: int | None  # what the parent had to send at the last welcome; None: never reached


def link_state(db: Database) -> LinkState:
    values = dict(db.conn.execute("SELECT key, value FROM link_state").fetchall())

    def number(key: str) -> int | None:
        return int(values[key]) if values.get(key) not in (None, "") else None

    return LinkState(
        last_ok=number("last_ok"),
        last_attempt=number("last_attempt"),
        last_error=values.get("last_error", ""),
        up_acked=number("up_acked") or 0,
        down_pending=number("down_pending"),
    )


def parent_view(db: Database) -> tuple[str, Heads] | None:
    """The parent this store last synced with and its heads as the session left them (the
    WELCOME's, updated by every ACK); None before a parent first welcomed it."""
    values = dict(
        db.conn.execute(
            "SELECT key, value FROM link_state WHERE key IN ('parent', 'parent_heads')"
        ).fetchall()
    )
    if "parent_heads" not in values:
        return None
    heads = {
        origin: (seq, bytes.fromhex(rid)) for origin, (seq, rid) in json.loads(values["parent_heads"]).items()
    }
    return values.get("parent", ""), heads


def parent_view_values(parent: str, heads: Heads) -> dict[str, str]:
    """The ``link_state`` values that keep ``parent``'s ``heads`` (:func:`parent_view`)."""
    written = {origin: [seq, rid.hex()] for origin, (seq, rid) in sorted(heads.items())}
    return {"parent": parent, "parent_heads": json.dumps(written, separators=(",", ":"))}


def id_at(db: Database, origin: str, seq: int) -> bytes | None:
    row = db.conn.execute("SELECT id FROM records WHERE origin = ? AND seq = ?", (origin, seq)).fetchone()
    return bytes(row[0]) if row else None


def head_seq(db: Database, origin: str) -> int:
    """The highest seq of ``origin`` held (0: none)."""
    row = db.conn.execute("SELECT max(seq) FROM records WHERE origin = ?", (origin,)).fetchone()
    return int(row[0] or 0)


def receipts_by(db: Database, witness: str, limit: int = 500) -> list[bytes]:
    """The newest ``limit`` receipts ``witness`` signed that this store holds, newest first."""
    rows = db.conn.execute(
        "SELECT envelope FROM records WHERE origin = ? AND kind = ? ORDER BY seq DESC LIMIT ?",
        (witness, kinds.LINK_RECEIPT, limit),
    ).fetchall()
    return [bytes(row[0]) for row in rows]


def count_after(
    db: Database,
    origin: str,
    seq: int,
    *,
    exclude: tuple[str, ...] = (),
    void: tuple[tuple[bytes, int], ...] = (),
) -> int:
    """``origin``'s records after ``seq``, leaving out the kinds ``exclude`` and the records
    of each (key, cut-off) of ``void`` past its cut-off (a revoked key's, refused everywhere)."""
    sql = "SELECT count(*) FROM records WHERE origin = ? AND seq > ?"
    params: list[Any] = [origin, seq]
    if exclude:
        sql += f" AND kind NOT IN ({','.join('?' * len(exclude))})"
        params += exclude
    for kid, last_good in void:
        sql += " AND NOT (kid = ? AND seq > ?)"
        params += [kid, last_good]
    return int(db.conn.execute(sql, params).fetchone()[0])


def peers_seen(db: Database) -> dict[str, tuple[int, dict[str, int]]]:
    """For each child that ended a session with this parent: when it last did, and the seq
    of each origin it held then (the newest of its certificates)."""
    seen: dict[str, tuple[int, dict[str, int]]] = {}
    for peer, heads, last_seen in db.conn.execute("SELECT peer, heads, last_seen FROM link_peers"):
        if peer not in seen or last_seen > seen[peer][0]:
            seen[peer] = (int(last_seen), codec.decode(bytes(heads)))
    return seen


# -- fork evidence carried up --------------------------------------------------------------


def evidence_delivered(db: Database, parent: str) -> set[bytes]:
    """The fork records (by id) this child has handed ``parent`` in a session that ended well."""
    rows = db.conn.execute("SELECT record_id FROM link_evidence WHERE peer = ?", (parent,))
    return {bytes(row[0]) for row in rows}


def note_evidence(db: Database, parent: str, ids: list[bytes], now: int) -> None:
    """Keep that ``parent`` acknowledged the fork records ``ids``."""
    with transaction(db):
        db.conn.executemany(
            "INSERT OR IGNORE INTO link_evidence (peer, record_id, sent_at) VALUES (?, ?, ?)",
            [(parent, rid, now) for rid in ids],
        )


LINK_TABLES = (
    """
    CREATE TABLE link_checkpoints (
        peer TEXT NOT NULL,
        cert BLOB NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('up', 'down')),
        arrival INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (peer, cert, direction)
    )
    """,
    """
    CREATE TABLE link_peers (
        peer TEXT NOT NULL,
        cert BLOB NOT NULL,
        heads BLOB NOT NULL,
        last_seen INTEGER NOT NULL,
        receipt_seq INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (peer, cert)
    )
    """,
    """
    CREATE TABLE link_rejections (
        peer TEXT NOT NULL,
        code TEXT NOT NULL,
        times INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        PRIMARY KEY (peer, code)
    )
    """,
    "CREATE TABLE link_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
"""Migration ``sync/0001_links``: the tables of sync links (see the module docstring)."""

EVIDENCE_TABLES = (
    """
    CREATE TABLE link_evidence (
        peer TEXT NOT NULL,
        record_id BLOB NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY (peer, record_id)
    )
    """,
)
"""Migration ``sync/0002_link_evidence``: the fork records a child has handed each parent,
so that both records of every fork reach central once (:mod:`sync.link.child_link`)."""
