"""Cases and their events as every store (node and central alike) projects them.

Tables:

``cases`` / ``case_events``
    one row per case taken in, and one per case event. A case's state is the replay of
    its events in a fixed order — by the event's time, then by record id — so every node
    that holds the same records shows the same state, whatever order they arrived in.
    An event that its author could not have made (a decision by a node that is not the
    case's decider, a forward by a node that did not take the case in) or that the state
    machine does not allow at its place in the order is kept, marked ``refused`` with its
    code, and shown on the case: a conflict is never resolved silently. An event whose
    intake has not arrived yet waits as ``pending``.

**Quarantined records** (signed with a key after its revocation's cut-off, arrived before
the revocation: the ``quarantined`` view of :mod:`sync.record.trust`) act on nothing. When
a ``cert.revoke`` arrives, or lowers a cut-off, the cases it touches are projected again:
a case whose intake is quarantined is kept but marked (``cases.quarantined``; readers leave
it out of every queue, count and list of open cases, and a node takes no step on it), and
a quarantined event is kept as ``quarantined`` (code ``E_CERT_REVOKED``) and not applied.
A record past a cut-off that arrives after the revocation is refused at ingest, so the
projection stays a function of the log in arrival order: a rebuild gives the same rows.

Nothing here depends on the current time: overdue flags are computed when read.
"""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any

from sqlite_utils import Database

from core.cases import PART_EVENTS, RUNNING_STATES, CaseEvent, CaseState, Event, apply, owner_of
from core.catalog import Mode
from core.clock import local_date
from core.errors import ErrorCode, RecordError, TongbanError
from core.intake import Intake, case_node
from sync.projection import carried
from sync.projection.calendars import StoreCalendar
from sync.projection.peer_items import check_peer_intake
from sync.record import codec, kinds, trust
from sync.record.db import transaction
from sync.record.envelope import Record
from sync.record.log import anchor_of

OVERDUE_SQL = f"state IN {RUNNING_STATES!r} AND deadline < ?"
"""The overdue rule (:func:`core.cases.is_overdue`) over ``cases``, with today's local date
(ISO) bound."""


CONTAINED_CASE_KINDS = frozenset({kinds.CASE_INTAKE, kinds.CASE_EVENT})
"""An intake is refused before anything is written; when events of its case are held
already, its insert and their replay run in a savepoint of their own."""


