"""多地联办: the parts of an intake (bodies, the scope rule), the part steps (bodies, the
state machine: every state but withdrawn, the state kept) and the state of each part."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest

from core.carried import Carried
from core.cases import (
    PART_EVENTS,
    CaseEvent,
    CaseState,
    Event,
    State,
    allowed_events,
    apply,
    owner_of,
    replay,
)
from core.catalog import Mode
from core.documents import DocType
from core.errors import AuthorityError, ErrorCode, InputError
from core.federation import (
    ACCEPT,
    DECIDE,
    INTAKE,
    JOINT_PART,
    PROXY_INTAKE,
    CrossCert,
    PeerRevocation,
    PeerState,
    Scope,
    ScopeItem,
)
from core.intake import Applicant, Intake
from core.parts import Part, PartStatus, asking, check_deliverable, check_part, parts_from_body, progress

HOME, QINGPU = "cn-330481", "cn-310118"
T0 = 1_764_000_000
DAY = 86_400
LEAVE = Part(QINGPU, "GA-0007", 3, "市内户口迁移")
ID = "11010519491231002X"
CARRIED = Carried(QINGPU, b"\x82\x41\x00\x41\x00")


def cert(*items: ScopeItem, serial: int = 1, nbf: int = T0 - DAY) -> CrossCert:
    return CrossCert(QINGPU, "上海市青浦区", b"r" * 32, b"a" * 32, serial, nbf, nbf + 30 * DAY, Scope(items))


def item(code: str = "GA-0007", cat: int = 3, modes: tuple[str, ...] = (JOINT_PART,),
         roles: tuple[str, ...] = (ACCEPT, DECIDE)) -> ScopeItem:  # fmt: skip
    return ScopeItem(code, cat, frozenset(modes), frozenset(roles))


def held(*certs: CrossCert, revocations: tuple[PeerRevocation, ...] = ()) -> PeerState:
    return PeerState(QINGPU, certs, revocations)


def intake(**changes: Any) -> Intake:
    base = Intake(
        case="330481104201-20261207-0001", item="GA-0009", item_name="购房户口迁入", cat=5, mode=Mode.PROXY,
        decider="330481104", applicant=Applicant("王秀英", DocType.RESIDENT_ID, ID, "13800138000"),
        materials=("id_card",), notes="", limit=5, deadline=date(2026, 12, 14), parts=(LEAVE,),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


# -- the record ------------------------------------------------------------------------------


def test_an_intake_with_parts_round_trips_and_one_without_has_no_parts_key() -> None:
    body = intake().to_body()
    assert body["parts"] == [{"city": QINGPU, "item": "GA-0007", "cat": 3, "name": "市内户口迁移"}]
    assert Intake.from_body(body) == intake()
    assert "parts" not in intake(parts=()).to_body()


@pytest.mark.parametrize(
    "parts",
    [
        [],  # present means not empty
        [{"city": QINGPU, "item": "GA-0007", "cat": 3}],  # no name
        [{"city": QINGPU, "item": "GA-0007", "cat": -1, "name": "x"}],
        [{"city": QINGPU, "item": "GA-0007", "cat": True, "name": "x"}],
        [{"city": QINGPU, "item": "", "cat": 3, "name": "x"}],
        [{"city": QINGPU, "item": "GA-0007", "cat": 3, "name": " "}],
        [LEAVE.to_body(), {**LEAVE.to_body(), "item": "GA-0008"}],  # two parts of one city
        [{**LEAVE.to_body(), "city": f"cn-{n}"} for n in range(9)],  # more than 8
        "GA-0007",
    ],
)
def test_a_malformed_parts_list_is_refused(parts: object) -> None:
    with pytest.raises(InputError) as caught:
        Intake.from_body({**intake(parts=()).to_body(), "parts": parts})
    assert caught.value.code is ErrorCode.FIELD_INVALID
    with pytest.raises(InputError):
        parts_from_body(parts)


def test_parts_belong_to_a_case_of_our_own_item_only() -> None:
    for extra in ({"owner": QINGPU}, {"carried": CARRIED.to_body()}):
        with pytest.raises(InputError) as caught:
            Intake.from_body({**intake().to_body(), **extra})
        assert "parts" in caught.value.detail


# -- the scope rule --------------------------------------------------------------------------


def test_a_part_agreed_for_joint_applications_is_allowed() -> None:
    check_part(held(cert(item())), LEAVE, HOME, T0)


@pytest.mark.parametrize(
    ("state", "part"),
    [
        (None, LEAVE),  # no agreement with that city
        (held(cert(item("GA-0008"))), LEAVE),  # the item is not in the scope
        (held(cert(item(cat=4))), LEAVE),  # another catalog version
        (held(cert(item(modes=(PROXY_INTAKE,)))), LEAVE),  # 代收代办 only, not 多地联办
        (held(cert(item(roles=(INTAKE,)))), LEAVE),  # our own item, which they take in for us
        (held(cert(item(), nbf=T0 - 40 * DAY)), LEAVE),  # expired when the case was taken in
        (held(cert(item()), revocations=(PeerRevocation(QINGPU, 1, T0 - 1, "密钥泄露"),)), LEAVE),
        (held(cert(item())), dataclasses.replace(LEAVE, city=HOME)),  # our part is the case itself
    ],
)
def test_a_part_not_agreed_is_refused_with_the_scope_code(state: PeerState | None, part: Part) -> None:
    with pytest.raises(AuthorityError) as caught:
        check_part(state, part, HOME, T0)
    assert caught.value.code is ErrorCode.PEER_SCOPE


def test_a_part_is_judged_under_the_agreement_in_force_when_the_case_was_taken_in() -> None:
    narrower = cert(item("GA-0008"), serial=2, nbf=T0 + 10)
    state = held(cert(item()), narrower)
    check_part(state, LEAVE, HOME, T0)  # taken in before the narrower renewal
    with pytest.raises(AuthorityError):
        check_part(state, LEAVE, HOME, T0 + 20)


# -- the part steps --------------------------------------------------------------------------


def part_step(kind: Event, at: int = T0, **fields: Any) -> CaseEvent:
    defaults: dict[Event, dict[str, Any]] = {
        Event.PART_ACCEPT: {"peer_case": "310118000-20261207-0001", "peer_deadline": "2026-12-21"},
        Event.PART_REJECT: {"reason": "迁出地不符合条件"},
        Event.PART_SUPPLEMENT: {"missing": ("迁出地户口簿",)},
    }
    return CaseEvent(kind, at, carried=CARRIED, **{**defaults.get(kind, {}), **fields})


def supply(at: int = T0, their_case: str = "310118000-20261207-0001") -> CaseEvent:
    """Our window's supplement to Qingpu's part: not carried, it names Qingpu's case."""
    return CaseEvent(Event.PART_SUPPLY, at, reason="户口簿已补交", peer_case=their_case)


