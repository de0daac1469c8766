"""What a sync session reads and writes, over a node's or central's SQLite store.

:class:`ChildLink` and :class:`ParentLink` implement :class:`sync.link.session.ChildStore` and
:class:`sync.link.session.ParentStore`. Each write is one transaction: a batch of records
together with the checkpoint and the rejection counters it moves.

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

import functools
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from core.admin import within
from core.errors import ErrorCode
from sync.link.flow import BARRIER, Batch, Committed, batches, scanned
from sync.link.protocol import BATCH_RECORDS, Phase
from sync.link.session import Summary
from sync.record import codec, kinds
from sync.record.db import transaction
from sync.record.envelope import Signer
from sync.record.log import DensePolicy, RecordLog, decode_stored, dense_for
from sync.record.outcome import Heads, Status
from sync.record.verify import SERIAL, Verifier

SCAN_ROWS = 2000
ORIGIN_SCOPED = frozenset({kinds.NODE_ENROLLED, kinds.CLERK_SET, kinds.LINK_RECEIPT, kinds.NODE_STATUS})
"""Kinds that concern their origin's subtree only: the columns decide, no body is read.
Any other kind (a grant, a case step, a kind added later) is decided by its body."""
SCOPES_KEPT = 1 << 20
"""Arrivals whose scope a parent remembers, the newest (see :class:`Scopes`)."""


class Scopes:
    """The scope of each body-scoped record a parent holds, by arrival: decoded once per
    parent, not once per child that scans it (a record's scope never changes, nor its
    arrival in a store). Two bytes per arrival over a window of :data:`SCOPES_KEPT`
    arrivals, and the few hundred distinct scopes (node codes) once each: a dictionary by
    record id took 135 bytes a record, 7 MB at central after a month of a whole city."""

    def __init__(self, window: int = SCOPES_KEPT) -> None:
        self.window = window
        self.base = 0
        self.ids = array("H")
        self.names: list[str | None] = [None]  # id 0: not known yet
        self.known: dict[str | None, int] = {}

    def get(self, arrival: int) -> tuple[bool, str | None]:
        """(known, scope) of the record at ``arrival``."""
        at = arrival - self.base
        if 0 <= at < len(self.ids) and self.ids[at]:
            return True, self.names[self.ids[at]]
        return False, None

    def put(self, arrival: int, scope: str | None) -> None:
        if arrival < self.base:
            return
        if scope not in self.known:
            if len(self.names) >= 0xFFFF:
                return  # more scopes than a city has nodes: not kept
            self.known[scope] = len(self.names)
            self.names.append(scope)
        at = arrival - self.base
        if at >= self.window:  # slide: keep the newest three quarters
            drop = at - self.window * 3 // 4
            del self.ids[: min(drop, len(self.ids))]
            self.base += drop
            at -= drop
        if at >= len(self.ids):
            self.ids.frombytes(bytes(2 * (at + 1 - len(self.ids))))
        self.ids[at] = self.known[scope]


class _Link:
    """Shared reading helpers over one store."""

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


class ChildLink(_Link):
    """The child's side of its link to its parent (or to central, directly or as fallback)."""

    def __init__(self, log: RecordLog, code: str, cert_id: bytes, verifier: Verifier = SERIAL) -> None:
        super().__init__(log, code, verifier)
        self.cert_id = cert_id
        self.mine = self.origins_within(code)

    def hello_heads(self) -> Heads:
        return self.heads_of(self.mine)

    def backlog(self) -> int:
        """Records of this node's subtree that wait to go up (status reports not counted)."""
        return waiting_up(self.db, self.code, exclude=(kinds.NODE_STATUS,))

    def up_batches(self, up_from: int, parent_heads: Heads) -> Iterator[Batch]:
        """Probes, then the arrival scan, then (after every ACK) what the heads still miss."""
        subtree = {o for o in self.mine if o != self.root}
        probes = self.probes(parent_heads, sorted(subtree))
        if probes:
            yield from batches(iter(probes))
        if up_from > self.arrivals():
            up_from = 0  # a checkpoint from a longer log than this one: not ours
        last = up_from
        while True:
            rows = self.conn.execute(
                "SELECT arrival, origin, seq, envelope FROM records WHERE arrival > ?"
                " ORDER BY arrival LIMIT ?",
                (last, SCAN_ROWS),
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            wanted = [
                (arrival, bytes(envelope))
                for arrival, origin, seq, envelope in rows
                if origin in subtree and seq > parent_heads.get(origin, (0, b""))[0]
            ]
            yield from batches(iter(wanted))
            yield scanned(last)
        yield BARRIER
        for origin in sorted(subtree):
            have = parent_heads.get(origin, (0, b""))[0]
            rows = self.conn.execute(
                "SELECT arrival, envelope FROM records WHERE origin = ? AND seq > ? ORDER BY seq",
                (origin, have),
            ).fetchall()
            yield from batches((a, bytes(e)) for a, e in rows)

    def commit(self, phase: Phase, records: list[bytes], source: str) -> Committed:
        with transaction(self.db):
            done = self.commit_batch(records, source)
            if done.codes:
                self.count_rejections(source, done.codes)
        return done

    def note(self, event: str, **values: Any) -> None:
        """Keep the link's status for the operator (and the clerk UI's sync line)."""
        now = self.log.clock.now()
        if event == "welcome":
            self.set_state(last_attempt=now, down_pending=values["pending"])
        elif event == "up acked":
            self.set_state(up_acked=values["upto"])
        elif event == "down done":
            self.set_state(down_pending=0)
        elif event == "done":
            summary: Summary = values["summary"]
            self.set_state(
                last_ok=now, last_error="", up_acked=self.arrivals_acked(), last_summary=_text(summary)
            )

    def arrivals_acked(self) -> int:
        return self.arrivals()

    def set_state(self, **values: Any) -> None:
        set_state(self.db, values)


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


def _text(summary: Summary) -> str:
    rejected = ",".join(f"{code}:{n}" for code, n in sorted(summary.rejected.items()))
    return f"up={summary.up} down={summary.down} rejected={rejected or '-'}"


class ParentLink(_Link):
    """The parent's side: what it tells and sends a child, and what it keeps of the link."""

    def __init__(
        self, log: RecordLog, code: str, signer: Signer | None = None, verifier: Verifier = SERIAL
    ) -> None:
        super().__init__(log, code, verifier)
        self.signer = signer
        self._scopes = Scopes()

    def welcome_heads(self, child: str) -> Heads:
        return self.heads_of(self.origins_within(child))

    def _checkpoint(self, child: str, cert: bytes, direction: str) -> int:
        row = self.conn.execute(
            "SELECT arrival FROM link_checkpoints WHERE peer = ? AND cert = ? AND direction = ?",
            (child, cert, direction),
        ).fetchone()
        return int(row[0]) if row else 0

    def _advance(
        self, child: str, cert: bytes, direction: str, arrival: int, *, rewind: bool = False
    ) -> None:
        keep = "excluded.arrival" if rewind else "max(arrival, excluded.arrival)"
        self.conn.execute(
            "INSERT INTO link_checkpoints (peer, cert, direction, arrival, updated_at) VALUES (?, ?, ?, ?, ?)"
            f" ON CONFLICT (peer, cert, direction) DO UPDATE SET arrival = {keep},"
            " updated_at = excluded.updated_at",
            (child, cert, direction, arrival, self.log.clock.now()),
        )

    def up_checkpoint(self, child: str, cert: bytes, arrivals: int) -> int:
        stored = self._checkpoint(child, cert, "up")
        return stored if stored <= arrivals else 0

    def pending(self, child: str, cert: bytes) -> int:
        return max(0, self.arrivals() - self._checkpoint(child, cert, "down"))

    def rev_batches(self, child: str, child_heads: Heads) -> Iterator[Batch]:
        """The root's chain the child lacks, whole: every revocation, catalog release, key
        and root grant central signed reaches the child before anything else moves."""
        have = child_heads.get(self.root, (0, b""))[0]
        while True:
            rows = self.conn.execute(
                "SELECT seq, arrival, envelope FROM records WHERE origin = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (self.root, have, SCAN_ROWS),
            ).fetchall()
            if not rows:
                return
            have = rows[-1][0]
            yield from batches((a, bytes(e)) for _, a, e in rows)

    def down_batches(
        self, child: str, cert: bytes, child_heads: Heads, hello_heads: Heads
    ) -> Iterator[Batch]:
        """Fork probes, then the arrivals after the checkpoint that concern ``child``
        (``child_heads`` as they are now; ``hello_heads`` as the hello told them)."""
        probes = self.probes(child_heads, self.origins_within(child))
        if probes:
            yield from batches(iter(probes))
        last = self._checkpoint(child, cert, "down")
        if last > self.arrivals() or self._regressed(child, cert, hello_heads):
            # Not to be trusted: a checkpoint from a longer log than this one (a store
            # restored from a copy), or a child that held less at its hello than it did
            # (the revocations phase has moved its root since). Scan from the start and
            # let the ACKs set it anew; kept, it would skip what arrives below it.
            last = 0
            with transaction(self.db):
                self._advance(child, cert, "down", 0, rewind=True)
        child_dense = functools.cache(dense_for(child, self.root))
        while True:
            # The scan reads no envelopes: a parent serves many children at once, and each
            # session's scan waits on its child's ACKs. Only what is sent is read, a batch
            # at a time.
            rows = self.conn.execute(
                "SELECT arrival, origin, seq, kind FROM records WHERE arrival > ? ORDER BY arrival LIMIT ?",
                (last, SCAN_ROWS),
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            wanted = [
                arrival
                for arrival, origin, seq, kind in rows
                if not (child_dense(origin) and seq <= child_heads.get(origin, (0, b""))[0])
                and self._concerns(origin, kind, arrival, child)
            ]
            yield from batches(self._envelopes(wanted))
            yield scanned(last)

    def _envelopes(self, arrivals: list[int]) -> Iterator[tuple[int, bytes]]:
        """(arrival, envelope) of ``arrivals`` (ascending), read a batch's worth at a time."""
        for start in range(0, len(arrivals), BATCH_RECORDS):
            part = arrivals[start : start + BATCH_RECORDS]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT arrival, envelope FROM records WHERE arrival IN ({marks}) ORDER BY arrival", part
            ).fetchall()
            yield from ((arrival, bytes(envelope)) for arrival, envelope in rows)

    def _concerns(self, origin: str, kind: str, arrival: int, child: str) -> bool:
        if origin == self.root or within(origin, child):
            # The child holds these origins whole: it must never see a gap in them.
            return True
        if kind in kinds.ROOT_SCOPED:
            return True
        if kind in ORIGIN_SCOPED:
            return False
        # kinds.concerns for a record not of the root, by the record's remembered scope.
        return kinds.reaches(kind, self._scope(kind, origin, arrival), child)

    def _scope(self, kind: str, origin: str, arrival: int) -> str | None:
        """:func:`sync.record.kinds.scope_of` of a stored record, decoded once per parent, not once
        per child that scans it: a record's scope never changes."""
        known, scope = self._scopes.get(arrival)
        if known:
            return scope
        row = self.conn.execute("SELECT envelope FROM records WHERE arrival = ?", (arrival,)).fetchone()
        scope = kinds.scope_of(kind, origin, decode_stored(bytes(row[0])).body)
        self._scopes.put(arrival, scope)
        return scope

    def _regressed(self, child: str, cert: bytes, child_heads: Heads) -> bool:
        """Whether the child now holds less of the root than it once reported (a store
        restored from a copy): then the down checkpoint is not to be trusted."""
        row = self.conn.execute(
            "SELECT heads FROM link_peers WHERE peer = ? AND cert = ?", (child, cert)
        ).fetchone()
        if row is None:
            return False
        before = codec.decode(bytes(row[0]))
        root_before = before.get(self.root, 0)
        return bool(child_heads.get(self.root, (0, b""))[0] < root_before)

    def commit_up(self, child: str, cert: bytes, records: list[bytes], upto: int) -> Committed:
        with transaction(self.db):
            # A child sends up what its subtree authored, and nothing else.
            done = self.commit_batch(records, child, admit=lambda origin: within(origin, child))
            self._advance(child, cert, "up", upto)
            if done.codes:
                self.count_rejections(child, done.codes)
        return done

    def down_acked(self, child: str, cert: bytes, upto: int) -> None:
        with transaction(self.db):
            self._advance(child, cert, "down", upto)

    def receipt(self, child: str, cert: bytes) -> bytes | None:
        """Sign the child's head as this store now holds it, if it moved since the last receipt."""
        if self.signer is None:
            return None
        head = self.log.head(child)
        if head is None:
            return None
        row = self.conn.execute("SELECT max(receipt_seq) FROM link_peers WHERE peer = ?", (child,)).fetchone()
        if row[0] is not None and row[0] >= head.seq:
            return None
        with transaction(self.db):
            record = self.log.append_local(
                self.signer,
                self.code,
                kinds.LINK_RECEIPT,
                {"child": child, "seq": head.seq, "id": head.id, "at": self.log.clock.now()},
                actor="sys:sync",
            )
            self.conn.execute(
                "INSERT INTO link_peers (peer, cert, heads, last_seen, receipt_seq) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (peer, cert) DO UPDATE SET receipt_seq = excluded.receipt_seq",
                (child, cert, codec.encode({}), self.log.clock.now(), head.seq),
            )
        return record.envelope

    def seen(self, child: str, cert: bytes, heads: Heads) -> None:
        """Remember what the child reported at the end of a session (see :meth:`_regressed`)."""
        compact = {origin: seq for origin, (seq, _) in heads.items()}
        with transaction(self.db):
            self.conn.execute(
                "INSERT INTO link_peers (peer, cert, heads, last_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (peer, cert) DO UPDATE SET heads = excluded.heads,"
                " last_seen = excluded.last_seen",
                (child, cert, codec.encode(compact), self.log.clock.now()),
            )

    def count_protocol_error(self, peer: str, code: ErrorCode) -> None:
        with transaction(self.db):
            self.count_rejections(peer, {code.value: 1})


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
