"""The case lifecycle (办件流程) as one explicit state machine.

This module owns the states a case can be in, the events that move it, the single
transition table, the guards that the table cannot express (a reason for a rejection,
one rating per case), and the event bodies that decision records carry; the table is
drawn for ``docs/case-lifecycle.md`` by :mod:`core.case_drawing`.

A case is **direct** (the center that took it in decides) or **proxy** (代收代办: the
center takes it in and forwards it to the deciding node). A same-power item taken in at
a town is decided there, so it is a direct case (:meth:`CaseState.open`).

The table is keyed by ``(state, event)``; each entry says, per case mode, which state
follows. A mode missing from an entry means the event is not allowed for that mode: only
a proxy case is forwarded, and a proxy case is decided only after it was forwarded.
``supply`` returns to the state the case was in when the supplement was asked for, which
the table spells out per mode and :class:`CaseState` records in ``supplement_from``.
``rate`` leaves the state unchanged and is allowed once.

While a case waits for a supplement its time limit is paused: ``paused_since`` holds the
moment the supplement was requested and ``pauses`` the closed intervals, so the calendar
can count the working days to add to the deadline.

Body of a case event (carried in decision/status records; canonical CBOR)::

    {"event": tstr, "at": uint, "reason": tstr, "missing": [tstr, ...],
     "delivery": tstr | absent, "rating": uint 1..5 | absent,
     "files": [file ref, ...] | absent}

``files`` (:mod:`core.files`) is present only when not empty, and only on the events that
bring pages (:data:`FILE_EVENTS`): a supplement's pages, a decision's document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from core.carried import Carried
from core.catalog import Mode
from core.errors import ErrorCode, InputError, TongbanError
from core.files import FileRef, refs_from_body, refs_to_body


class State(StrEnum):
    ACCEPTED = "accepted"
    FORWARDED = "forwarded"
    SUPPLEMENT = "supplement"
    APPROVED = "approved"
    REJECTED = "rejected"
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"

    @property
    def zh(self) -> str:
        return STATE_LABELS[self][0]

    @property
    def en(self) -> str:
        return STATE_LABELS[self][1]


STATE_LABELS: dict[State, tuple[str, str]] = {
    State.ACCEPTED: ("已受理", "accepted"),
    State.FORWARDED: ("已转报", "forwarded"),
    State.SUPPLEMENT: ("补正中", "awaiting supplement"),
    State.APPROVED: ("办结（准予）", "approved"),
    State.REJECTED: ("办结（不予）", "rejected"),
    State.DELIVERED: ("已送达", "delivered"),
    State.WITHDRAWN: ("已撤回", "withdrawn"),
}
"""The one table of the states' names, (Chinese, English): every screen and paper uses it."""


class Event(StrEnum):
    FORWARD = "forward"
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_SUPPLEMENT = "request_supplement"
    SUPPLY = "supply"
    DELIVER = "deliver"
    WITHDRAW = "withdraw"
    RATE = "rate"
    PEER_ACCEPT = "peer_accept"  # 异地受理: the owning city accepted a case we took in for it
    PART_ACCEPT = "part_accept"  # 多地联办: another city accepted its part of the case
    PART_APPROVE = "part_approve"  # ... approved its part
    PART_REJECT = "part_reject"  # ... rejected its part
    PART_SUPPLEMENT = "part_supplement"  # ... asked for a supplement to its part
    PART_SUPPLY = "part_supply"  # our window received that supplement (it crosses to that city)

    @property
    def zh(self) -> str:
        return EVENT_LABELS[self][0]

    @property
    def en(self) -> str:
        return EVENT_LABELS[self][1]


EVENT_LABELS: dict[Event, tuple[str, str]] = {
    Event.FORWARD: ("转报", "forward"),
    Event.APPROVE: ("准予", "approve"),
    Event.REJECT: ("不予", "reject"),
    Event.REQUEST_SUPPLEMENT: ("要求补正", "ask for supplement"),
    Event.SUPPLY: ("补正材料已收", "supplement received"),
    Event.DELIVER: ("送达", "deliver"),
    Event.WITHDRAW: ("撤回", "withdraw"),
    Event.RATE: ("评价", "rate"),
    Event.PEER_ACCEPT: ("异地受理", "accepted by the owning city"),
    Event.PART_ACCEPT: ("联办部分受理", "part accepted by its city"),
    Event.PART_APPROVE: ("联办部分准予", "part approved by its city"),
    Event.PART_REJECT: ("联办部分不予", "part rejected by its city"),
    Event.PART_SUPPLEMENT: ("联办部分要求补正", "its city asks a supplement to its part"),
    Event.PART_SUPPLY: ("联办部分补正材料已收", "supplement to a part received"),
}
"""The one table of the events' names, (Chinese, English)."""


