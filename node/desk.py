"""The service desk of one node: what a clerk and an approver do, behind intent-named methods.

The web pages, the JSON API, the CLI and the benchmarks all go through :class:`Desk`, so
the rules are the same everywhere. Every write is one transaction that appends the
signed record(s) and updates the projections (:mod:`sync.projection.cases`); nothing
needs the network.

``check_intake``
    validates a form (applicant, ID document, phone, item, materials, field lengths) and
    the node's authority for the item. Staleness (an expired catalog or grant, a grant
    whose catalog release is not held) never refuses a walk-in: the case is flagged.
``intake``
    takes the case in: the next case number of the day, the deadline in working days,
    the ``case.intake`` record, and for a proxy case its ``forward`` event in the same
    transaction — the materials go up with the record, the clerk has nothing more to do.
``act``
    one step of a case (decide, ask for a supplement, supply, deliver, withdraw, rate),
    refused up front when this node is not the one that may take it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from core.admin import is_within
from core.cases import (
    DECISIONS,
    OPEN_STATES,
    CaseEvent,
    CaseState,
    Delivery,
    Event,
    Rating,
    State,
    allowed_events,
    is_overdue,
)
from core.catalog import CatalogRelease, Item, Mode
from core.clock import Clock, local_date
from core.errors import AuthorityError, ErrorCode, InputError
from core.grants import Grant, Verdict
from core.intake import (
    CALENDAR_ESTIMATED,
    MAX_NOTES,
    MAX_REASON,
    Applicant,
    Intake,
    Notice,
    case_number,
    check_applicant,
    clean_text,
    missing_materials,
    one_time_notice,
)
from node import config as node_config
from node.config import NodeConfig
from node.store import NodeStore
from sync.projection.calendars import HeldYears, StoreCalendar, held_years
from sync.projection.cases import OVERDUE_SQL
from sync.projection.catalog import catalog_release, current_catalog
from sync.projection.delegation import (
    ItemAuthority,
    authority_for,
    issue_grant,
    revoke_grant,
    split_by_mode,
)
from sync.projection.grants import StoreGrants
from sync.projection.heartbeat import heartbeat_flags, latest_heartbeat
from sync.record import kinds
from sync.record.db import transaction
from sync.record.keys import NodeKeys, load_key_file

CATALOG_EXPIRED = "E_CATALOG_EXPIRED"
CASE_COLUMNS = (
    "case_no, node, item, item_name, cat, mode, decider, name, doc_type, doc_no, phone, materials, notes,"
    " limit_days, deadline, flags, received, actor, state, rating, comment, delivery, decided_at, closed_at,"
    " missing, paused_days, events, intake_deadline"
)


@dataclass(frozen=True)
class IntakeForm:
    """What the clerk typed, unchecked."""

    item: str
    name: str
    doc_type: str
    doc_no: str
    phone: str
    materials: tuple[str, ...] = ()
    notes: str = ""

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> IntakeForm:
        materials = data.get("materials") or ()
        if isinstance(materials, str):
            materials = (materials,)
        if not isinstance(materials, (list, tuple)) or not all(isinstance(m, str) for m in materials):
            raise InputError(ErrorCode.FIELD_INVALID, "materials must be a list of material codes")
        values = {}
        for name in ("item", "name", "doc_type", "doc_no", "phone", "notes"):
            value = data.get(name, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise InputError(ErrorCode.FIELD_INVALID, f"{name} must be text")
            values[name] = value
        return cls(materials=tuple(materials), **values)


@dataclass(frozen=True)
class Checked:
    """A form that passed every check: ready to take in (or to print a notice for)."""

    item: Item
    authority: ItemAuthority
    applicant: Applicant
    materials: tuple[str, ...]
    notes: str
    flags: tuple[str, ...]


@dataclass
class Banner:
    level: str  # "warn" or "error"
    code: str
    detail: str = ""


@dataclass
class SyncStatus:
    last_ok: int | None
    last_attempt: int | None
    last_error: str | None
    waiting_up: int
    waiting_down: int | None  # unknown until the parent was last reached
    extra: dict[str, Any] = field(default_factory=dict)


class Desk:
    def __init__(
        self,
        store: NodeStore,
        node_keys: NodeKeys,
        config: NodeConfig,
        clock: Clock,
    ) -> None:
        self.store = store
        self.db = store.db
        self.keys = node_keys
        self.config = config
        self.clock = clock
        self.calendars = StoreCalendar()
        self.code = config.node.code
        self.tier = config.node.tier
        self._catalogs: dict[int, CatalogRelease] = {}

    @classmethod
    def open(cls, home: Path, clock: Clock) -> Desk:
        """The desk of the node whose directory is ``home`` (close it with ``desk.store.close()``)."""
        config = node_config.load(home)
        return cls(NodeStore.open(config.database_path, clock), load_key_file(config.key_path), config, clock)

    # -- catalog and authority ------------------------------------------------------------

    def catalog(self) -> CatalogRelease | None:
        row = self.db.conn.execute("SELECT max(version) FROM catalog_releases").fetchone()
        version = row[0]
        if version is None:
            return None
        if version not in self._catalogs:
            release = catalog_release(self.db, version) if self._catalogs else current_catalog(self.db)
            if release is None:
                return None
            self._catalogs[version] = release
        return self._catalogs[version]

    def calendar_years(self) -> HeldYears:
        """Which years deadlines are counted for, built in or published by central."""
        return held_years(self.db)

    def authority(self, item_code: str, at: int | None = None) -> ItemAuthority:
        catalog = self.catalog()
        if catalog is None:
            raise InputError(ErrorCode.ITEM_UNKNOWN, "no catalog release is held yet")
        item = catalog.get(item_code)
        if item is None:
            raise InputError(ErrorCode.ITEM_UNKNOWN, item_code)
        now = self.clock.now() if at is None else at
        return authority_for(self.db, self.store.log, self.code, self.tier, item, catalog, now)

    def items(self) -> list[ItemAuthority]:
        """Every catalog item this node holds a grant for (allowed or stale), catalog order."""
        catalog = self.catalog()
        if catalog is None:
            return []
        granted: set[str] = set()
        for grant in StoreGrants(self.db).held_by(self.code):
            granted.update(grant.items)
        now = self.clock.now()
        out = []
        for item in catalog.items:
            if item.code in granted:
                auth = authority_for(self.db, self.store.log, self.code, self.tier, item, catalog, now)
                if auth.mode is not None:
                    out.append(auth)
        return out

    def banners(self) -> list[Banner]:
        """Warnings for the top of every page: no/expired catalog, no/expired grants."""
        now = self.clock.now()
        out: list[Banner] = []
        catalog = self.catalog()
        if catalog is None:
            out.append(Banner("error", ErrorCode.ITEM_UNKNOWN.value, "no catalog release is held yet"))
        elif catalog.is_expired(now):
            out.append(Banner("warn", CATALOG_EXPIRED, f"version {catalog.version}"))
        grants = StoreGrants(self.db).held_by(self.code)
        if not grants:
            out.append(Banner("error", ErrorCode.GRANT_ITEM.value, "no grant is held by this node"))
        elif all(g.exp < now for g in grants):
            out.append(Banner("warn", ErrorCode.GRANT_EXPIRED.value, ""))
        latest = latest_heartbeat(self.db)
        for flag in heartbeat_flags(latest, now):
            level = "error" if flag is ErrorCode.CLOCK_BEHIND else "warn"
            out.append(Banner(level, flag.value, f"heartbeat #{latest.seq}" if latest else ""))
        return out

    # -- intake ---------------------------------------------------------------------------

    def check_intake(self, form: IntakeForm) -> Checked:
        """Every check of an intake form; raises the first fault with its code."""
        now = self.clock.now()
        today = local_date(now)
        item_code = clean_text("item", form.item, limit=20)
        applicant = check_applicant(form.name, form.doc_type, form.doc_no, form.phone, today)
        notes = clean_text("notes", form.notes, limit=MAX_NOTES, required=False)
        authority = self.authority(item_code, now)
        if not authority.allowed:
            code = authority.auth.code or ErrorCode.GRANT_ITEM
            raise AuthorityError(code, authority.auth.detail)
        received = tuple(m for m in authority.item.materials if m.code in set(form.materials))
        missing_materials(authority.item, set(form.materials))  # unknown material codes
        flags: list[str] = []
        if authority.auth.verdict is Verdict.STALE:
            flags.extend(code.value for code in authority.auth.flags)
        catalog = self.catalog()
        if catalog is not None and catalog.is_expired(now):
            flags.append(CATALOG_EXPIRED)
        flags.extend(flag.value for flag in heartbeat_flags(latest_heartbeat(self.db), now))
        return Checked(
            authority.item, authority, applicant, tuple(m.code for m in received), notes, tuple(flags)
        )

    def notice(self, form: IntakeForm) -> Notice:
        """The one-time notice (一次性告知) for a form whose required materials are incomplete."""
        checked = self.check_intake(form)
        return one_time_notice(
            checked.item,
            checked.applicant.name,
            set(checked.materials),
            self.config.node.name,
            local_date(self.clock.now()),
        )

    def similar_open(self, doc_no: str, item: str) -> list[dict[str, Any]]:
        """Open cases of the same applicant for the same item (to warn the clerk)."""
        rows = self.db.conn.execute(
            f"SELECT {CASE_COLUMNS} FROM cases WHERE doc_no = ? AND item = ? AND state IN (?, ?, ?)"
            " ORDER BY received DESC",
            (doc_no.strip().upper(), item, *OPEN_STATES),
        ).fetchall()
        return [self._row(r) for r in rows]

    def intake(self, form: IntakeForm, actor: str) -> dict[str, Any]:
        """Take the case in. Raises ``E_MATERIALS_MISSING`` when required materials are missing."""
        checked = self.check_intake(form)
        missing = missing_materials(checked.item, set(checked.materials))
        if missing:
            raise InputError(ErrorCode.MATERIALS_MISSING, "、".join(m.name for m in missing))
        now = self.clock.now()
        today = local_date(now)
        auth = checked.authority
        assert auth.mode is not None and auth.decider is not None and auth.grant is not None
        deadline = self.calendars.get(self.db).add_working_days(today, checked.item.time_limit_days)
        flags = list(checked.flags)
        if deadline.unknown_years:
            flags.append(CALENDAR_ESTIMATED)
        with transaction(self.db):
            number = case_number(self.code, today, self._next_serial(today))
            intake = Intake(
                case=number,
                item=checked.item.code,
                item_name=checked.item.name,
                cat=auth.grant.cat,
                mode=auth.mode,
                decider=auth.decider,
                applicant=checked.applicant,
                materials=checked.materials,
                notes=checked.notes,
                limit=checked.item.time_limit_days,
                deadline=deadline.date,
                flags=tuple(flags),
                grant=auth.grant.id,
            )
            record = self.store.log.append_local(
                self.keys, self.code, kinds.CASE_INTAKE, intake.to_body(), actor=actor
            )
            if auth.mode is Mode.PROXY:
                self._event(number, CaseEvent(Event.FORWARD, now), actor, refs={"intake": record.id})
        return self.case(number)

    def _next_serial(self, day: date) -> int:
        # The day's numbers only, read off the case number's index (":" follows the digits):
        # the cost stays that of one day's intakes however many years the store holds.
        prefix = f"{self.code}-{day:%Y%m%d}-"
        row = self.db.conn.execute(
            "SELECT max(CAST(substr(case_no, ?) AS INTEGER)) FROM cases"
            " WHERE case_no > ? AND case_no < ? AND +node = ?",
            (len(prefix) + 1, prefix, prefix + ":", self.code),
        ).fetchone()
        return (row[0] or 0) + 1

    # -- case steps -----------------------------------------------------------------------

    def act(self, case_no: str, event: str, fields: dict[str, Any], actor: str) -> dict[str, Any]:
        """Apply one step to a case held here, if this node may take it."""
        case = self.case(case_no)
        try:
            kind = Event(event)
        except ValueError as exc:
            raise InputError(ErrorCode.CASE_TRANSITION, f"unknown step {event!r}") from exc
        if kind is Event.FORWARD:
            raise InputError(ErrorCode.CASE_TRANSITION, "a proxy case is forwarded when it is taken in")
        owner = case["decider"] if kind in DECISIONS else case["node"]
        if owner != self.code:
            code = ErrorCode.NOT_DECIDER if kind in DECISIONS else ErrorCode.NOT_AUTHORIZED
            raise AuthorityError(code, f"{kind.value} on {case_no} belongs to {owner}")
        step = self._build_event(kind, fields, after=self._last_event_at(case_no))
        state = self._state(case)
        if kind not in allowed_events(state):
            raise InputError(
                ErrorCode.CASE_TRANSITION, f"{kind.value} is not possible in state {state.state.value}"
            )
        with transaction(self.db):
            self._event(case_no, step, actor)
        return self.case(case_no)

    def _last_event_at(self, case_no: str) -> int:
        row = self.db.conn.execute("SELECT max(at) FROM case_events WHERE case_no = ?", (case_no,)).fetchone()
        return int(row[0] or 0)

    def _build_event(self, kind: Event, fields: dict[str, Any], after: int = 0) -> CaseEvent:
        # Steps replay in (at, record id) order everywhere: a step taken after seeing others
        # must sort after them, even within the same second or on a clock that lags.
        now = max(self.clock.now(), after + 1)
        reason = clean_text("reason", fields.get("reason", ""), limit=MAX_REASON, required=False)
        missing: tuple[str, ...] = ()
        delivery = rating = None
        if kind is Event.REQUEST_SUPPLEMENT:
            raw = fields.get("missing") or ()
            if isinstance(raw, str):
                raw = [line for line in raw.splitlines()]
            missing = tuple(clean_text("missing", m, limit=100) for m in raw if str(m).strip())
        if kind is Event.DELIVER:
            try:
                delivery = Delivery(str(fields.get("delivery", "")))
            except ValueError as exc:
                raise InputError(ErrorCode.FIELD_INVALID, "delivery: pickup, mail or electronic") from exc
        if kind is Event.RATE:
            try:
                rating = Rating(int(str(fields.get("rating", ""))))
            except ValueError as exc:
                raise InputError(ErrorCode.FIELD_INVALID, "rating: 1 to 5") from exc
        return CaseEvent(kind, now, reason=reason, missing=missing, delivery=delivery, rating=rating)

    def _event(self, case_no: str, event: CaseEvent, actor: str, refs: dict[str, Any] | None = None) -> None:
        body = {"case": case_no, **event.to_body()}
        self.store.log.append_local(self.keys, self.code, kinds.CASE_EVENT, body, actor=actor, refs=refs)

    @staticmethod
    def _state(case: dict[str, Any]) -> CaseState:
        state = State(case["state"])
        mode = Mode(case["mode"])
        rating = Rating(case["rating"]) if case["rating"] else None
        if state is State.SUPPLEMENT:
            origin = State.FORWARDED if mode is Mode.PROXY else State.ACCEPTED
            return CaseState(state, mode, rating, supplement_from=origin, paused_since=0)
        return CaseState(state, mode, rating)

    def steps(self, case: dict[str, Any]) -> list[str]:
        """The steps this node may take on ``case`` now (for the buttons on its page)."""
        out = []
        for event in allowed_events(self._state(case)):
            if event is Event.FORWARD:
                continue
            owner = case["decider"] if event in DECISIONS else case["node"]
            if owner == self.code:
                out.append(event.value)
        return out

    # -- reading --------------------------------------------------------------------------

    def case(self, case_no: str) -> dict[str, Any]:
        row = self.db.conn.execute(
            f"SELECT {CASE_COLUMNS} FROM cases WHERE case_no = ?", (case_no,)
        ).fetchone()
        if row is None:
            raise InputError(ErrorCode.CASE_UNKNOWN, case_no)
        return self._row(row)

    def events(self, case_no: str) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT e.event, e.at, e.reason, e.actor, e.origin, e.status, e.code, r.ts FROM case_events e"
            " JOIN records r ON r.id = e.record_id WHERE e.case_no = ? ORDER BY e.at, e.record_id",
            (case_no,),
        ).fetchall()
        keys = ("event", "at", "reason", "actor", "origin", "status", "code", "ts")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        """Cases by case number, ID number, or (part of) the applicant's name."""
        q = clean_text("q", query, limit=40)
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.conn.execute(
            f"SELECT {CASE_COLUMNS} FROM cases WHERE case_no = ? OR doc_no = ? OR case_no LIKE ? ESCAPE '\\'"
            " OR name LIKE ? ESCAPE '\\' ORDER BY received DESC LIMIT ?",
            (q, q.upper(), like, like, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def recent(self, limit: int = 30) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            f"SELECT {CASE_COLUMNS} FROM cases WHERE node = ? ORDER BY received DESC LIMIT ?",
            (self.code, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def queue(self) -> list[dict[str, Any]]:
        """Cases this node decides that wait for a decision: the approver's queue, oldest first."""
        rows = self.db.conn.execute(
            f"SELECT {CASE_COLUMNS} FROM cases WHERE decider = ? AND"
            " ((mode = 'proxy' AND state = 'forwarded') OR (mode = 'direct' AND state = 'accepted'))"
            " ORDER BY deadline, received",
            (self.code,),
        ).fetchall()
        return [self._row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        today = local_date(self.clock.now()).isoformat()
        conn = self.db.conn
        start = self.clock.now() - 86_400
        return {
            "today": conn.execute(
                "SELECT count(*) FROM cases WHERE node = ? AND received >= ?", (self.code, start)
            ).fetchone()[0],
            "open": conn.execute(
                "SELECT count(*) FROM cases WHERE node = ? AND state IN (?, ?, ?)", (self.code, *OPEN_STATES)
            ).fetchone()[0],
            "overdue": conn.execute(
                f"SELECT count(*) FROM cases WHERE (node = ? OR decider = ?) AND {OVERDUE_SQL}",
                (self.code, self.code, today),
            ).fetchone()[0],
            "queue": len(self.queue()),
        }

    def _row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        keys = [k.strip() for k in CASE_COLUMNS.split(",")]
        case = dict(zip(keys, row, strict=True))
        case["materials"] = json.loads(case["materials"])
        case["flags"] = json.loads(case["flags"])
        case["missing"] = json.loads(case["missing"]) if case["missing"] else None
        today = local_date(self.clock.now()).isoformat()
        case["overdue"] = is_overdue(case["state"], case["deadline"], today)
        case["mine"] = case["node"] == self.code
        return case

    # -- sync status ----------------------------------------------------------------------

    def sync_status(self) -> SyncStatus:
        """Last successful sync and what waits to go up (own subtree's records not yet acked)."""
        state = dict(self.db.conn.execute("SELECT key, value FROM node_state").fetchall())
        acked = int(state.get("sync.up.acked", 0))
        rows = self.db.conn.execute(
            "SELECT DISTINCT origin FROM records WHERE arrival > ?", (acked,)
        ).fetchall()
        mine = [o for (o,) in rows if _inside(o, self.code)]
        waiting = 0
        for origin in mine:
            waiting += self.db.conn.execute(
                "SELECT count(*) FROM records WHERE origin = ? AND arrival > ?", (origin, acked)
            ).fetchone()[0]
        down = state.get("sync.down.waiting")
        return SyncStatus(
            last_ok=int(state["sync.last_ok"]) if "sync.last_ok" in state else None,
            last_attempt=int(state["sync.last_attempt"]) if "sync.last_attempt" in state else None,
            last_error=state.get("sync.last_error"),
            waiting_up=waiting,
            waiting_down=int(down) if down is not None else None,
        )


def _inside(origin: str, node: str) -> bool:
    try:
        return is_within(origin, node)
    except InputError:
        return False


class Delegation:
    """A town's sub-delegation to its villages (node admin)."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def parents(self) -> list[Grant]:
        """This node's grants that may be passed down: valid now, depth left, not revoked."""
        now = self.desk.clock.now()
        source = StoreGrants(self.desk.db)
        out = []
        for grant in source.held_by(self.desk.code):
            if (
                grant.depth >= 1
                and grant.nbf <= now <= grant.exp
                and not list(source.revocations_of(grant.id))
            ):
                out.append(grant)
        return out

    def children(self) -> list[dict[str, str]]:
        rows = self.desk.db.conn.execute(
            "SELECT c.code, c.name FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id"
            " WHERE c.parent = ? AND r.cert_id IS NULL ORDER BY c.code",
            (self.desk.code,),
        ).fetchall()
        return [{"code": code, "name": name} for code, name in rows]

    def delegate(
        self, village: str, parent: bytes, items: list[str], valid_days: int, actor: str
    ) -> list[bytes]:
        """Sub-grant ``items`` of grant ``parent`` to ``village``, one grant per mode; the ids."""
        if village not in {c["code"] for c in self.children()}:
            raise AuthorityError(
                ErrorCode.GRANT_AUDIENCE, f"{village} is not an enrolled village of {self.desk.code}"
            )
        grant = next((g for g in self.parents() if g.id == parent), None)
        if grant is None:
            raise AuthorityError(
                ErrorCode.GRANT_CHAIN_BROKEN, "that grant cannot be passed down (expired, revoked or depth 0)"
            )
        catalog = catalog_release(self.desk.db, grant.cat)
        if catalog is None:
            raise InputError(ErrorCode.GRANT_CATALOG, f"catalog version {grant.cat} is not held")
        if not items or not set(items) <= set(grant.items):
            raise AuthorityError(ErrorCode.GRANT_WIDENS, "only items of the parent grant can be passed down")
        if not 1 <= valid_days <= 366:
            raise InputError(ErrorCode.FIELD_INVALID, "valid days: 1 to 366")
        now = self.desk.clock.now()
        ids = []
        with transaction(self.desk.db):
            for mode, codes in split_by_mode(catalog, "village", items, grant.mode).items():
                record = issue_grant(
                    self.desk.store.log,
                    self.desk.keys,
                    self.desk.code,
                    aud=village,
                    items=codes,
                    mode=mode,
                    nbf=max(grant.nbf, now - 86_400),
                    exp=min(grant.exp, now + valid_days * 86_400),
                    depth=0,
                    cat=grant.cat,
                    parent=grant.id,
                    actor=actor,
                )
                ids.append(record.id)
        if not ids:
            raise AuthorityError(ErrorCode.GRANT_MODE, "none of these items is offered at village level")
        return ids

    def issued(self) -> list[tuple[Grant, bool]]:
        return StoreGrants(self.desk.db).issued_by(self.desk.code)

    def revoke(self, grant_id: bytes, reason: str, actor: str) -> None:
        with transaction(self.desk.db):
            revoke_grant(self.desk.store.log, self.desk.keys, self.desk.code, grant_id, reason, actor)
