"""Central's side of the cases that cross to another city, in its store.

Tables (central's migration ``0010_crossing`` creates them):

``peer_cases``
    one row per case and peer city it crosses to: our case number, the peer city, the
    direction (``out``: taken in at our window, the peer decides; ``in``: taken in at the
    peer's window, we decide), the peer's case number once known, when the case began on
    our side (our window's intake, or the moment our central accepted the peer's), the
    peer's acceptance time and deadline (``out``), and the last step that crossed, with
    when; the mode (``proxy_intake`` 代收代办: the whole case is the owning city's;
    ``joint_part`` 多地联办: one part of an application, :mod:`core.parts`) and, for a
    part, the part's item and catalog version in the city that decides it. A joint
    application has one ``out`` row per part's city.
``crossing_sent``
    every record of ours that was queued for a peer, with the peer, so that a replay of
    the log (a rebuild) queues nothing twice.
``peer_seen``
    the id of every foreign record admitted: a record carried again, under any link
    sequence, is ``E_PEER_REPLAY``.

:class:`CrossingProjector` runs at central in the transaction that stores each record,
like the department outbox's: a case step that must cross is queued on the link to the
peer (:mod:`central.peer_outbox`) exactly when it is in the log. An intake of ours with
parts is queued as a ``part`` message for each part's city; nothing else of such a case
crosses from our side (its own steps are our city's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central import peer_link_store, peer_outbox
from core.cases import DECISIONS, OPEN_STATES, Event, State, is_overdue
from core.federation import JOINT_PART, PROXY_INTAKE
from core.intake import Intake
from sync.projection import case_queries
from sync.projection.peers import peer_state, peer_states
from sync.record import codec, foreign, kinds
from sync.record.envelope import Record
from sync.record.log import anchor_of, decode_stored, envelopes_of_kind

OUT, IN = "out", "in"
INTAKE_SIDE = frozenset({Event.SUPPLY.value, Event.WITHDRAW.value, Event.PART_SUPPLY.value})
"""Steps the city that took the case in takes; they cross to the city that decides."""
DECIDER_SIDE = frozenset(e.value for e in DECISIONS)
"""Steps the deciding city takes; they cross back to the window's city."""


@dataclass(frozen=True)
class PeerCase:
    """A row of ``peer_cases``."""

    case_no: str
    peer: str
    direction: str
    their_case: str | None
    intake_id: bytes
    started: int
    accepted_at: int | None
    their_deadline: str | None
    last_step: str
    last_at: int
    mode: str = PROXY_INTAKE  # or JOINT_PART: one part of an application (core.parts)
    item: str = ""  # a part's item in the city that decides it ("" for a whole case)
    cat: int = 0  # that item's catalog version, as our cross-certification names it

    @property
    def joint(self) -> bool:
        return self.mode == JOINT_PART


_COLUMNS = (
    "case_no, peer, direction, their_case, intake_id, started, accepted_at, their_deadline,"
    " last_step, last_at, mode, item, cat"
)


def newest_release(db: Database, root: str) -> Record | None:
    """Central's newest catalog release, as stored."""
    ours = [r for r in map(decode_stored, envelopes_of_kind(db, kinds.CATALOG_RELEASE)) if r.origin == root]
    return max(ours, key=lambda r: r.seq, default=None)


def _row(row: Any) -> PeerCase | None:
    if row is None:
        return None
    case_no, peer, direction, their, intake_id, started, accepted, deadline, step, at, mode, item, cat = row
    return PeerCase(
        str(case_no),
        str(peer),
        str(direction),
        None if their is None else str(their),
        bytes(intake_id),
        int(started),
        None if accepted is None else int(accepted),
        None if deadline is None else str(deadline),
        str(step),
        int(at),
        str(mode),
        str(item),
        int(cat),
    )


def peer_case(db: Database, case_no: str, peer: str | None = None) -> PeerCase | None:
    """The crossing of ``case_no`` (to ``peer``; to the first peer by net when not named)."""
    return _row(
        db.conn.execute(
            f"SELECT {_COLUMNS} FROM peer_cases WHERE case_no = ? AND coalesce(?, peer) = peer"
            " ORDER BY peer LIMIT 1",
            (case_no, peer),
        ).fetchone()
    )


