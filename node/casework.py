"""The steps of a case at one node: deciding, asking for a supplement, supplying, delivering,
withdrawing, rating.

A step is refused up front when the case is void (its intake was signed with a key after
its revocation's cut-off: ``E_CERT_REVOKED``), when this node is not the one that may take
it (:func:`core.cases.owner_of`) or when the case's state does not allow it — a delivery
also while another city's part of a joint application is open (``E_PART_OPEN``,
:mod:`core.parts`); otherwise it is one
``case.event`` record, appended in one transaction that also replays the case
(:mod:`sync.projection.cases`). A case read here is a :class:`Case`: the stored row with
what depends on the reader (overdue today, taken in here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from core.cases import (
    DECISIONS,
    PART_EVENTS,
    CaseEvent,
    CaseState,
    Delivery,
    Event,
    Rating,
    State,
    allowed_events,
    is_overdue,
    owner_of,
)
from core.catalog import Mode
from core.clock import Clock, local_date
from core.errors import AuthorityError, ErrorCode, InputError
from core.intake import MAX_REASON, clean_text
from core.parts import asking, check_deliverable
from node.files import Attachment
from node.store import NodeStore
from sync.link.store import link_state
from sync.projection import case_queries
from sync.projection.case_queries import CaseRow
from sync.record import kinds
from sync.record.db import transaction
from sync.record.keys import NodeKeys

_CASE_FIELDS = tuple(f.name for f in fields(CaseRow))
CARRIED_ONLY = frozenset({Event.PEER_ACCEPT, *PART_EVENTS})
"""Steps no node takes by hand: our central's, each carrying another city's record."""


@dataclass(frozen=True)
class Case(CaseRow):
    """A case as a node shows it: the stored row, and what is derived when it is read."""

    overdue: bool  # its time limit runs and its deadline has passed
    mine: bool  # taken in at this node
    waiting_up: bool = False  # a proxy case taken in here whose records the parent does not hold yet

    @classmethod
    def shown(cls, row: CaseRow, node: str, today: str, *, waiting_up: bool = False) -> Case:
        """``row`` as ``node`` shows it on ``today`` (an ISO local date)."""
        values = {name: getattr(row, name) for name in _CASE_FIELDS}
        overdue = is_overdue(row.state, row.deadline, today) and not row.quarantined
        return cls(**values, overdue=overdue, mine=row.node == node, waiting_up=waiting_up)


class Casework:
    """The case steps of the node ``code``: records signed with ``node_keys``."""

    def __init__(self, store: NodeStore, node_keys: NodeKeys, code: str, clock: Clock) -> None:
        self.store = store
        self.db = store.db
        self.keys = node_keys
        self.code = code
        self.clock = clock

    def shown(self, rows: list[CaseRow]) -> list[Case]:
        """The cases as shown here. A proxy case taken in here that is forwarded in its own
        record but still waits to go up (offline, the parent has not acknowledged its
        intake) is shown as waiting, not as 已转报: the decider cannot see it yet."""
        today = local_date(self.clock.now()).isoformat()
        forwarded = [r.case_no for r in rows if r.node == self.code and r.state is State.FORWARDED]
        acked = link_state(self.db).up_acked if forwarded else 0
        arrived = case_queries.intake_arrivals(self.db, forwarded)
        return [
            Case.shown(row, self.code, today, waiting_up=arrived.get(row.case_no, 0) > acked) for row in rows
        ]

    def case(self, case_no: str) -> Case:
        """The case ``case_no``; ``E_CASE_UNKNOWN`` when this store holds none."""
        row = case_queries.case(self.db, case_no)
        if row is None:
            raise InputError(ErrorCode.CASE_UNKNOWN, case_no)
        return self.shown([row])[0]

    def act(
        self,
        case_no: str,
        event: str,
        fields: dict[str, Any],
        actor: str,
        pages: Callable[[Case, Event], Attachment] | None = None,
    ) -> Case:
        """Apply one step to a case held here, if this node may take it.

        ``pages``: the step's files (:mod:`node.files`), checked once the step is known to be
        allowed; their blobs are stored with the step's record or not at all."""
        case = self.case(case_no)
        if case.quarantined:
            raise AuthorityError(
                ErrorCode.CERT_REVOKED, f"{case_no} was taken in with a key after its revocation's cut-off"
            )
        try:
            kind = Event(event)
        except ValueError as exc:
            raise InputError(ErrorCode.CASE_TRANSITION, f"unknown step {event!r}") from exc
        if kind is Event.FORWARD:
            raise InputError(ErrorCode.CASE_TRANSITION, "a proxy case is forwarded when it is taken in")
        owner = owner_of(kind, case.node, case.decider)
        if owner != self.code:
            detail = f"{kind.value} on {case_no} belongs to {owner}"
            if kind in DECISIONS:
                raise AuthorityError(ErrorCode.NOT_DECIDER, detail)
            raise AuthorityError(ErrorCode.NOT_AUTHORIZED, detail)
        if kind is Event.RATE and case.rating is not None:
            raise InputError(ErrorCode.CASE_RATED, case_no)
        step = self.build_event(kind, fields, after=case_queries.last_event_at(self.db, case_no))
        state = state_of(case)
        if kind not in allowed_events(state):
            raise InputError(
                ErrorCode.CASE_TRANSITION,
                f"{kind.value} is not possible in state {state.state.value}",
                zh=f"办件当前为“{state.state.zh}”，不能“{kind.zh}”",
            )
        if kind is Event.DELIVER:  # 多地联办: every other city's part decided first
            check_deliverable(case_queries.parts_of(self.db, case_no))
        if kind is Event.PART_SUPPLY and step.peer_case not in {
            p.their_case for p in asking(case_queries.parts_of(self.db, case_no))
        }:
            raise InputError(
                ErrorCode.CASE_TRANSITION,
                f"part_supply: no part of {case_no} asks for a supplement as {step.peer_case!r}",
                zh="该联办部分没有要求补正，或已补正",
                field="part",
            )
        attachment = pages(case, kind) if pages is not None else None
        if attachment is None or not attachment.refs:
            with transaction(self.db):
                self.append_event(case_no, step, actor)
            return self.case(case_no)
        step = dataclasses.replace(step, files=attachment.refs)
        with attachment.storing(), transaction(self.db):
            self.append_event(case_no, step, actor)
            attachment.note_held()
        return self.case(case_no)

    def steps(self, case: CaseRow) -> list[str]:
        """The steps this node may take on ``case`` now (for the buttons on its page)."""
        if case.quarantined:
            return []
        asked = Event.PART_SUPPLY in allowed_events(state_of(case)) and bool(
            asking(case_queries.parts_of(self.db, case.case_no))
        )
        return [
            event.value
            for event in allowed_events(state_of(case))
            if event is not Event.FORWARD
            and owner_of(event, case.node, case.decider) == self.code
            and event not in CARRIED_ONLY  # another city's steps, which only our central carries
            and (event is not Event.PART_SUPPLY or asked)  # only while a part's city asks
        ]

    def build_event(self, kind: Event, fields: dict[str, Any], after: int = 0) -> CaseEvent:
        """The step ``kind`` with the fields a clerk filled in, checked; timed after ``after``."""
        # Steps replay in (at, record id) order everywhere: a step taken after seeing others
        # must sort after them, even within the same second or on a clock that lags.
        now = max(self.clock.now(), after + 1)
        reason = clean_text("reason", fields.get("reason", ""), limit=MAX_REASON, required=False)
        missing: tuple[str, ...] = ()
        delivery = rating = None
        if kind is Event.REJECT and not reason:
            raise InputError(
                ErrorCode.FIELD_REQUIRED, "reason: a rejection says why", zh="不予须写明理由", field="reason"
            )
        if kind is Event.REQUEST_SUPPLEMENT:
            raw = fields.get("missing") or ()
            if isinstance(raw, str):
                raw = raw.splitlines()
            missing = tuple(clean_text("missing", m, limit=100) for m in raw if str(m).strip())
            if not (missing or reason):
                raise InputError(
                    ErrorCode.FIELD_REQUIRED,
                    "missing: list the materials to supply, or give a reason",
                    zh="请列明需补正的材料（或写明理由），一次告知全部",
                    field="missing",
                )
        if kind is Event.DELIVER:
            try:
                delivery = Delivery(str(fields.get("delivery", "")))
            except ValueError as exc:
                raise InputError(
                    ErrorCode.FIELD_INVALID,
                    "delivery: pickup, mail or electronic",
                    zh="请选择送达方式",
                    field="delivery",
                ) from exc
        if kind is Event.RATE:
            try:
                rating = Rating(int(str(fields.get("rating", ""))))
            except ValueError as exc:
                raise InputError(
                    ErrorCode.FIELD_INVALID, "rating: 1 to 5", zh="请选择评价等级", field="rating"
                ) from exc
        peer_case = ""
        if kind is Event.PART_SUPPLY:  # names the part's case there (its city asked)
            peer_case = clean_text("part", str(fields.get("part", "")), limit=64)
        return CaseEvent(
            kind, now, reason=reason, missing=missing, delivery=delivery, rating=rating, peer_case=peer_case
        )

    def append_event(
        self, case_no: str, event: CaseEvent, actor: str, refs: dict[str, Any] | None = None
    ) -> None:
        """The ``case.event`` record of ``event`` (inside the caller's transaction)."""
        body = {"case": case_no, **event.to_body()}
        self.store.log.append_local(self.keys, self.code, kinds.CASE_EVENT, body, actor=actor, refs=refs)


def state_of(case: CaseRow) -> CaseState:
    """The state machine's view of a stored case (what :func:`allowed_events` needs)."""
    if case.state is State.SUPPLEMENT:
        origin = State.FORWARDED if case.mode is Mode.PROXY else State.ACCEPTED
        return CaseState(case.state, case.mode, case.rating, supplement_from=origin, paused_since=0)
    return CaseState(case.state, case.mode, case.rating)
