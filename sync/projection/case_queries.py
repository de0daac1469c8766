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

from core.cases import (
    KEEPS_STATE,
    OPEN_STATES,
    RUNNING_STATES,
    TERMINAL,
    CaseEvent,
    CaseState,
    Delivery,
    Rating,
    State,
)
from core.catalog import Mode
from core.intake import Intake
from core.parts import PartProgress, progress
from sync.projection.cases import OVERDUE_SQL
from sync.record import codec
from sync.record.arrival import arrivals
from sync.record.log import signed_at, stored_record

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


@dataclass(frozen=True)
class CaseFilter:
    """What a case search narrows to besides its text: a state, and a range of intake
    times (``since`` inclusive, ``until`` exclusive, Unix seconds)."""

    state: str = ""
    since: int | None = None
    until: int | None = None


def search(db: Database, text: str, limit: int = 50, where: CaseFilter = CaseFilter()) -> list[CaseRow]:
    """Cases whose number is ``text``, or whose number, ID number, phone or name contains
    it (part of an ID number, the last digits of a phone), within ``where``; newest first.
    An empty ``text`` lists every case within ``where``."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    state, since, until = where.state, where.since, where.until
    rows = db.conn.execute(
        f"{_SELECT} WHERE (? = '' OR case_no = ? OR case_no LIKE ? ESCAPE '\\' OR doc_no LIKE ? ESCAPE '\\'"
        " OR phone LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')"
        " AND (? = '' OR state = ?) AND (? IS NULL OR received >= ?) AND (? IS NULL OR received < ?)"
        " ORDER BY received DESC LIMIT ?",
        (text, text, like, like.upper(), like, like, state, state, since, since, until, until, limit),
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def recent(db: Database, node: str, limit: int = 30, *, deciding: bool = False) -> list[CaseRow]:
    """The cases taken in at ``node`` (and, ``deciding``, those it decides), newest first."""
    if deciding:
        rows = db.conn.execute(
            f"{_SELECT} WHERE node = ? OR decider = ? ORDER BY received DESC LIMIT ?", (node, node, limit)
        ).fetchall()
    else:
        rows = db.conn.execute(
            f"{_SELECT} WHERE node = ? ORDER BY received DESC LIMIT ?", (node, limit)
        ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def queue(db: Database, decider: str, *, node: str = "", item: str = "") -> list[CaseRow]:
    """Cases ``decider`` decides that wait for a decision (taken in at ``node``, for
    ``item``, when given), by deadline, then oldest first."""
    rows = db.conn.execute(
        f"{_SELECT} WHERE decider = ? AND {_AWAITING_DECISION} AND {_LIVE}"
        " AND (? = '' OR node = ?) AND (? = '' OR item = ?) ORDER BY deadline, received",
        (decider, node, node, item, item),
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def unfinished(db: Database, node: str) -> list[str]:
    """The case numbers taken in at ``node`` that are neither delivered nor withdrawn:
    the node still has a step to take on each (a decommissioned node could not)."""
    done = tuple(state.value for state in TERMINAL)
    rows = db.conn.execute(
        f"SELECT case_no FROM cases WHERE node = ? AND state NOT IN ({', '.join('?' * len(done))})"
        f" AND {_LIVE} ORDER BY received",
        (node, *done),
    ).fetchall()
    return [str(row[0]) for row in rows]


def queue_sources(db: Database, decider: str) -> tuple[list[str], list[str]]:
    """The nodes and the items of the cases waiting for ``decider``'s decision (the queue's
    filters), each sorted."""
    rows = db.conn.execute(
        f"SELECT DISTINCT node, item FROM cases WHERE decider = ? AND {_AWAITING_DECISION} AND {_LIVE}",
        (decider,),
    ).fetchall()
    return sorted({r[0] for r in rows}), sorted({r[1] for r in rows})


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


@dataclass(frozen=True)
class News:
    """A step another node took on a case taken in here (a decision, a supplement asked for)."""

    case_no: str
    event: str
    at: int
    origin: str
    reason: str
    record_id: bytes
    arrival: int  # when it reached this store


def news(
    db: Database, node: str, events: tuple[str, ...], limit: int = 50, *, own: bool = False
) -> list[News]:
    """The newest applied ``events`` that other nodes (and, ``own``, ``node`` itself) took on
    cases taken in at ``node``, newest arrival first."""
    marks = ",".join("?" * len(events))
    rows = db.conn.execute(
        "SELECT e.case_no, e.event, e.at, e.origin, e.reason, e.record_id FROM case_events e"
        " JOIN cases c ON c.case_no = e.case_no"
        f" WHERE c.node = ? AND (? OR e.origin != ?) AND e.status = 'applied' AND e.event IN ({marks})"
        f" AND c.{_LIVE} ORDER BY e.at DESC LIMIT ?",
        (node, own, node, *events, limit),
    ).fetchall()
    arrived = arrivals(db, [bytes(r[5]) for r in rows])
    found = [News(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), arrived.get(bytes(r[5]), 0)) for r in rows]
    return sorted(found, key=lambda n: -n.arrival)


def due(db: Database, node: str, actor: str, until: str) -> list[CaseRow]:
    """The running cases ``actor`` took in at ``node`` (or that ``node`` decides, when
    ``actor`` is empty) whose deadline is on or before ``until``, soonest first."""
    rows = db.conn.execute(
        f"{_SELECT} WHERE (node = ? AND (? = '' OR actor = ?) OR (? = '' AND decider = ?))"
        f" AND state IN {RUNNING_STATES!r} AND deadline <= ? AND {_LIVE} ORDER BY deadline, received",
        (node, actor, actor, actor, node, until),
    ).fetchall()
    return [CaseRow.from_row(r) for r in rows]


def intake_arrivals(db: Database, case_nos: list[str]) -> dict[str, int]:
    """When each case's intake record reached this store (its arrival index), by case."""
    if not case_nos:
        return {}
    marks = ",".join("?" * len(case_nos))
    rows = db.conn.execute(
        f"SELECT case_no, intake_id FROM cases WHERE case_no IN ({marks})", tuple(case_nos)
    ).fetchall()
    arrived = arrivals(db, [bytes(r[1]) for r in rows])
    return {str(r[0]): arrived.get(bytes(r[1]), 0) for r in rows}