class Delivery(StrEnum):
    PICKUP = "pickup"  # 窗口领取
    MAIL = "mail"  # 邮寄
    ELECTRONIC = "electronic"  # 电子证照 / 网上送达


DELIVERY_LABELS: dict[Delivery, tuple[str, str]] = {
    Delivery.PICKUP: ("窗口领取", "pickup"),
    Delivery.MAIL: ("邮寄", "mail"),
    Delivery.ELECTRONIC: ("电子送达", "electronic"),
}


class Rating(IntEnum):
    """好差评, five levels."""

    VERY_DISSATISFIED = 1  # 非常不满意
    DISSATISFIED = 2  # 不满意
    FAIR = 3  # 基本满意
    SATISFIED = 4  # 满意
    VERY_SATISFIED = 5  # 非常满意


RATING_LABELS: dict[Rating, tuple[str, str]] = {
    Rating.VERY_DISSATISFIED: ("非常不满意", "very dissatisfied"),
    Rating.DISSATISFIED: ("不满意", "dissatisfied"),
    Rating.FAIR: ("基本满意", "fair"),
    Rating.SATISFIED: ("满意", "satisfied"),
    Rating.VERY_SATISFIED: ("非常满意", "very satisfied"),
}


D, P = Mode.DIRECT, Mode.PROXY
PART_EVENTS_ORDER = (Event.PART_ACCEPT, Event.PART_APPROVE, Event.PART_REJECT, Event.PART_SUPPLEMENT)

# THE table. (state, event) -> {case mode: next state}. Nothing else moves a case.
TRANSITIONS: dict[tuple[State, Event], dict[Mode, State]] = {
    (State.ACCEPTED, Event.FORWARD): {P: State.FORWARDED},
    (State.ACCEPTED, Event.APPROVE): {D: State.APPROVED},
    (State.ACCEPTED, Event.REJECT): {D: State.REJECTED},
    (State.ACCEPTED, Event.REQUEST_SUPPLEMENT): {D: State.SUPPLEMENT},
    (State.ACCEPTED, Event.WITHDRAW): {D: State.WITHDRAWN, P: State.WITHDRAWN},
    (State.FORWARDED, Event.APPROVE): {P: State.APPROVED},
    (State.FORWARDED, Event.REJECT): {P: State.REJECTED},
    (State.FORWARDED, Event.REQUEST_SUPPLEMENT): {P: State.SUPPLEMENT},
    (State.FORWARDED, Event.WITHDRAW): {P: State.WITHDRAWN},
    (State.FORWARDED, Event.PEER_ACCEPT): {P: State.FORWARDED},
    (State.SUPPLEMENT, Event.SUPPLY): {D: State.ACCEPTED, P: State.FORWARDED},
    (State.SUPPLEMENT, Event.WITHDRAW): {D: State.WITHDRAWN, P: State.WITHDRAWN},
    (State.APPROVED, Event.DELIVER): {D: State.DELIVERED, P: State.DELIVERED},
    (State.REJECTED, Event.DELIVER): {D: State.DELIVERED, P: State.DELIVERED},
    (State.APPROVED, Event.RATE): {D: State.APPROVED, P: State.APPROVED},
    (State.REJECTED, Event.RATE): {D: State.REJECTED, P: State.REJECTED},
    (State.DELIVERED, Event.RATE): {D: State.DELIVERED, P: State.DELIVERED},
    # 多地联办: another city's part steps keep the case where it is, in every state but withdrawn.
    **{
        (state, event): {D: state, P: state}
        for event in (*PART_EVENTS_ORDER, Event.PART_SUPPLY)
        for state in State
        if state is not State.WITHDRAWN
    },
}

CASE_MODES: tuple[Mode, ...] = (D, P)
TERMINAL: frozenset[State] = frozenset({State.DELIVERED, State.WITHDRAWN})

# -- who takes which step, and when a case runs late ----------------------------------------

PART_EVENTS = frozenset(PART_EVENTS_ORDER)
"""Steps of another city's part of the case (:mod:`core.parts`), our central's, each carrying
that city's record; they leave the case's own state as it is."""

