"""The sync link's tables in a node's or central's SQLite store, and what both sides share.

This module owns the link's tables (:data:`LINK_TABLES`: ``link_checkpoints``,
``link_peers``, ``link_rejections``, ``link_state``) and the reads and writes both sides of
a session make (:class:`LinkStore`), and the child's own view of its link
(:func:`link_state`, :func:`set_state`, :func:`waiting_up`). The two sides are
:class:`sync.link.child_store.ChildLink` and :class:`sync.link.parent_store.ParentLink`,
implementing :class:`sync.link.session.ChildStore` and :class:`sync.link.session.ParentStore`;
which records concern a child is :mod:`sync.link.scopes`. Each write is one transaction:
a batch of records together with the checkpoint and the rejection counters it moves.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from core.admin import within
from sync.link.flow import Committed
from sync.record.db import transaction
from sync.record.log import DensePolicy, RecordLog, dense_for
from sync.record.outcome import Heads, Status
from sync.record.verify import SERIAL, Verifier

SCAN_ROWS = 2000
"""Rows a scan of ``records`` reads at a time."""


class LinkStore:
    """What both sides of a link read and write in one store: heads, arrivals, fork
    probes, a batch ingested and the rejections it counts."""

    def __init__(self, log: RecordLog, code: str, verifier: Verifier = SERIAL) -> None:
        self.log = log
        self.db: Database = log.db
        self.conn = log.db.conn
        self.code = code
        self.verifier = verifier
        anchor = log.require_anchor()
        self.root = anchor.origin
        self.dense: DensePolicy = dense_for(code, self.root)

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
        codes = {row[0] for row in self.conn.execute("SELECT DISTINCT code FROM certs")}
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
        self, records: list[bytes], source: str, admit: Callable[[str], bool] | None = None
    ) -> Committed:
        """Ingest ``records`` in the caller's transaction; what an ACK reports."""
        before = self.arrivals()
        outcomes = self.log.ingest_many(records, source, verifier=self.verifier, admit=admit)
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
        return Committed(counts, codes, heads)

    def count_rejections(self, peer: str, codes: dict[str, int]) -> None:
        now = self.log.clock.now()
        for code, times in codes.items():
            self.conn.execute(
                "INSERT INTO link_rejections (peer, code, times, last_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (peer, code) DO UPDATE SET times = times + excluded.times,"
                " last_at = excluded.last_at",
                (peer, code, times, now),
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


def waiting_up(db: Database, code: str, *, exclude: tuple[str, ...] = ()) -> int:
    """Records of ``code``'s subtree that arrived after what the parent acknowledged."""
    acked = link_state(db).up_acked
    marks = ",".join("?" * len(exclude))
    rows = db.conn.execute(
        "SELECT origin, count(*) FROM records WHERE arrival > ?"
        + (f" AND kind NOT IN ({marks})" if exclude else "")
        + " GROUP BY origin",
        (acked, *exclude),
    ).fetchall()
    return sum(n for origin, n in rows if within(origin, code))


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
