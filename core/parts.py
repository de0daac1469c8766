"""多地联办: one application whose parts other cities decide, and the state of each part.

A household registration moved from Qingpu to Haining is one application at the Haining
window: the arriving city's part (户口迁入) is the case itself — its item, its decider, its
state — and the leaving city's part (户口迁出) is a :class:`Part` of its intake
(``Intake.parts``), which our central sends to that city (``central.joint``). That city
accepts it as a case of its own and decides it there; its acceptance and its decision come
back as **part steps** on our case (``part_accept``, ``part_approve``, ``part_reject``,
``part_supplement`` in :mod:`core.cases`), and the supplement our window receives for a part
goes to that city as ``part_supply``: none of them moves the case's own state. :func:`progress` folds them
into the state of each part; :func:`check_deliverable` is the rule that the window delivers
(送达) only once every part is decided.

Body of a part (in the intake's ``parts`` list, present only when not empty)::

    {"city": tstr,   # the net of the city that decides the part
     "item": tstr,   # its item, of its catalog
     "cat": uint,    # the version of its catalog our cross-certification names
     "name": tstr}   # the item's name there, as the window showed it

A part is allowed (:func:`check_part`) only when our cross-certification of that city in
force when the case was taken in lists the item at that version with the mode
``joint_part``: every store refuses any other at ingest (``E_PEER_SCOPE``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.cases import KEEPS_STATE, CaseEvent, Event
from core.errors import AuthorityError, ErrorCode, InputError
from core.federation import JOINT_PART, PeerState

MAX_PARTS = 8
MAX_PART_NAME = 100


def _invalid(detail: str) -> InputError:
    return InputError(ErrorCode.FIELD_INVALID, f"case.intake: parts: {detail}")


def _code(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not value.isprintable():
        raise _invalid(f"{what} must be 1-64 printable characters")
    return value


@dataclass(frozen=True)
class Part:
    """Another city's part of the application: its city, its item there, its name."""

    city: str
    item: str
    cat: int
    name: str

    def to_body(self) -> dict[str, Any]:
        return {"city": self.city, "item": self.item, "cat": self.cat, "name": self.name}

    @classmethod
    def from_body(cls, body: object) -> Part:
        if not isinstance(body, dict) or set(body) != {"city", "item", "cat", "name"}:
            raise _invalid("a part is exactly {city, item, cat, name}")
        cat, name = body["cat"], body["name"]
        if isinstance(cat, bool) or not isinstance(cat, int) or cat < 0:
            raise _invalid("cat must be a catalog version")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_PART_NAME:
            raise _invalid(f"name must be 1-{MAX_PART_NAME} characters")
        return cls(_code(body["city"], "city"), _code(body["item"], "item"), cat, name)