def peer_cases_of(db: Database, case_no: str) -> list[PeerCase]:
    """Every crossing of ``case_no``: one, or one per part's city of a joint application."""
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM peer_cases WHERE case_no = ? ORDER BY peer", (case_no,)
    ).fetchall()
    return [c for c in (_row(r) for r in rows) if c is not None]


def by_their_case(db: Database, peer: str, their_case: str, direction: str) -> PeerCase | None:
    return _row(
        db.conn.execute(
            f"SELECT {_COLUMNS} FROM peer_cases WHERE peer = ? AND their_case = ? AND direction = ?",
            (peer, their_case, direction),
        ).fetchone()
    )


def by_intake(db: Database, peer: str, intake_id: bytes) -> PeerCase | None:
    return _row(
        db.conn.execute(
            f"SELECT {_COLUMNS} FROM peer_cases WHERE peer = ? AND intake_id = ? AND direction = ?",
            (peer, intake_id, OUT),
        ).fetchone()
    )


def open_case(db: Database, case: PeerCase) -> None:
    db.conn.execute(
        f"INSERT OR IGNORE INTO peer_cases ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (case.case_no, case.peer, case.direction, case.their_case, case.intake_id, case.started,
         case.accepted_at, case.their_deadline, case.last_step, case.last_at, case.mode, case.item,
         case.cat),
    )  # fmt: skip


def note_step(db: Database, case_no: str, step: str, at: int, peer: str | None = None) -> None:
    """The last step of ``case_no`` that crossed (to ``peer``; to every peer when not named)."""
    db.conn.execute(
        "UPDATE peer_cases SET last_step = ?, last_at = ? WHERE case_no = ? AND coalesce(?, peer) = peer",
        (step, at, case_no, peer),
    )


def note_accepted(
    db: Database, case_no: str, their_case: str, at: int, deadline: str, peer: str | None = None
) -> None:
    db.conn.execute(
        "UPDATE peer_cases SET their_case = ?, accepted_at = ?, their_deadline = ?"
        " WHERE case_no = ? AND coalesce(?, peer) = peer",
        (their_case, at, deadline, case_no, peer),
    )


def seen(db: Database, record_id: bytes) -> bool:
    return db.conn.execute("SELECT 1 FROM peer_seen WHERE record_id = ?", (record_id,)).fetchone() is not None


def note_seen(db: Database, record_id: bytes, peer: str, at: int) -> None:
    db.conn.execute(
        "INSERT OR IGNORE INTO peer_seen (record_id, peer, at) VALUES (?, ?, ?)", (record_id, peer, at)
    )


def seen_ids(db: Database, peer: str) -> frozenset[bytes]:
    rows = db.conn.execute("SELECT record_id FROM peer_seen WHERE peer = ?", (peer,)).fetchall()
    return frozenset(bytes(r[0]) for r in rows)


@dataclass(frozen=True)
class PeerCounts:
    """The dashboard's figures for one peer city."""

    out_open: int = 0
    out_overdue: int = 0
    in_open: int = 0
    in_overdue: int = 0
    out_total: int = 0
    in_total: int = 0


def counts(db: Database, today: str) -> dict[str, PeerCounts]:
    """Cases out and in per peer: all, open (not decided), and overdue (by our deadline). A
    part of one of our joint applications counts as the part: open until its city decides
    it (unless the application was withdrawn), overdue past its deadline there."""
    figures: dict[str, dict[str, int]] = {}
    rows = db.conn.execute("SELECT case_no, peer, direction, mode FROM peer_cases").fetchall()
    for case_no, peer, direction, mode in rows:
        row = case_queries.case(db, str(case_no))
        f = figures.setdefault(str(peer), {})
        f[f"{direction}_total"] = f.get(f"{direction}_total", 0) + 1
        if row is None:
            continue
        if mode == JOINT_PART and direction == OUT:
            part = next((p for p in case_queries.parts_of(db, row.case_no) if p.part.city == peer), None)
            running = part is not None and not part.decided and row.state is not State.WITHDRAWN
            late = running and part is not None and bool(part.deadline) and part.deadline < today
        else:
            running = row.state in OPEN_STATES
            late = running and is_overdue(row.state, row.deadline, today)
        if running:
            f[f"{direction}_open"] = f.get(f"{direction}_open", 0) + 1
        if late:
            f[f"{direction}_overdue"] = f.get(f"{direction}_overdue", 0) + 1
    return {peer: PeerCounts(**f) for peer, f in figures.items()}