def item_usage(db: Database, node: str, since: int) -> dict[str, int]:
    """Cases taken in at ``node`` since ``since``, per item (the picker's most used)."""
    rows = db.conn.execute(
        "SELECT item, count(*) FROM cases WHERE node = ? AND received >= ? GROUP BY item", (node, since)
    ).fetchall()
    return {str(item): int(n) for item, n in rows}


def intake_of(db: Database, case_no: str) -> Intake | None:
    """The intake of ``case_no`` as its signed record says (the agent and the extra fields
    are read from it, not kept in columns)."""
    row = db.conn.execute("SELECT intake_id FROM cases WHERE case_no = ?", (case_no,)).fetchone()
    record = stored_record(db, bytes(row[0])) if row is not None else None
    return Intake.from_body(record.body) if record is not None else None


def names_of(db: Database, doc_no: str) -> list[str]:
    """The applicant names the cases held carry for ID number ``doc_no``, by first use."""
    rows = db.conn.execute(
        "SELECT name FROM cases WHERE doc_no = ? GROUP BY name ORDER BY min(received)", (doc_no,)
    ).fetchall()
    return [str(r[0]) for r in rows]


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


def event_status(db: Database, record_id: bytes) -> str | None:
    """How the cases projection took the case event ``record_id``: applied, refused, pending,
    quarantined; None when it holds no such event."""
    row = db.conn.execute("SELECT status FROM case_events WHERE record_id = ?", (record_id,)).fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class PeerAcceptance:
    """The owning city's acceptance of a case we took in for it (its ``peer_accept`` step)."""

    at: int
    case_no: str  # its case number there
    deadline: str  # its deadline there


def peer_acceptance(db: Database, case_no: str) -> PeerAcceptance | None:
    """The applied ``peer_accept`` of ``case_no``, if the owning city has accepted it."""
    row = db.conn.execute(
        "SELECT at, body FROM case_events WHERE case_no = ? AND event = 'peer_accept' AND status = 'applied'"
        " ORDER BY at DESC LIMIT 1",
        (case_no,),
    ).fetchone()
    if row is None:
        return None
    body = codec.decode(bytes(row[1]))
    return PeerAcceptance(int(row[0]), str(body.get("peer_case", "")), str(body.get("peer_deadline", "")))


def parts_of(db: Database, case_no: str) -> tuple[PartProgress, ...]:
    """多地联办: the state of each other city's part of ``case_no`` (none for a case without
    parts), from its intake's parts and its applied part steps, in case order."""
    intake = intake_of(db, case_no)
    if intake is None or not intake.parts:
        return ()
    rows = db.conn.execute(
        "SELECT body FROM case_events WHERE case_no = ? AND status = 'applied'"
        f" AND event IN {tuple(sorted(e.value for e in KEEPS_STATE))!r} ORDER BY at, record_id",
        (case_no,),
    ).fetchall()
    return progress(intake.parts, [CaseEvent.from_body(codec.decode(bytes(r[0]))) for r in rows])