def parts_from_body(value: object) -> tuple[Part, ...]:
    """The ``parts`` of an intake body: 1 to :data:`MAX_PARTS`, one per city."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_PARTS:
        raise _invalid(f"a list of 1 to {MAX_PARTS} parts when present")
    parts = tuple(Part.from_body(p) for p in value)
    if len({p.city for p in parts}) != len(parts):
        raise _invalid("one part per city")
    return parts


def check_part(held: PeerState | None, part: Part, home: str, at: int) -> None:
    """Refuse ``part`` of a case taken in at ``at`` unless our cross-certification of its
    city in force then lists its item at its version with the mode ``joint_part``.

    Raises:
        AuthorityError: ``E_PEER_SCOPE``, naming what is missing.
    """
    if part.city == home:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"{part.item}: our own city's part is the case itself")
    cert = held.in_force_at(at) if held is not None else None
    if held is None or cert is None:
        raise AuthorityError(
            ErrorCode.PEER_SCOPE,
            f"no agreement with {part.city} in force",
            zh=f"本市与 {part.city} 没有有效的互认协议，不能联办其事项",
        )
    if held.revoked(cert, at) is not None:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"the agreement with {part.city} is revoked")
    entry = cert.scope.get(part.item)
    if entry is None or entry.ours or entry.cat != part.cat or JOINT_PART not in entry.modes:
        raise AuthorityError(
            ErrorCode.PEER_SCOPE,
            f"{part.item} (catalog {part.cat}) of {part.city} is not agreed for joint applications",
            zh=f"{cert.name}的“{part.name}”不在多地联办的互认范围内",
        )


class PartStatus(StrEnum):
    SENT = "sent"  # sent to the part's city, not accepted there yet
    ACCEPTED = "accepted"
    SUPPLEMENT = "supplement"  # its city asks for a supplement, our window takes it in
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def zh(self) -> str:
        return PART_STATUS_LABELS[self][0]

    @property
    def en(self) -> str:
        return PART_STATUS_LABELS[self][1]


PART_STATUS_LABELS: dict[PartStatus, tuple[str, str]] = {
    PartStatus.SENT: ("已送出，待对方受理", "sent, not accepted yet"),
    PartStatus.ACCEPTED: ("已受理", "accepted"),
    PartStatus.SUPPLEMENT: ("补正中", "awaiting supplement"),
    PartStatus.APPROVED: ("已办结（准予）", "approved"),
    PartStatus.REJECTED: ("已办结（不予）", "rejected"),
}
DECIDED = frozenset({PartStatus.APPROVED, PartStatus.REJECTED})
_STATUS_OF = {
    Event.PART_ACCEPT: PartStatus.ACCEPTED,
    Event.PART_APPROVE: PartStatus.APPROVED,
    Event.PART_REJECT: PartStatus.REJECTED,
    Event.PART_SUPPLEMENT: PartStatus.SUPPLEMENT,
    Event.PART_SUPPLY: PartStatus.ACCEPTED,
}


@dataclass(frozen=True)
class PartProgress:
    """Where one part is: its status, its case number and deadline in its city once
    accepted, the reason of a rejection or a supplement request (with the materials
    asked for), and when the last step was taken."""

    part: Part
    status: PartStatus = PartStatus.SENT
    their_case: str = ""
    deadline: str = ""
    reason: str = ""
    at: int = 0
    missing: tuple[str, ...] = ()

    @property
    def decided(self) -> bool:
        return self.status in DECIDED


def progress(parts: Iterable[Part], steps: Iterable[CaseEvent]) -> tuple[PartProgress, ...]:
    """The state of each part after the case's part steps (applied, in case order); a
    step's city is the city of the record it carries, or for our window's ``part_supply``
    the city whose case it names. A decision is final: a step arriving after it does not
    reopen the part."""
    by_city = {p.city: PartProgress(p) for p in parts}
    for step in steps:
        city = _city_of(step, by_city)
        if step.kind not in KEEPS_STATE or city is None or by_city[city].decided:
            continue
        held = by_city[city]
        status = _STATUS_OF[step.kind]
        if step.kind is Event.PART_ACCEPT:
            by_city[city] = PartProgress(held.part, status, step.peer_case, step.peer_deadline, "", step.at)
        elif step.kind is Event.PART_SUPPLY and held.status is not PartStatus.SUPPLEMENT:
            continue  # nothing was asked: a supply without a request changes nothing
        else:
            missing = step.missing if status is PartStatus.SUPPLEMENT else ()
            reason = "" if step.kind is Event.PART_SUPPLY else step.reason
            by_city[city] = PartProgress(
                held.part, status, held.their_case, held.deadline, reason, step.at, missing
            )
    return tuple(by_city.values())


def _city_of(step: CaseEvent, by_city: dict[str, PartProgress]) -> str | None:
    if step.kind is Event.PART_SUPPLY:
        return next((c for c, p in by_city.items() if p.their_case and p.their_case == step.peer_case), None)
    return step.carried.net if step.carried is not None and step.carried.net in by_city else None


def asking(parts: Iterable[PartProgress]) -> tuple[PartProgress, ...]:
    """The parts whose city asks for a supplement our window has not taken in yet."""
    return tuple(p for p in parts if p.status is PartStatus.SUPPLEMENT)


def check_deliverable(parts: Iterable[PartProgress]) -> None:
    """The window delivers (送达) only once every part is decided in its city.

    Raises:
        InputError: ``E_PART_OPEN`` naming the parts still open.
    """
    still = [p for p in parts if not p.decided]
    if still:
        names = "、".join(p.part.name for p in still)
        raise InputError(
            ErrorCode.PART_OPEN,
            f"parts not decided yet: {', '.join(f'{p.part.city} {p.part.item}' for p in still)}",
            zh=f"尚未办结的部分：{names}",
        )
