"""Reading cases: the queries on the cases projection's tables, as typed rows.

:mod:`sync.projection.cases` writes ``cases`` and ``case_events``; this module reads them
for the screens, the API and the desk's own checks (the day's next case number, the time of
a case's last step, the open cases of one applicant). Rows are frozen: what is derived from
the current time (overdue, whose case it is) is the reader's to compute, with
:func:`core.cases.is_overdue`.

Tables read: ``cases`` and ``case_events``; the time each step's record was signed comes from
the log (:func:`sync.record.log.signed_at`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlite_utils import Database

from core.cases import OPEN_STATES, CaseState, Delivery, Rating, State
from core.catalog import Mode
from sync.projection.cases import OVERDUE_SQL
from sync.record.log import signed_at

CASE_COLUMNS = (
    "case_no, node, item, item_name, cat, mode, decider, name, doc_type, doc_no, phone, materials, notes,"
    " limit_days, deadline, flags, received, actor, state, rating, comment, delivery, decided_at, closed_at,"
    " missing, paused_days, events, intake_deadline, quarantined"
)
_SELECT = f"SELECT {CASE_COLUMNS} FROM cases"
_LIVE = "quarantined = 0"
"""Cases whose intake is not quarantined: only those are in a queue, a count or a list of
open cases (:mod:`sync.projection.cases`)."""

# Waiting for a decision: a proxy case forwarded to its decider, a direct case taken in.
_AWAITING_DECISION = "((mode = 'proxy' AND state = 'forwarded') OR (mode = 'direct' AND state = 'accepted'))"


@dataclass(frozen=True)
class Supplement:
    """What the last request for a supplement asked for."""

    missing: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class CaseRow:
    """One case as the projection holds it (times in epoch seconds, dates ISO local)."""

    case_no: str
    node: str  # where it was taken in
    item: str
    item_name: str
    cat: int  # the catalog version it was taken in under
    mode: Mode
    decider: str
    name: str
    doc_type: str
    doc_no: str
    phone: str
    materials: tuple[str, ...]  # codes received
    notes: str
    limit_days: int
    deadline: str  # moved by supplement pauses
    flags: tuple[str, ...]
    received: int
    actor: str | None
    state: State
    rating: Rating | None
    comment: str | None
    delivery: Delivery | None
    decided_at: int | None
    closed_at: int | None
    missing: Supplement | None
    paused_days: int
    events: int  # steps applied
    intake_deadline: str
    quarantined: bool  # its intake was signed after its key's revocation cut-off: void

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> CaseRow:
        """A row of :data:`CASE_COLUMNS`, its stored JSON and enum values parsed."""
        (case_no, node, item, item_name, cat, mode, decider, name, doc_type, doc_no, phone, materials,
         notes, limit_days, deadline, flags, received, actor, state, rating, comment, delivery,
         decided_at, closed_at, missing, paused_days, events, intake_deadline, quarantined) = row  # fmt: skip
        return cls(
            case_no, node, item, item_name, cat, Mode(mode), decider, name, doc_type, doc_no, phone,
            tuple(json.loads(materials)), notes, limit_days, deadline, tuple(json.loads(flags)),
            received, actor, State(state), Rating(rating) if rating else None, comment,
            Delivery(delivery) if delivery else None, decided_at, closed_at, _supplement(missing),
            paused_days, events, intake_deadline, bool(quarantined),
        )  # fmt: skip


def _supplement(stored: str | None) -> Supplement | None:
    if not stored:
        return None
    value = json.loads(stored)
    return Supplement(tuple(value["missing"]), str(value["reason"]))


def state_of(case: CaseRow) -> CaseState:
    """The state machine's view of a stored case (what :func:`core.cases.allowed_events` needs)."""
    if case.state is State.SUPPLEMENT:
        origin = State.FORWARDED if case.mode is Mode.PROXY else State.ACCEPTED
        return CaseState(case.state, case.mode, case.rating, supplement_from=origin, paused_since=0)
    return CaseState(case.state, case.mode, case.rating)


@dataclass(frozen=True)
class CaseEventRow:
    """One step of a case, as replayed: ``status`` applied, refused (with ``code``), pending
    (its intake has not arrived) or quarantined (signed after its key's cut-off)."""

    event: str
    at: int
    reason: str
    actor: str | None
    origin: str
    status: str
    code: str | None
    ts: int  # when its record was signed


@dataclass(frozen=True)
class CaseCounts:
    """The tiles of a node's home page."""

    today: int  # taken in during the last 24 hours
    open: int
    overdue: int
    queue: int  # waiting for this node's decision


def case(db: Database, case_no: str) -> CaseRow | None:
    row = db.conn.execute(f"{_SELECT} WHERE case_no = ?", (case_no,)).fetchone()
    return CaseRow.from_row(row) if row is not None else None