class CaseProjector:
    """Cases and their events (see the module docstring)."""

    kinds = frozenset({kinds.CASE_INTAKE, kinds.CASE_EVENT, kinds.CERT_REVOKE})
    tables: tuple[str, ...] = ("cases", "case_events")
    contained = CONTAINED_CASE_KINDS

    def __init__(self) -> None:
        self.calendars = StoreCalendar()
        self._opened: dict[tuple[Mode, date], tuple[Any, ...]] = {}
        self._parsed: dict[bytes, CaseEvent] = {}  # a record's body never changes

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        if record.kind == kinds.CASE_INTAKE:
            self._intake(db, record, checked if isinstance(checked, Intake) else None)
        elif record.kind == kinds.CASE_EVENT:
            self._event(db, record, checked if isinstance(checked, CaseEvent) else None)
        else:  # the key directory has taken the revocation in already: it runs first
            self.quarantine(db, record.body["node"])

    def quarantine(self, db: Database, node: str | None = None) -> None:
        """Leave out of the cases the records of ``node`` (of every node: None) that are
        quarantined now: mark their intakes' cases, set their events aside, replay."""
        held = trust.quarantined_of(db, node)
        intakes = [rid for rid, kind in held if kind == kinds.CASE_INTAKE]
        events = [rid for rid, kind in held if kind == kinds.CASE_EVENT]
        conn = db.conn
        for rid in intakes:
            conn.execute("UPDATE cases SET quarantined = 1 WHERE intake_id = ? AND quarantined = 0", (rid,))
        touched: set[str] = set()
        for rid in events:
            row = conn.execute(
                "UPDATE case_events SET status = 'quarantined', code = ? WHERE record_id = ?"
                " AND status != 'quarantined' RETURNING case_no",
                (ErrorCode.CERT_REVOKED.value, rid),
            ).fetchone()
            if row is not None:
                touched.add(str(row[0]))
        for case_no in sorted(touched):
            self.replay(db, case_no)

    def _intake(self, db: Database, record: Record, intake: Intake | None) -> None:
        if intake is None:
            try:
                intake = Intake.from_body(record.body)
            except TongbanError as exc:
                raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc
        if case_node(intake.case) != record.origin:
            raise RecordError(ErrorCode.AUTHORITY, f"{record.origin} cannot take in case {intake.case}")
        carried.check_intake(db, record, intake)
        if intake.owner is not None:
            check_peer_intake(db, intake)
        taken, waiting = db.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM cases WHERE case_no = ?),"
            " EXISTS (SELECT 1 FROM case_events WHERE case_no = ?)",
            (intake.case, intake.case),
        ).fetchone()
        if taken:
            raise RecordError(ErrorCode.SCHEMA, f"case {intake.case} was taken in already")
        a = intake.applicant
        row = (
            intake.case,
            record.origin,
            intake.item,
            intake.item_name,
            intake.cat,
            intake.mode.value,
            intake.decider,
            intake.grant,
            a.name,
            a.doc_type.value,
            a.doc_no,
            a.phone,
            _json_list(intake.materials),
            intake.notes,
            intake.limit,
            intake.deadline.isoformat(),
            _json_list(intake.flags),
            record.payload.ts,
            record.id,
            record.payload.actor,
        )
        if waiting:
            # Its events came first: take the case in as it opens, then replay them all.
            with transaction(db):
                db.conn.execute(
                    "INSERT INTO cases (case_no, node, item, item_name, cat, mode, decider, grant_id, name,"
                    " doc_type, doc_no, phone, materials, notes, limit_days, intake_deadline, flags,"
                    " received, intake_id, actor, deadline, state, paused_days, events)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " 'accepted', 0, 0)",
                    (*row, intake.deadline.isoformat()),
                )
                self.replay(db, intake.case)
            return
        # No event is held: the replay of none, written with the row. It depends on the mode
        # and the deadline alone (no pause moves the deadline), so it is kept.
        key = (intake.mode, intake.deadline)
        final = self._opened.get(key)
        if final is None:
            final = self._fold(db, record.origin, intake.decider, intake.mode, intake.deadline, [])
            if len(self._opened) >= _OPENED_CACHE_SIZE:
                self._opened.clear()
            self._opened[key] = final
        db.conn.execute(
            "INSERT INTO cases (case_no, node, item, item_name, cat, mode, decider, grant_id, name,"
            " doc_type, doc_no, phone, materials, notes, limit_days, intake_deadline, flags,"
            " received, intake_id, actor, state, rating, comment, delivery, decided_at, closed_at,"
            " missing, paused_since, paused_days, deadline, events)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)",
            (*row, *final),
        )

    def _event(self, db: Database, record: Record, event: CaseEvent | None) -> None:
        body = dict(record.body)
        case_no = body.pop("case")
        if event is None:
            try:
                event = CaseEvent.from_body(body)
            except TongbanError as exc:
                raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc
        carried.check_event(db, event)
        case = self._case(db, case_no)
        # Stored as the replay will most often find it (applied, or pending without its
        # intake), so that the replay rewrites it only when it was refused.
        db.conn.execute(
            "INSERT INTO case_events (record_id, case_no, origin, seq, event, at, reason, actor, status,"
            " code, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            (
                record.id,
                case_no,
                record.origin,
                record.seq,
                event.kind.value,
                event.at,
                event.reason,
                record.payload.actor,
                "applied" if case is not None else "pending",
                codec.encode_decoded(body),
            ),
        )
        self._remember(record.id, event)
        if case is not None:
            self._replay(db, case_no, case)

    @staticmethod
    def _case(db: Database, case_no: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = db.conn.execute(
            "SELECT node, decider, mode, intake_deadline FROM cases WHERE case_no = ?", (case_no,)
        ).fetchone()
        return row

    def _remember(self, rid: bytes, event: CaseEvent) -> None:
        if len(self._parsed) >= _PARSED_CACHE_SIZE:
            self._parsed.clear()
        self._parsed[rid] = event

    def replay(self, db: Database, case_no: str) -> None:
        """Recompute ``case_no`` from its intake and every event held, in (time, id) order."""
        case = self._case(db, case_no)
        if case is not None:
            self._replay(db, case_no, case)

    def _replay(self, db: Database, case_no: str, case: tuple[Any, ...]) -> None:
        node, decider, mode, intake_deadline = case
        events = db.conn.execute(
            "SELECT record_id, origin, body, status, code FROM case_events WHERE case_no = ?"
            " ORDER BY at, record_id",
            (case_no,),
        ).fetchall()
        final = self._fold(db, node, decider, Mode(mode), date.fromisoformat(intake_deadline), events)
        db.conn.execute(
            "UPDATE cases SET state = ?, rating = ?, comment = ?, delivery = ?, decided_at = ?,"
            " closed_at = ?, missing = ?, paused_since = ?, paused_days = ?, deadline = ?, events = ?"
            " WHERE case_no = ?",
            (*final, case_no),
        )

    def _fold(
        self,
        db: Database,
        node: str,
        decider: str,
        mode: Mode,
        intake_deadline: date,
        events: list[tuple[Any, ...]],
    ) -> tuple[Any, ...]:
        """Apply ``events`` (record id, origin, body, and the status and code stored; in
        order) to a case just opened, marking each applied or refused where that changed;
        the case's columns from ``state`` to ``events``, in the order of the ``UPDATE`` in
        :meth:`replay`."""
        state = CaseState.open(mode)
        last = {"decided_at": None, "closed_at": None, "delivery": None, "comment": None, "missing": None}
        applied = 0
        for rid, origin, body, stored_status, stored_code in events:
            if stored_status == "quarantined":
                continue  # kept as evidence, applied to nothing
            event = self._parsed.get(bytes(rid))
            if event is None:
                event = CaseEvent.from_body(codec.decode(bytes(body)))
                self._remember(bytes(rid), event)
            # Another city's part steps are our central's (the anchor's origin) to carry.
            central = _central(db) if event.kind in PART_EVENTS else ""
            owner = owner_of(event.kind, node, decider, central)
            code: str | None = None
            if origin != owner:
                code = ErrorCode.NOT_DECIDER.value
            else:
                try:
                    state = apply(state, event)
                except TongbanError as exc:
                    code = exc.code.value
            status = "refused" if code else "applied"
            if (status, code) != (stored_status, stored_code):  # events arrive mostly in order
                db.conn.execute(
                    "UPDATE case_events SET status = ?, code = ? WHERE record_id = ?", (status, code, rid)
                )
            if code:
                continue
            applied += 1
            _note(last, event)
        paused = 0
        deadline = intake_deadline
        if state.pauses:
            # Supplement pauses move the deadline by the working days they lasted, counted
            # with the calendar this store holds now (a case without one never reads it).
            calendar = self.calendars.get(db)
            paused = sum(
                calendar.working_days_between(local_date(start), local_date(end))
                for start, end in state.pauses
            )
            deadline = calendar.add_working_days(intake_deadline, paused).date
        return (
            state.state.value,
            int(state.rating) if state.rating is not None else None,
            last["comment"],
            last["delivery"],
            last["decided_at"],
            last["closed_at"],
            last["missing"],
            state.paused_since,
            paused,
            deadline.isoformat(),
            applied,
        )


_OPENED_CACHE_SIZE = 1024
_PARSED_CACHE_SIZE = 4096
"""Case events parsed, by record id: a replay reads its case's earlier events again."""


def _central(db: Database) -> str:
    anchor = anchor_of(db)
    return anchor.origin if anchor is not None else ""


@functools.lru_cache(maxsize=1024)
def _json_list(values: tuple[str, ...]) -> str:
    """A list of text as stored (materials and flags repeat from case to case)."""
    return json.dumps(list(values))


def _note(last: dict[str, Any], event: CaseEvent) -> None:
    if event.kind in (Event.APPROVE, Event.REJECT):
        last["decided_at"] = event.at
    if event.kind in (Event.DELIVER, Event.WITHDRAW):
        last["closed_at"] = event.at
    if event.kind is Event.DELIVER and event.delivery is not None:
        last["delivery"] = event.delivery.value
    if event.kind is Event.RATE:
        last["comment"] = event.reason
    if event.kind is Event.REQUEST_SUPPLEMENT:
        last["missing"] = json.dumps(
            {"missing": list(event.missing), "reason": event.reason}, ensure_ascii=False
        )


CASE_TABLES = (
    """
    CREATE TABLE cases (
        case_no TEXT PRIMARY KEY, node TEXT NOT NULL, item TEXT NOT NULL,
        item_name TEXT NOT NULL, cat INTEGER NOT NULL, mode TEXT NOT NULL,
        decider TEXT NOT NULL, grant_id BLOB, name TEXT NOT NULL, doc_type TEXT NOT NULL,
        doc_no TEXT NOT NULL, phone TEXT NOT NULL, materials TEXT NOT NULL,
        notes TEXT NOT NULL, limit_days INTEGER NOT NULL, intake_deadline TEXT NOT NULL,
        deadline TEXT NOT NULL, flags TEXT NOT NULL, received INTEGER NOT NULL,
        intake_id BLOB NOT NULL, actor TEXT, state TEXT NOT NULL, rating INTEGER,
        comment TEXT, delivery TEXT, decided_at INTEGER, closed_at INTEGER, missing TEXT,
        paused_since INTEGER, paused_days INTEGER NOT NULL, events INTEGER NOT NULL
    )
    """,
    "CREATE INDEX cases_doc ON cases (doc_no)",
    "CREATE INDEX cases_name ON cases (name)",
    "CREATE INDEX cases_decider ON cases (decider, state)",
    "CREATE INDEX cases_node ON cases (node, received)",
    "CREATE INDEX cases_item ON cases (doc_no, item, state)",
    """
    CREATE TABLE case_events (
        record_id BLOB PRIMARY KEY, case_no TEXT NOT NULL, origin TEXT NOT NULL,
        seq INTEGER NOT NULL, event TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL,
        actor TEXT, status TEXT NOT NULL, code TEXT, body BLOB
    )
    """,
    "CREATE INDEX case_events_case ON case_events (case_no, at)",
)
"""Migration ``log/0004_grants_and_cases``, its middle part (after the grants' tables)."""

CASE_QUARANTINE = ("ALTER TABLE cases ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0",)
"""Migration ``log/0010_quarantined_cases`` (it also projects the revocations a store held)."""
