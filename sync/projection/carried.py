"""Every node's check of another city's record carried inside one of ours.

Our central admits a foreign record at its door (``central.crossing``) before it carries it
in a record of its own (``carried`` on a ``case.intake`` or a ``case.event``); every node
that stores that record checks again, from the records it holds, that the carried record
verifies along its chain from the root of our cross-certification of its city
(:func:`sync.record.foreign.open_foreign`) and says what our record says it says: the same
applicant, materials and pages for an intake; the same step, reason and pages for a
decision; the owning city's case number and deadline for its acceptance. An intake whose
item is one of the carried intake's parts (多地联办, :mod:`core.parts`) is that city's part
of the other city's application: its item must be the part's. A relay that
altered either record fails its signature; a central that said something else than the
record it carries is refused (``E_PEER_CASE``), nothing written.

:func:`check_parts` is every store's check of an intake's own parts: each allowed by our
cross-certification of its city in force when the case was taken in (``E_PEER_SCOPE``).
"""

from __future__ import annotations

from sqlite_utils import Database

from core.carried import Carried
from core.cases import ACCEPTANCES, CaseEvent, Event
from core.errors import AuthorityError, ErrorCode, RecordError, TongbanError
from core.intake import Intake
from core.parts import check_part
from sync.projection.peers import peer_state
from sync.record import kinds
from sync.record.envelope import Record
from sync.record.foreign import Foreign, open_foreign
from sync.record.log import decode_stored


def _differs(detail: str) -> AuthorityError:
    return AuthorityError(ErrorCode.PEER_CASE, detail)


def open_carried(db: Database, carried: Carried) -> Foreign:
    """The carried record, checked from the root our newest cross-certification names."""
    held = peer_state(db, carried.net)
    newest = held.newest if held is not None else None
    if newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, carried.net)
    return open_foreign(carried.env, list(carried.chain), carried.net, newest.root_pk)


def _inner_intake(record: Record) -> Intake:
    if record.kind != kinds.CASE_INTAKE:
        raise _differs(f"a {record.kind} carried where an intake belongs")
    try:
        return Intake.from_body(record.body)
    except TongbanError as exc:
        raise RecordError(ErrorCode.SCHEMA, f"carried intake: {exc.text('en')}") from exc


def check_intake(db: Database, record: Record, intake: Intake) -> None:
    """An owning city's intake of a case another city took in for it, or of our part of
    another city's application; and the parts of an intake of ours."""
    check_parts(db, record, intake)
    if intake.carried is None:
        return
    theirs = _inner_intake(open_carried(db, intake.carried).record)
    home = record.payload.net
    part = next((p for p in theirs.parts if p.city == home), None)
    if theirs.owner != home and part is None:
        raise _differs(f"{theirs.case} was taken in for {theirs.owner or theirs.item}, not for {home}")
    item = part.item if part is not None else theirs.item
    same = (theirs.applicant, theirs.agent, theirs.materials, theirs.files, theirs.extra, item)
    if same != (intake.applicant, intake.agent, intake.materials, intake.files, intake.extra, intake.item):
        raise _differs(f"{intake.case} does not say what {theirs.case} says")


def check_parts(db: Database, record: Record, intake: Intake) -> None:
    """Every part of ``intake`` allowed by our cross-certification of its city in force
    when the case was taken in (:func:`core.parts.check_part`)."""
    if not intake.parts:
        return
    for part in intake.parts:  # the record's net is ours: the log's door refuses any other
        check_part(peer_state(db, part.city), part, record.payload.net, record.payload.ts)


def check_event(db: Database, event: CaseEvent) -> None:
    """Our central's step carrying the owning city's acceptance or decision (or the window
    city's supplement or withdrawal, at the owning city)."""
    if event.carried is None:
        return
    inner = open_carried(db, event.carried).record
    if event.kind in ACCEPTANCES:
        theirs = _inner_intake(inner)
        if (theirs.case, theirs.deadline.isoformat()) != (event.peer_case, event.peer_deadline):
            raise _differs(f"the acceptance names {theirs.case} due {theirs.deadline}")
        return
    if inner.kind != kinds.CASE_EVENT:
        raise _differs(f"a {inner.kind} carried where a step belongs")
    try:
        step = CaseEvent.from_body({k: v for k, v in inner.body.items() if k != "case"})
    except TongbanError as exc:
        raise RecordError(ErrorCode.SCHEMA, f"carried step: {exc.text('en')}") from exc
    kind = event.kind if (event.kind, step.kind) in _CARRIED_AS else step.kind
    ours = (event.kind, event.reason, event.missing, event.files, event.delivery)
    if ours != (kind, step.reason, step.missing, step.files, step.delivery):
        raise _differs(f"our {event.kind.value} does not say what the carried {step.kind.value} says")


_CARRIED_AS = frozenset(
    {
        (Event.PART_APPROVE, Event.APPROVE),
        (Event.PART_REJECT, Event.REJECT),
        (Event.PART_SUPPLEMENT, Event.REQUEST_SUPPLEMENT),
        (Event.SUPPLY, Event.PART_SUPPLY),
    }
)
"""(our step, the other city's it carries) of a joint application: our part step carries
the part's city's decision or request; at the part's city, its central's supply carries
the window city's supplement to the part."""


def carried_intake(carried: Carried) -> tuple[str, int, str]:
    """The case number, the time and the node of the other city's intake ``carried`` holds
    (a store checked it when it took the record in)."""
    record = decode_stored(carried.env)
    return str(record.body.get("case", "")), record.payload.ts, record.origin