KEEPS_STATE = frozenset({*PART_EVENTS, Event.PART_SUPPLY})
"""The part steps: ours (the window's ``part_supply``, which names the part's case number
there in ``peer_case``) and our central's; none moves the case's own state."""

FILE_EVENTS = frozenset(
    {Event.SUPPLY, Event.APPROVE, Event.REJECT, Event.PART_APPROVE, Event.PART_REJECT, Event.PART_SUPPLY}
)
"""Events whose record may list files: the supplement's pages, the decision's document."""

DECISIONS = frozenset({Event.APPROVE, Event.REJECT, Event.REQUEST_SUPPLEMENT})
"""Events only the deciding node may make; every other event belongs to the intake node
but ``peer_accept``: on a case another city decides, the decider is our central, which
carries that city's acceptance and decisions to us (:data:`CARRIED_EVENTS`)."""

CARRIED_EVENTS = frozenset(
    {Event.PEER_ACCEPT, Event.APPROVE, Event.REJECT, Event.REQUEST_SUPPLEMENT, *PART_EVENTS}
    | {Event.SUPPLY, Event.WITHDRAW}
)
"""Events that may carry another city's record: the deciding city's acceptance and decisions
(at the window's city), the window city's supplement and withdrawal (at the deciding city)."""
ACCEPTANCES = frozenset({Event.PEER_ACCEPT, Event.PART_ACCEPT})
"""Events that carry another city's acceptance: its case number and deadline there."""

RUNNING_STATES: tuple[str, ...] = (State.ACCEPTED.value, State.FORWARDED.value)
"""States in which a case's time limit runs (waiting for a supplement pauses it)."""
OPEN_STATES: tuple[str, ...] = (*RUNNING_STATES, State.SUPPLEMENT.value)
"""States of a case neither decided nor withdrawn."""


def owner_of(event: Event, node: str, decider: str, central: str = "") -> str:
    """The node that may take ``event`` on a case taken in at ``node`` and decided by
    ``decider``: the decider for a decision, the intake node for everything else; our
    central (``central``) for another city's part steps."""
    if event in PART_EVENTS:
        return central
    return decider if event in DECISIONS or event is Event.PEER_ACCEPT else node


def is_overdue(state: str, deadline: str, today: str) -> bool:
    """Whether a case runs late: its time limit runs (accepted or forwarded; a supplement
    pauses it and moves its deadline) and its deadline (an ISO local date) is before
    ``today``. A decision is on time when it falls on or before the deadline."""
    return state in RUNNING_STATES and deadline < today


def _refuse(detail: str) -> InputError:
    return InputError(ErrorCode.CASE_TRANSITION, detail=detail)


