"""Projections of grants and cases, kept by every store (node and central alike).

Tables:

``grants`` / ``grant_revocations``
    every delegation grant held, and every grant revocation. A grant is refused at ingest
    (and wherever it arrives) when its grantee is not inside its issuer's area, when a root
    grant is not issued by the root, or when its parent grant is held and it does not
    narrow it (``E_GRANT_WIDENS`` …). A parent that is not held yet is checked again by
    :func:`core.grants.authorize` whenever the grant is used.
``clerks``
    the clerk accounts of every node and central's operator accounts, from ``clerk.set``
    records (no password hashes: those stay in the store's own table). The roles are a
    node's (:data:`ROLES`) or, for central's accounts, central's (:data:`CENTRAL_ROLES`).
``cases`` / ``case_events``
    one row per case taken in, and one per case event. A case's state is the replay of
    its events in a fixed order — by the event's time, then by record id — so every node
    that holds the same records shows the same state, whatever order they arrived in.
    An event that its author could not have made (a decision by a node that is not the
    case's decider, a forward by a node that did not take the case in) or that the state
    machine does not allow at its place in the order is kept, marked ``refused`` with its
    code, and shown on the case: a conflict is never resolved silently. An event whose
    intake has not arrived yet waits as ``pending``.

Nothing here depends on the current time: overdue flags are computed when read.
"""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.admin import is_within
from core.cases import CaseEvent, CaseState, Event, apply
from core.catalog import Mode
from core.clock import local_date
from core.errors import ErrorCode, RecordError, TongbanError
from core.grants import Grant, Revocation, check_narrowing
from core.intake import Intake, case_node
from sync import codec, kinds
from sync.calendars import StoreCalendar
from sync.db import execute_all, transaction
from sync.envelope import Record

DECISIONS = frozenset({Event.APPROVE, Event.REJECT, Event.REQUEST_SUPPLEMENT})
"""Events only the deciding node may make; every other event belongs to the intake node."""

RUNNING_STATES = ("accepted", "forwarded")
"""States in which a case's time limit runs (waiting for a supplement pauses it)."""
OPEN_STATES = (*RUNNING_STATES, "supplement")
"""States of a case neither decided nor withdrawn."""

OVERDUE_SQL = "state IN ('accepted', 'forwarded') AND deadline < ?"
"""The overdue rule over ``cases``, with today's local date (ISO) bound: a case whose time
limit runs (accepted or forwarded; a supplement pauses it and moves its deadline) and whose
deadline has passed. A decision is on time when it falls on or before the deadline."""


def is_overdue(state: str, deadline: str, today: str) -> bool:
    """:data:`OVERDUE_SQL` for one case: ``deadline`` and ``today`` are ISO local dates."""
    return state in RUNNING_STATES and deadline < today


CONTAINED_CASE_KINDS = frozenset({kinds.CASE_INTAKE, kinds.CASE_EVENT})
"""An intake is refused before anything is written; when events of its case are held
already, its insert and their replay run in a savepoint of their own."""


def _root(db: Database) -> str | None:
    row = db.conn.execute("SELECT value FROM meta WHERE key = 'anchor_origin'").fetchone()
    return bytes(row[0]).decode() if row else None


_GRANTS: dict[bytes, Grant] = {}
_GRANT_CACHE_SIZE = 4096


def load_grant(row: tuple[Any, ...]) -> Grant:
    """A :class:`Grant` from a ``grants`` row (id, issuer, ts, body).

    A grant's id is the hash of its signed record, so the same id is always the same
    grant: decoded grants are kept (a bounded number) instead of decoded on every intake.
    """
    gid, issuer, ts, body = row
    key = bytes(gid)
    grant = _GRANTS.get(key)
    if grant is None or grant.issuer != issuer or grant.ts != ts:
        grant = Grant.from_body(codec.decode(bytes(body)), id=key, issuer=issuer, ts=ts)
        if len(_GRANTS) >= _GRANT_CACHE_SIZE:
            _GRANTS.clear()
        _GRANTS[key] = grant
    return grant


class GrantProjector:
    """Grants and grant revocations."""

    kinds = frozenset({kinds.GRANT_ISSUE, kinds.GRANT_REVOKE})
    tables: tuple[str, ...] = ("grants", "grant_revocations")
    contained = kinds  # every refusal comes before the one INSERT

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        try:
            if record.kind == kinds.GRANT_REVOKE:
                rev = Revocation.from_body(record.body, issuer=record.origin)
                db.conn.execute(
                    "INSERT INTO grant_revocations (record_id, target, issuer, effective, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (record.id, rev.target, rev.issuer, rev.effective, rev.reason),
                )
                return
            grant = Grant.from_body(record.body, id=record.id, issuer=record.origin, ts=record.payload.ts)
            self._check(db, grant)
        except RecordError:
            raise
        except TongbanError as exc:
            raise RecordError(exc.code, exc.detail) from exc
        db.conn.execute(
            "INSERT INTO grants (id, issuer, aud, mode, nbf, exp, depth, parent, cat, ts, items, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                grant.id,
                grant.issuer,
                grant.aud,
                grant.mode.value,
                grant.nbf,
                grant.exp,
                grant.depth,
                grant.parent,
                grant.cat,
                grant.ts,
                json.dumps(list(grant.items)),
                codec.encode(record.body),
            ),
        )

    @staticmethod
    def _check(db: Database, grant: Grant) -> None:
        root = _root(db)
        if grant.aud == grant.issuer or not is_within(grant.aud, grant.issuer):
            raise RecordError(
                ErrorCode.GRANT_AUDIENCE, f"{grant.aud} is not inside the area of {grant.issuer}"
            )
        if grant.parent is None:
            if grant.issuer != root:
                raise RecordError(ErrorCode.GRANT_CHAIN_BROKEN, f"a root grant issued by {grant.issuer}")
            return
        row = db.conn.execute(
            "SELECT id, issuer, ts, body FROM grants WHERE id = ?", (grant.parent,)
        ).fetchone()
        if row is not None:
            check_narrowing(grant, load_grant(row))