def search(db: Database, text: str, limit: int = 50) -> list[CaseRow]:
    """Cases whose number or ID number is ``text``, or whose number or name contains it; newest first."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = db.conn.execute(
        f"{_SELECT} WHERE case_no = ? OR doc_no = ? OR case_no LIKE ? ESCAPE '\\'"
        " OR name LIKE ? ESCAPE '\\' ORDER BY received DESC LIMIT ?",
        (text, text.upper(), like, like, limit),
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def recent(db: Database, node: str, limit: int = 30) -> list[CaseRow]:
    """The cases taken in at ``node``, newest first."""
    rows = db.conn.execute(
        f"{_SELECT} WHERE node = ? ORDER BY received DESC LIMIT ?", (node, limit)
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def queue(db: Database, decider: str) -> list[CaseRow]:
    """Cases ``decider`` decides that wait for a decision, by deadline, then oldest first."""
    rows = db.conn.execute(
        f"{_SELECT} WHERE decider = ? AND {_AWAITING_DECISION} AND {_LIVE} ORDER BY deadline, received",
        (decider,),
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def decided_by(db: Database, decider: str, limit: int = 30) -> list[CaseRow]:
    """Cases ``decider`` decides that wait for no decision (decided, waiting for a
    supplement, withdrawn), the latest step first."""
    rows = db.conn.execute(
        f"{_SELECT} WHERE decider = ? AND NOT {_AWAITING_DECISION}"
        " ORDER BY coalesce(decided_at, closed_at, received) DESC LIMIT ?",
        (decider, limit),
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def open_case_records(db: Database, decider: str) -> list[tuple[str, bytes, bool]]:
    """The records of ``decider``'s open cases that others signed: (case number, record id,
    whether it is the intake), each case's intake first, then its steps in replay order."""
    rows = db.conn.execute(
        "SELECT c.case_no, c.intake_id, 1, 0, x'' FROM cases c"
        " WHERE c.decider = ? AND c.state IN (?, ?, ?)"
        " UNION ALL SELECT e.case_no, e.record_id, 0, e.at, e.record_id FROM case_events e"
        " JOIN cases c ON c.case_no = e.case_no"
        " WHERE c.decider = ? AND c.state IN (?, ?, ?) AND e.origin != c.decider"
        " ORDER BY 1, 3 DESC, 4, 5",
        (decider, *OPEN_STATES, decider, *OPEN_STATES),
    ).fetchall()
    return [(str(case_no), bytes(rid), bool(intake)) for case_no, rid, intake, _, _ in rows]


def similar_open(db: Database, doc_no: str, item: str) -> list[CaseRow]:
    """Open cases of the applicant with ID number ``doc_no`` for ``item``, newest first."""
    rows = db.conn.execute(
        f"{_SELECT} WHERE doc_no = ? AND item = ? AND state IN (?, ?, ?) AND {_LIVE} ORDER BY received DESC",
        (doc_no, item, *OPEN_STATES),
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def counts(db: Database, node: str, *, since: int, today: date) -> CaseCounts:
    """``node``'s cases taken in since ``since``, open, overdue on ``today``, and waiting for
    it (quarantined cases count for nothing)."""
    conn = db.conn
    return CaseCounts(
        today=conn.execute(
            f"SELECT count(*) FROM cases WHERE node = ? AND received >= ? AND {_LIVE}", (node, since)
        ).fetchone()[0],
        open=conn.execute(
            f"SELECT count(*) FROM cases WHERE node = ? AND state IN (?, ?, ?) AND {_LIVE}",
            (node, *OPEN_STATES),
        ).fetchone()[0],
        overdue=conn.execute(
            f"SELECT count(*) FROM cases WHERE (node = ? OR decider = ?) AND {OVERDUE_SQL} AND {_LIVE}",
            (node, node, today.isoformat()),
        ).fetchone()[0],
        queue=conn.execute(
            f"SELECT count(*) FROM cases WHERE decider = ? AND {_AWAITING_DECISION} AND {_LIVE}", (node,)
        ).fetchone()[0],
    )


def events(db: Database, case_no: str) -> list[CaseEventRow]:
    """The steps of ``case_no`` in replay order (time, then record id)."""
    rows = db.conn.execute(
        "SELECT event, at, reason, actor, origin, status, code, record_id FROM case_events"
        " WHERE case_no = ? ORDER BY at, record_id",
        (case_no,),
    ).fetchall()
    signed = signed_at(db, [bytes(r[7]) for r in rows])
    return [
        CaseEventRow(event, at, reason, actor, origin, status, code, signed[bytes(rid)])
        for event, at, reason, actor, origin, status, code, rid in rows
    ]


def last_event_at(db: Database, case_no: str) -> int:
    """The time of the latest step held for ``case_no`` (0: none)."""
    row = db.conn.execute("SELECT max(at) FROM case_events WHERE case_no = ?", (case_no,)).fetchone()
    return int(row[0] or 0)


def next_serial(db: Database, node: str, day: date) -> int:
    """The serial of ``node``'s next case number on ``day`` (``NODE-YYYYMMDD-serial``)."""
    # The day's numbers only, read off the case number's index (":" follows the digits):
    # the cost stays that of one day's intakes however many years the store holds.
    prefix = f"{node}-{day:%Y%m%d}-"
    row = db.conn.execute(
        "SELECT max(CAST(substr(case_no, ?) AS INTEGER)) FROM cases"
        " WHERE case_no > ? AND case_no < ? AND +node = ?",
        (len(prefix) + 1, prefix, prefix + ":", node),
    ).fetchone()
    return int(row[0] or 0) + 1