@pytest.mark.parametrize("kind", sorted(PART_EVENTS))
def test_a_part_step_keeps_the_state_in_every_state_but_withdrawn(kind: Event) -> None:
    for state in State:
        for mode in (Mode.DIRECT, Mode.PROXY):
            if state is State.FORWARDED and mode is Mode.DIRECT:
                continue
            case = (
                CaseState(
                    state,
                    mode,
                    supplement_from=State.ACCEPTED if mode is Mode.DIRECT else State.FORWARDED,
                    paused_since=T0 - 5,
                )
                if state is State.SUPPLEMENT
                else CaseState(state, mode)
            )
            if state is State.WITHDRAWN:
                assert kind not in allowed_events(case)
                with pytest.raises(InputError):
                    apply(case, part_step(kind))
            else:
                assert apply(case, part_step(kind)) == case  # the supplement's pause included


def test_part_steps_are_our_centrals_and_carried_only() -> None:
    for kind in PART_EVENTS:
        assert owner_of(kind, "330481104201", "330481104", "330481") == "330481"
        assert owner_of(kind, "330481104201", "330481104") == ""  # no node may take one
        with pytest.raises(InputError):
            dataclasses.replace(part_step(kind), carried=None)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (Event.PART_ACCEPT, {"peer_case": ""}),  # an acceptance names their case number
        (Event.PART_APPROVE, {"peer_case": "x", "peer_deadline": "2026-12-21"}),  # only an acceptance does
        (Event.PART_REJECT, {"reason": ""}),  # a rejection says why
        (Event.PART_APPROVE, {"missing": ("照片",)}),
    ],
)
def test_a_malformed_part_step_is_refused(kind: Event, fields: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        part_step(kind, **fields)
    assert caught.value.code is ErrorCode.CASE_TRANSITION


def test_a_part_step_round_trips() -> None:
    for kind in PART_EVENTS:
        step = part_step(kind)
        assert CaseEvent.from_body(step.to_body()) == step


def test_the_case_decides_on_its_own_while_its_parts_move() -> None:
    steps = [
        CaseEvent(Event.FORWARD, T0),
        part_step(Event.PART_ACCEPT, T0 + 1),
        CaseEvent(Event.APPROVE, T0 + 2),
        part_step(Event.PART_APPROVE, T0 + 3),
    ]
    assert replay(Mode.PROXY, steps).state is State.APPROVED


# -- the state of each part ------------------------------------------------------------------


def test_each_part_goes_sent_accepted_decided_and_a_decision_is_final() -> None:
    assert progress((LEAVE,), [])[0].status is PartStatus.SENT
    accepted = progress((LEAVE,), [part_step(Event.PART_ACCEPT)])[0]
    assert (accepted.status, accepted.their_case, accepted.deadline) == (
        PartStatus.ACCEPTED,
        "310118000-20261207-0001",
        "2026-12-21",
    )
    rejected = progress((LEAVE,), [part_step(Event.PART_ACCEPT), part_step(Event.PART_REJECT, T0 + 1)])[0]
    assert (rejected.status, rejected.reason, rejected.their_case) == (
        PartStatus.REJECTED,
        "迁出地不符合条件",
        "310118000-20261207-0001",
    )
    late = progress((LEAVE,), [part_step(Event.PART_APPROVE), part_step(Event.PART_ACCEPT, T0 + 1)])[0]
    assert late.status is PartStatus.APPROVED
    # A step of a city with no part of this case counts for nothing.
    other = dataclasses.replace(
        part_step(Event.PART_APPROVE), carried=Carried("cn-320509", b"\x82\x41\x00\x41\x00")
    )
    assert progress((LEAVE,), [other])[0].status is PartStatus.SENT


def test_the_window_delivers_only_once_every_part_is_decided() -> None:
    for open_steps in ([], [part_step(Event.PART_ACCEPT)]):
        with pytest.raises(InputError) as caught:
            check_deliverable(progress((LEAVE,), open_steps))
        assert caught.value.code is ErrorCode.PART_OPEN and "市内户口迁移" in caught.value.text("zh")
    check_deliverable(progress((LEAVE,), [part_step(Event.PART_REJECT)]))
    check_deliverable(())


def test_a_supplement_asked_for_a_part_is_taken_in_at_our_window_and_goes_back_to_accepted() -> None:
    accepted = part_step(Event.PART_ACCEPT)
    asked = part_step(Event.PART_SUPPLEMENT, T0 + 1, reason="请补交")
    [part] = progress((LEAVE,), [accepted, asked])
    assert (part.status, part.missing, part.reason) == (PartStatus.SUPPLEMENT, ("迁出地户口簿",), "请补交")
    assert asking([part]) == (part,)
    with pytest.raises(InputError):
        check_deliverable([part])
    [part] = progress((LEAVE,), [accepted, asked, supply(T0 + 2)])
    assert (part.status, part.missing, part.their_case) == (
        PartStatus.ACCEPTED,
        (),
        "310118000-20261207-0001",
    )
    # A supply nobody asked for, or naming a case that is not the part's, changes nothing.
    assert progress((LEAVE,), [accepted, supply(T0 + 1)])[0].status is PartStatus.ACCEPTED
    assert progress((LEAVE,), [accepted, asked, supply(T0 + 2, "310118000-20261207-0009")])[0].missing


def test_the_windows_part_supply_is_its_own_names_the_parts_case_and_keeps_the_state() -> None:
    assert owner_of(Event.PART_SUPPLY, "330481104201", "330481104", "330481") == "330481104201"
    for case in (CaseState(State.FORWARDED, Mode.PROXY), CaseState(State.APPROVED, Mode.PROXY)):
        assert apply(case, supply()) == case
    with pytest.raises(InputError):
        apply(CaseState(State.WITHDRAWN, Mode.PROXY), supply())
    for bad in ({"peer_case": ""}, {"carried": CARRIED}, {"peer_deadline": "2026-12-21"}):
        with pytest.raises(InputError):
            dataclasses.replace(supply(), **bad)
    assert CaseEvent.from_body(supply().to_body()) == supply()
    with pytest.raises(InputError):  # a part's supplement request lists what it asks, or says why
        part_step(Event.PART_SUPPLEMENT, missing=())
