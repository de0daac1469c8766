"""The department desk: the cases a department decides, and its decisions, signed with its key.

A case is on the desk when its decider is this department (routing fixed it at intake).
:meth:`DepartmentDesk.decide` takes one of the three decisions — approve, reject (with a
reason), ask for a supplement (the missing materials or a reason: 一次性告知) — after the
same checks central will make (this department decides the case and its item, the state
allows the step), as one ``case.event`` record appended in one transaction that also
replays the case. The record goes to central over RPC (:mod:`central.department.service`)
and from there down to the window.

Accounts are ``clerk.set`` records of the department (:mod:`web.accounts`), with the
department's roles (:data:`core.roles.DEPARTMENT_ROLES`); only an ``approver`` decides.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from central.department import config as department_config
from central.department.config import DepartmentConfig
from central.department.files import DepartmentFiles, DeskFile
from central.department.store import DepartmentStore, InboxCounts, SentCounts
from core.cases import DECISIONS, FILE_EVENTS, CaseEvent, Event, allowed_events, is_overdue
from core.catalog import CatalogRelease, Item
from core.clock import Clock, local_date
from core.errors import AuthorityError, ErrorCode, InputError
from core.files import DECISION_MATERIAL
from core.intake import MAX_REASON, clean_text
from core.roles import DEPARTMENT_ROLES
from sync.projection import case_queries
from sync.projection.case_queries import CaseEventRow, CaseRow, state_of
from sync.projection.catalog import catalog_release
from sync.projection.departments import items_of
from sync.projection.heartbeat import latest_heartbeat
from sync.record import kinds, trust
from sync.record.db import transaction
from sync.record.keys import NodeKeys, load_key_file
from web.accounts import Accounts

_CASE_FIELDS = tuple(f.name for f in fields(CaseRow))


@dataclass(frozen=True)
class MaterialLine:
    """One material of the item, and whether the window received it."""

    code: str
    name: str
    required: bool
    original: bool
    received: bool


@dataclass(frozen=True)
class DeskCase(CaseRow):
    """A case as the desk shows it: the stored row and what is derived when it is read."""

    overdue: bool


@dataclass(frozen=True)
class CaseFile:
    """Everything the case page shows: the case, its item's materials, its steps, the
    decisions the desk may take now."""

    case: DeskCase
    item: Item | None
    materials: tuple[MaterialLine, ...]
    steps: tuple[CaseEventRow, ...]
    decisions: tuple[str, ...]
    files: tuple[DeskFile, ...] = ()  # every file its records list, in record then page order

    def pages(self, material: str) -> tuple[DeskFile, ...]:
        """The files of ``material``, in page order."""
        return tuple(f for f in self.files if f.ref.material == material)

    @property
    def others(self) -> tuple[DeskFile, ...]:
        """The files of materials the item's list does not name (the agent's authorization)."""
        named = {m.code for m in self.materials} | {DECISION_MATERIAL}
        return tuple(f for f in self.files if f.ref.material not in named)

    @property
    def arriving(self) -> bool:
        """Whether some of its files have not arrived from central yet (传输中)."""
        return any(not f.held for f in self.files)


class DepartmentDesk:
    """An opened department directory: config, keys, store. A context manager."""

    def __init__(self, config: DepartmentConfig, own: NodeKeys, store: DepartmentStore, clock: Clock) -> None:
        self.config = config
        self.code = config.code
        self.name = config.department.name
        self.keys = own
        self.store = store
        self.db = store.db
        self.files = DepartmentFiles(store)
        self.clock = clock
        self._catalogs: dict[int, CatalogRelease | None] = {}

    @classmethod
    def open(cls, home: Path, clock: Clock) -> DepartmentDesk:
        config = department_config.load(home)
        own = load_key_file(config.key_path)
        return cls(config, own, DepartmentStore.open(config.database_path, clock), clock)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DepartmentDesk:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def accounts(self) -> Accounts[NodeKeys]:
        def write(signer: NodeKeys, kind: str, body: dict[str, Any], actor: str) -> object:
            return self.store.log.append_local(signer, self.code, kind, body, actor=actor)

        return Accounts(self.db, self.clock, owner=self.code, roles=DEPARTMENT_ROLES, write=write)

    # -- reading ------------------------------------------------------------------------------

    def shown(self, rows: list[CaseRow]) -> list[DeskCase]:
        today = local_date(self.clock.now()).isoformat()
        return [
            DeskCase(
                **{n: getattr(r, n) for n in _CASE_FIELDS}, overdue=is_overdue(r.state, r.deadline, today)
            )
            for r in rows
        ]

    def queue(self) -> list[DeskCase]:
        """The cases waiting for this department's decision, by deadline."""
        return self.shown(case_queries.queue(self.db, self.code))

    def decided(self, limit: int = 30) -> list[DeskCase]:
        return self.shown(case_queries.decided_by(self.db, self.code, limit))

    def case(self, case_no: str) -> CaseFile:
        """The case ``case_no`` as the case page shows it; ``E_CASE_UNKNOWN`` when it is
        not one this department decides."""
        row = case_queries.case(self.db, case_no)
        if row is None or row.decider != self.code:
            raise InputError(ErrorCode.CASE_UNKNOWN, case_no)
        item = self._item(row.cat, row.item)
        materials = tuple(
            MaterialLine(m.code, m.name, m.required, m.original, m.code in row.materials)
            for m in (item.materials if item else ())
        )
        steps = tuple(case_queries.events(self.db, case_no))
        allowed = tuple(e.value for e in allowed_events(state_of(row)) if e in DECISIONS)
        shown = tuple(self.files.of_case(case_no))
        return CaseFile(self.shown([row])[0], item, materials, steps, allowed, shown)

    def node_names(self) -> dict[str, str]:
        """The name of every enrolled party, by code (the windows a case comes from)."""
        return {c.code: c.name for c in reversed(trust.certificates(self.db))}

    def _item(self, version: int, code: str) -> Item | None:
        if version not in self._catalogs:
            self._catalogs[version] = catalog_release(self.db, version)
        catalog = self._catalogs[version]
        return catalog.get(code) if catalog else None

    def link(self) -> tuple[InboxCounts, SentCounts, int | None]:
        """What came from central, what went to it, and central's last heartbeat time."""
        beat = latest_heartbeat(self.db)
        return self.store.inbox_counts(), self.store.sent_counts(self.code), beat.time if beat else None

    # -- deciding -----------------------------------------------------------------------------

    def decide(
        self,
        case_no: str,
        event: str,
        form: dict[str, Any],
        actor: str,
        letter: tuple[str, bytes] | None = None,
    ) -> CaseFile:
        """Take the decision ``event`` on ``case_no`` with the fields of ``form``, and for an
        approval or a rejection the scanned decision letter ``letter`` (its name and bytes)
        if one is given: normalised, kept in the file store, listed in the signed record."""
        shown = self.case(case_no)
        case = shown.case
        try:
            kind = Event(event)
        except ValueError as exc:
            raise InputError(ErrorCode.CASE_TRANSITION, f"unknown step {event!r}") from exc
        if kind not in DECISIONS:
            raise AuthorityError(ErrorCode.NOT_AUTHORIZED, f"{kind.value} belongs to the window")
        now = self.clock.now()
        if case.item not in items_of(self.db, self.code, now):
            raise AuthorityError(ErrorCode.DEPARTMENT_ITEM, f"{self.code} does not decide {case.item}")
        if kind.value not in shown.decisions:
            raise InputError(ErrorCode.CASE_TRANSITION, f"{kind.value} is not possible in state {case.state}")
        # Steps replay in (at, record id) order: a decision sorts after every step seen.
        at = max(now, case_queries.last_event_at(self.db, case_no) + 1)
        reason = clean_text("reason", form.get("reason", ""), limit=MAX_REASON, required=False)
        missing: tuple[str, ...] = ()
        if kind is Event.REQUEST_SUPPLEMENT:
            raw = form.get("missing") or ()
            lines = raw.splitlines() if isinstance(raw, str) else list(raw)
            missing = tuple(clean_text("missing", m, limit=100) for m in lines if str(m).strip())
        if letter is None:
            step = CaseEvent(kind, at, reason=reason, missing=missing)
            with transaction(self.db):
                self.store.log.append_local(
                    self.keys, self.code, kinds.CASE_EVENT, {"case": case_no, **step.to_body()}, actor=actor
                )
            return self.case(case_no)
        if kind not in FILE_EVENTS:
            raise InputError(
                ErrorCode.FIELD_INVALID,
                f"{kind.value}: a decision letter belongs to an approval or a rejection",
                zh=f"“{kind.zh}”不能附带决定书",
                field="letter",
            )
        ref, scan = self.files.letter(*letter)
        step = CaseEvent(kind, at, reason=reason, missing=missing, files=(ref,))
        with self.files.storing(ref, scan), transaction(self.db):
            self.store.log.append_local(
                self.keys, self.code, kinds.CASE_EVENT, {"case": case_no, **step.to_body()}, actor=actor
            )
            self.files.note_held(ref)
        return self.case(case_no)