@dataclass(frozen=True)
class CaseEvent:
    """Something that happens to a case at ``at`` (epoch seconds), with its payload.

    ``reject`` needs a ``reason``; ``request_supplement`` needs the ``missing`` materials
    or a ``reason`` (一次性告知: say everything at once); ``deliver`` needs a
    ``delivery`` method; ``rate`` needs a ``rating``; only the events of
    :data:`FILE_EVENTS` may list ``files``. Fields that do not belong to the event must be
    left empty.
    """

    kind: Event
    at: int
    reason: str = ""
    missing: tuple[str, ...] = ()
    delivery: Delivery | None = None
    rating: Rating | None = None
    files: tuple[FileRef, ...] = ()
    carried: Carried | None = None  # the owning city's record this step carries
    peer_case: str = ""  # peer_accept, part_accept: the other city's case number; part_supply: the part's
    peer_deadline: str = ""  # peer_accept, part_accept: its deadline there (ISO date)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Event):
            raise _refuse("event kind must be an Event")
        if isinstance(self.at, bool) or not isinstance(self.at, int) or self.at < 0:
            raise _refuse(f"{self.kind.value}: at must be epoch seconds")
        if not isinstance(self.reason, str):
            raise _refuse(f"{self.kind.value}: reason must be text")
        if not isinstance(self.missing, tuple) or not all(isinstance(m, str) and m for m in self.missing):
            raise _refuse(f"{self.kind.value}: missing must be a tuple of material names")
        k = self.kind
        if k is Event.REJECT and not self.reason.strip():
            raise _refuse("reject: a reason is required")
        asks = k in (Event.REQUEST_SUPPLEMENT, Event.PART_SUPPLEMENT)
        if asks and not (self.missing or self.reason.strip()):
            raise _refuse(f"{k.value}: list the missing materials or give a reason")
        if not asks and self.missing:
            raise _refuse(f"{k.value}: missing belongs only to request_supplement")
        if (k is Event.DELIVER) != (self.delivery is not None):
            raise _refuse(
                "deliver: a delivery method is required" if k is Event.DELIVER else f"{k.value}: no delivery"
            )
        if self.delivery is not None and not isinstance(self.delivery, Delivery):
            raise _refuse("deliver: delivery must be pickup, mail or electronic")
        if (k is Event.RATE) != (self.rating is not None):
            raise _refuse("rate: a rating 1–5 is required" if k is Event.RATE else f"{k.value}: no rating")
        if self.rating is not None and not isinstance(self.rating, Rating):
            raise _refuse("rate: rating must be 1–5")
        if not isinstance(self.files, tuple) or not all(isinstance(f, FileRef) for f in self.files):
            raise _refuse(f"{k.value}: files must be a tuple of file refs")
        if self.files and k not in FILE_EVENTS:
            raise _refuse(f"{k.value}: files belong only to supply, approve and reject")
        if k is Event.PART_REJECT and not self.reason.strip():
            raise _refuse("part_reject: the part's reason is required")
        names_case = k in ACCEPTANCES or k is Event.PART_SUPPLY
        if names_case != bool(self.peer_case) or (k in ACCEPTANCES) != bool(self.peer_deadline):
            raise _refuse(f"{k.value}: the other city's case number (and deadline) only on its acceptance")
        if (self.carried is not None and k not in CARRIED_EVENTS) or (
            (k is Event.PEER_ACCEPT or k in PART_EVENTS) and not self.carried
        ):
            raise _refuse(f"{k.value}: another city's record is carried only by its acceptance and decisions")

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event": self.kind.value,
            "at": self.at,
            "reason": self.reason,
            "missing": list(self.missing),
        }
        if self.delivery is not None:
            body["delivery"] = self.delivery.value
        if self.rating is not None:
            body["rating"] = int(self.rating)
        if self.files:
            body["files"] = refs_to_body(self.files)
        if self.carried is not None:
            body["carried"] = self.carried.to_body()
        if self.peer_case:
            body["peer_case"], body["peer_deadline"] = self.peer_case, self.peer_deadline
        return body

    @classmethod
    def from_body(cls, body: object) -> CaseEvent:
        """The event in ``body``, checked strictly (unknown keys and wrong types refused)."""
        if not isinstance(body, dict):
            raise _refuse("case event: expected a map")
        keys = body.keys()
        if not keys <= _EVENT_KEYS:
            unknown = sorted(str(k) for k in keys - _EVENT_KEYS)
            raise _refuse(f"case event: unknown field(s) {', '.join(unknown)}")
        if not keys >= _EVENT_REQUIRED:
            raise _refuse(f"case event: missing field(s) {', '.join(sorted(_EVENT_REQUIRED - keys))}")
        kind, missing = body["event"], body["missing"]
        event = _EVENTS.get(kind) if isinstance(kind, str) else None
        if event is None:
            raise _refuse(f"case event: unknown event {kind!r}")
        if not isinstance(missing, list):
            raise _refuse("case event: missing must be a list")
        delivery = body.get("delivery")
        if delivery is not None and (not isinstance(delivery, str) or delivery not in _DELIVERIES):
            raise _refuse(f"case event: unknown delivery {delivery!r}")
        rating = body.get("rating")
        if rating is not None and (type(rating) is not int or rating not in _RATINGS):
            raise _refuse(f"case event: rating must be 1–5, not {rating!r}")
        if ("delivery" in body and delivery is None) or ("rating" in body and rating is None):
            raise _refuse("case event: absent fields are left out, not null")
        peer_case, peer_deadline = body.get("peer_case", ""), body.get("peer_deadline", "")
        if not isinstance(peer_case, str) or not isinstance(peer_deadline, str) or len(peer_case) > 64:
            raise _refuse("case event: peer_case and peer_deadline are text")
        if peer_deadline and not _ISO_DATE.fullmatch(peer_deadline):
            raise _refuse("case event: peer_deadline is an ISO date")
        try:
            carried = Carried.from_body(body["carried"]) if "carried" in body else None
        except TongbanError as exc:
            raise _refuse(f"case event: {exc.text('en')}") from exc
        return cls(
            kind=event,
            at=body["at"],
            reason=body["reason"],
            missing=tuple(missing),
            delivery=_DELIVERIES[delivery] if delivery is not None else None,
            rating=_RATINGS[rating] if rating is not None else None,
            files=refs_from_body(body["files"]) if "files" in body else (),
            carried=carried,
            peer_case=peer_case,
            peer_deadline=peer_deadline,
        )