def note_node_revoked(db: Database, peer: str, node: str, last_good_seq: int) -> None:
    """``peer`` revoked its node ``node``: what it signed past ``last_good_seq`` is refused."""
    db.conn.execute(
        "INSERT INTO peer_node_revocations (peer, node, last_good_seq) VALUES (?, ?, ?)"
        " ON CONFLICT (peer, node) DO UPDATE SET last_good_seq = min(last_good_seq, excluded.last_good_seq)",
        (peer, node, last_good_seq),
    )


def revoked_nodes(db: Database) -> dict[str, dict[str, int]]:
    """Each peer's revoked nodes (node → last good seq), as its revocations reached us."""
    out: dict[str, dict[str, int]] = {}
    for peer, node, seq in db.conn.execute("SELECT peer, node, last_good_seq FROM peer_node_revocations"):
        out.setdefault(str(peer), {})[str(node)] = int(seq)
    return out


def message(what: str, envelope: bytes, chain: list[bytes]) -> bytes:
    """A cross-city message: a record of ours (or the intake we took in) and its chain."""
    return codec.encode({"t": what, "env": envelope, "chain": chain})


class CrossingProjector:
    """Queues for the peer every case step of ours that must cross (module docstring).

    It owns no projection table: like the department outbox it is a queue written in the
    ingest transaction; ``crossing_sent`` keeps a rebuild from queueing anything twice.
    """

    kinds = frozenset(
        {
            kinds.CASE_INTAKE,
            kinds.CASE_EVENT,
            kinds.PEER_REVOKE,
            kinds.PEER_CERT,
            kinds.CATALOG_RELEASE,
            kinds.CERT_REVOKE,
        }
    )
    tables: tuple[str, ...] = ()
    refuses = False

    def __init__(self) -> None:
        self._root: str | None = None

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        if self._root is None:
            anchor = anchor_of(db)
            self._root = anchor.origin if anchor is not None else record.origin
        body = record.body
        if record.kind == kinds.CERT_REVOKE:
            # Each peer refuses what a node we revoked signed past its cut-off (E_PEER_NODE_REVOKED).
            if record.origin == self._root:
                for peer in [net for net, state in peer_states(db).items() if not state.revocations]:
                    self._send(db, peer, record, "trust", [])
            return
        if record.kind in (kinds.CATALOG_RELEASE, kinds.PEER_CERT):
            # Each peer mirrors the items it takes in for us from our newest release.
            if record.origin == self._root:
                self._send_release(db, record)
            if record.kind == kinds.PEER_CERT and record.origin == self._root:
                for revocation in map(decode_stored, envelopes_of_kind(db, kinds.CERT_REVOKE)):
                    if revocation.origin == self._root:
                        self._send(db, str(body["peer"]), revocation, "trust", [])
            return
        if record.kind == kinds.PEER_REVOKE:
            # An agreement ended by one side ends both ways: nothing more of its cases goes (they
            # go the paper route, 寄递); the peer hears of it and ends its own.
            if record.origin == self._root:
                peer = str(body["peer"])
                peer_link_store.void_waiting(db, peer, message("void", b"", []))
                self._send(db, peer, record, "revoke", [], ended=True)
            return
        if record.kind == kinds.CASE_INTAKE:
            self._intake(db, record, checked)
            return
        if "carried" in body:
            return  # a step the peer took (carried to us): nothing goes back
        for case in peer_cases_of(db, str(body["case"])):
            event = str(body.get("event"))
            if case.joint and case.direction == OUT:
                # Our own part's steps stay in our city; a withdrawal ends every part, and a
                # supplement taken in for a part goes to that part's city.
                supplied = event == Event.PART_SUPPLY.value and body.get("peer_case") == case.their_case
                if event != Event.WITHDRAW.value and not supplied:
                    continue
            side = INTAKE_SIDE if case.direction == OUT else DECIDER_SIDE
            row = case_queries.case(db, case.case_no)
            if event not in side or row is None or case_queries.event_status(db, record.id) != "applied":
                continue
            files = [(bytes(f["sha256"]).hex(), int(f["size"])) for f in body.get("files", [])]
            self._send(db, case.peer, record, "step", files)
            note_step(db, case.case_no, event, record.payload.ts, case.peer)

    def _intake(self, db: Database, record: Record, checked: object) -> None:
        body = record.body
        owner, carried, parts = body.get("owner"), body.get("carried"), body.get("parts")
        if isinstance(carried, dict) and record.origin == self._root:
            self._send(db, str(carried["net"]), record, "step", [])  # our acceptance goes back
            return
        if record.origin == self._root or not (isinstance(owner, str) or isinstance(parts, list)):
            return
        intake = checked if isinstance(checked, Intake) else Intake.from_body(body)
        at, files = record.payload.ts, [(f.hex, f.size) for f in intake.files]
        if intake.owner is not None:
            open_case(db, PeerCase(intake.case, intake.owner, OUT, None, record.id, at, None, None, "sent",
                                   at))  # fmt: skip
            self._send(db, intake.owner, record, "intake", files)
        for part in intake.parts:  # 多地联办: each part to the city that decides it
            open_case(db, PeerCase(intake.case, part.city, OUT, None, record.id, at, None, None, "sent", at,
                                   JOINT_PART, part.item, part.cat))  # fmt: skip
            self._send(db, part.city, record, "part", files)

    def _send_release(self, db: Database, record: Record) -> None:
        if record.kind == kinds.PEER_CERT:
            release = newest_release(db, self._root or record.origin)
            targets = [str(record.body["peer"])]
        else:
            release = record
            targets = [net for net, state in peer_states(db).items() if not state.revocations]
        if release is not None:
            for peer in targets:
                self._send(db, peer, release, "catalog", [])

    def _send(
        self,
        db: Database,
        peer: str,
        record: Record,
        what: str,
        files: list[tuple[str, int]],
        *,
        ended: bool = False,
    ) -> None:
        held = peer_state(db, peer)
        if not ended and held is not None and held.revocations:
            return  # an agreement ended: nothing more goes to that city
        inserted = db.conn.execute(
            "INSERT OR IGNORE INTO crossing_sent (record_id, peer) VALUES (?, ?)", (record.id, peer)
        ).rowcount
        if not inserted:
            return
        chain = foreign.chain_of(db, record)
        peer_outbox.enqueue(db, peer, message(what, record.envelope, chain))
        for sha, size in files:
            peer_outbox.enqueue_file(db, peer, sha, size)