class CaseProjector:
    """Cases and their events (see the module docstring)."""

    kinds = frozenset({kinds.CASE_INTAKE, kinds.CASE_EVENT})
    tables: tuple[str, ...] = ("cases", "case_events")
    contained = CONTAINED_CASE_KINDS

    def __init__(self) -> None:
        self.calendars = StoreCalendar()
        self._opened: dict[tuple[Mode, date], tuple[Any, ...]] = {}
        self._parsed: dict[bytes, CaseEvent] = {}  # a record's body never changes

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        if record.kind == kinds.CASE_INTAKE:
            self._intake(db, record, checked if isinstance(checked, Intake) else None)
        else:
            self._event(db, record, checked if isinstance(checked, CaseEvent) else None)

    def _intake(self, db: Database, record: Record, intake: Intake | None) -> None:
        if intake is None:
            try:
                intake = Intake.from_body(record.body)
            except TongbanError as exc:
                raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc
        if case_node(intake.case) != record.origin:
            raise RecordError(ErrorCode.AUTHORITY, f"{record.origin} cannot take in case {intake.case}")
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
            event = self._parsed.get(bytes(rid))
            if event is None:
                event = CaseEvent.from_body(codec.decode(bytes(body)))
                self._remember(bytes(rid), event)
            owner = decider if event.kind in DECISIONS else node
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


@functools.lru_cache(maxsize=1024)
def _json_list(values: tuple[str, ...]) -> str:
    """A list of text as stored (materials and flags repeat from case to case)."""
    return json.dumps(list(values))


ROLES = ("clerk", "approver", "admin", "auditor")
CENTRAL_ROLES = ("catalog_admin", "delegation_admin", "auditor", "viewer")


def roles_for(origin: str) -> tuple[str, ...]:
    """The roles an account of ``origin`` may hold: central's (a 6-digit code) or a node's."""
    return CENTRAL_ROLES if len(origin) == 6 else ROLES


class ClerkProjector:
    """Accounts of every node and of central (names, roles, active); secrets never leave the store."""

    kinds = frozenset({kinds.CLERK_SET})
    tables: tuple[str, ...] = ("clerks",)
    contained = kinds  # the roles are checked before the one INSERT

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        roles = body["roles"]
        allowed = roles_for(record.origin)
        if not all(isinstance(r, str) and r in allowed for r in roles) or len(set(roles)) != len(roles):
            raise RecordError(ErrorCode.SCHEMA, f"clerk.set: roles must be among {', '.join(allowed)}")
        db.conn.execute(
            "INSERT INTO clerks (node, user, name, roles, active, record_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (node, user) DO UPDATE SET name = excluded.name, roles = excluded.roles,"
            " active = excluded.active, record_id = excluded.record_id, ts = excluded.ts",
            (
                record.origin,
                body["user"],
                body["name"],
                json.dumps(sorted(roles)),
                int(body["active"]),
                record.id,
                record.payload.ts,
            ),
        )


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


def add_case_migrations(migrations: Migrations) -> None:
    """Register the grant and case tables on the ``log`` migration set."""

    @migrations(name="0004_grants_and_cases")
    def _grants_and_cases(db: Database) -> None:
        execute_all(
            db,
            [
                """
                CREATE TABLE grants (
                    id BLOB PRIMARY KEY, issuer TEXT NOT NULL, aud TEXT NOT NULL, mode TEXT NOT NULL,
                    nbf INTEGER NOT NULL, exp INTEGER NOT NULL, depth INTEGER NOT NULL, parent BLOB,
                    cat INTEGER NOT NULL, ts INTEGER NOT NULL, items TEXT NOT NULL, body BLOB NOT NULL
                )
                """,
                "CREATE INDEX grants_aud ON grants (aud, exp)",
                """
                CREATE TABLE grant_revocations (
                    record_id BLOB PRIMARY KEY, target BLOB NOT NULL, issuer TEXT NOT NULL,
                    effective INTEGER NOT NULL, reason TEXT NOT NULL
                )
                """,
                "CREATE INDEX grant_revocations_target ON grant_revocations (target)",
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
                """
                CREATE TABLE clerks (
                    node TEXT NOT NULL, user TEXT NOT NULL, name TEXT NOT NULL, roles TEXT NOT NULL,
                    active INTEGER NOT NULL, record_id BLOB NOT NULL, ts INTEGER NOT NULL,
                    PRIMARY KEY (node, user)
                )
                """,
            ],
        )