_EVENT_REQUIRED = frozenset({"event", "at", "reason", "missing"})
_EVENT_KEYS = _EVENT_REQUIRED | {"delivery", "rating", "files", "carried", "peer_case", "peer_deadline"}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EVENTS = {e.value: e for e in Event}
_DELIVERIES = {d.value: d for d in Delivery}
_RATINGS = {int(r): r for r in Rating}


@dataclass(frozen=True)
class CaseState:
    """Where a case is: its state and mode, the rating if any, and the pause bookkeeping."""

    state: State
    mode: Mode
    rating: Rating | None = None
    supplement_from: State | None = None  # the state ``supply`` returns to
    paused_since: int | None = None  # when the current supplement was requested
    pauses: tuple[tuple[int, int], ...] = field(default=())  # closed supplement intervals

    def __post_init__(self) -> None:
        if self.mode not in CASE_MODES:
            raise _refuse(f"a case is direct or proxy, not {self.mode}")
        in_supplement = self.state is State.SUPPLEMENT
        if (self.supplement_from is not None, self.paused_since is not None) != (in_supplement,) * 2:
            raise _refuse("supplement_from and paused_since are set exactly while in supplement")

    @classmethod
    def open(cls, mode: Mode) -> CaseState:
        """A case just taken in (已受理). Same power is decided on the spot: a direct case."""
        return cls(State.ACCEPTED, Mode.DIRECT if mode is Mode.SAME_POWER else mode)

    @property
    def terminal(self) -> bool:
        """No event but a rating can follow (delivered or withdrawn)."""
        return self.state in TERMINAL

    def paused_seconds(self, now: int) -> int:
        """Seconds spent waiting for supplements, counting an open one up to ``now``."""
        total = sum(end - start for start, end in self.pauses)
        if self.paused_since is not None:
            total += max(0, now - self.paused_since)
        return total


def allowed_events(case: CaseState) -> tuple[Event, ...]:
    """The events :func:`apply` would accept now (guards included), in table order."""
    return tuple(
        event
        for (state, event), targets in TRANSITIONS.items()
        if state is case.state
        and case.mode in targets
        and not (event is Event.RATE and case.rating is not None)
    )


def apply(case: CaseState, event: CaseEvent) -> CaseState:
    """The case after ``event``; pure.

    Raises:
        InputError: ``E_CASE_TRANSITION`` naming the state, mode and event when the table
            has no such transition or a guard fails (a second rating).
    """
    targets = TRANSITIONS.get((case.state, event.kind))
    if targets is None or case.mode not in targets:
        raise _refuse(
            f"{event.kind.value} is not possible for a {case.mode.value} case in state {case.state.value}"
        )
    target = targets[case.mode]
    if event.kind in KEEPS_STATE:
        return case  # another city's part: the case's own state, pause included, is untouched
    if event.kind is Event.RATE:
        if case.rating is not None:
            raise _refuse("rate: the case has been rated already")
        return CaseState(case.state, case.mode, rating=event.rating, pauses=case.pauses)
    if event.kind is Event.REQUEST_SUPPLEMENT:
        return CaseState(
            target,
            case.mode,
            case.rating,
            supplement_from=case.state,
            paused_since=event.at,
            pauses=case.pauses,
        )
    if case.paused_since is not None:  # leaving SUPPLEMENT (supply or withdraw)
        if event.kind is Event.SUPPLY and target is not case.supplement_from:
            raise _refuse(f"supply: the case came from {case.supplement_from}, the table says {target}")
        # Clocks of different nodes may disagree: a supply stamped before the request
        # counts as no pause rather than a negative one.
        closed = (case.paused_since, max(case.paused_since, event.at))
        return CaseState(target, case.mode, case.rating, pauses=(*case.pauses, closed))
    return CaseState(target, case.mode, case.rating, pauses=case.pauses)


def replay(mode: Mode, events: list[CaseEvent] | tuple[CaseEvent, ...]) -> CaseState:
    """The state after taking a case in with ``mode`` and applying ``events`` in order."""
    case = CaseState.open(mode)
    for event in events:
        case = apply(case, event)
    return case