CROSSING_TABLES = (
    """
    CREATE TABLE peer_cases (
        case_no TEXT NOT NULL,
        peer TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        their_case TEXT,
        intake_id BLOB NOT NULL,
        started INTEGER NOT NULL,
        accepted_at INTEGER,
        their_deadline TEXT,
        last_step TEXT NOT NULL,
        last_at INTEGER NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('proxy_intake', 'joint_part')),
        item TEXT NOT NULL,
        cat INTEGER NOT NULL,
        PRIMARY KEY (case_no, peer)
    )
    """,
    "CREATE INDEX peer_cases_their ON peer_cases (peer, their_case)",
    "CREATE INDEX peer_cases_intake ON peer_cases (peer, intake_id)",
    "CREATE TABLE crossing_sent (record_id BLOB NOT NULL, peer TEXT NOT NULL, PRIMARY KEY (record_id, peer))",
    "CREATE TABLE peer_seen (record_id BLOB PRIMARY KEY, peer TEXT NOT NULL, at INTEGER NOT NULL)",
    """
    CREATE TABLE peer_node_revocations (
        peer TEXT NOT NULL,
        node TEXT NOT NULL,
        last_good_seq INTEGER NOT NULL,
        PRIMARY KEY (peer, node)
    )
    """,
)
"""Migration ``central/0010_crossing``."""
