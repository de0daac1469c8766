"""core.cases: the lifecycle table, its guards, event bodies, and the doc drawn from it."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.carried import Carried
from core.case_drawing import render_dot, render_table
from core.cases import (
    TRANSITIONS,
    CaseEvent,
    CaseState,
    Delivery,
    Event,
    Rating,
    State,
    allowed_events,
    apply,
    replay,
)
from core.catalog import Mode
from core.errors import ErrorCode, InputError

DOC = Path(__file__).resolve().parents[2] / "docs" / "case-lifecycle.md"
T0 = 1_764_000_000


def ev(kind: Event, at: int = T0, **payload: Any) -> CaseEvent:
    """An event with the least payload its kind needs."""
    defaults: dict[Event, dict[str, Any]] = {
        Event.REJECT: {"reason": "不符合受理条件"},
        Event.REQUEST_SUPPLEMENT: {"missing": ("结婚证",)},
        Event.DELIVER: {"delivery": Delivery.PICKUP},
        Event.RATE: {"rating": Rating.VERY_SATISFIED},
        Event.PEER_ACCEPT: {
            "peer_case": "310118000000-20261207-0001",
            "peer_deadline": "2026-12-21",
            "carried": Carried("cn-310118", b"\x82\x41\x00\x41\x00"),
        },
        Event.PART_ACCEPT: {
            "peer_case": "310118000000-20261207-0002",
            "peer_deadline": "2026-12-28",
            "carried": Carried("cn-310118", b"\x82\x41\x00\x41\x01"),
        },
        Event.PART_APPROVE: {"carried": Carried("cn-310118", b"\x82\x41\x00\x41\x02")},
        Event.PART_SUPPLEMENT: {
            "missing": ("迁出地户口簿",),
            "carried": Carried("cn-310118", b"\x82\x41\x00\x41\x04"),
        },
        Event.PART_SUPPLY: {"peer_case": "310118000000-20261207-0002"},
        Event.PART_REJECT: {
            "reason": "迁出地不符合条件",
            "carried": Carried("cn-310118", b"\x82\x41\x00\x41\x03"),
        },
    }
    return CaseEvent(kind, at, **{**defaults.get(kind, {}), **payload})


def in_state(state: State, mode: Mode) -> CaseState:
    """A case sitting in ``state`` (with consistent supplement bookkeeping)."""
    if state is State.SUPPLEMENT:
        came_from = State.ACCEPTED if mode is Mode.DIRECT else State.FORWARDED
        return CaseState(state, mode, supplement_from=came_from, paused_since=T0)
    return CaseState(state, mode)


def refused(case: CaseState, event: CaseEvent) -> str:
    with pytest.raises(InputError) as exc:
        apply(case, event)
    assert exc.value.code is ErrorCode.CASE_TRANSITION
    return exc.value.detail


# -- the paths a clerk sees -------------------------------------------------------------


def test_direct_case_happy_path() -> None:
    case = replay(
        Mode.DIRECT,
        [
            ev(Event.APPROVE),
            ev(Event.DELIVER, delivery=Delivery.ELECTRONIC),
            ev(Event.RATE, rating=Rating.SATISFIED),
        ],
    )
    assert case.state is State.DELIVERED and case.rating is Rating.SATISFIED and case.terminal


def test_proxy_case_is_forwarded_then_decided() -> None:
    case = CaseState.open(Mode.PROXY)
    assert "approve" in refused(case, ev(Event.APPROVE))  # not before it was forwarded
    case = apply(case, ev(Event.FORWARD))
    assert case.state is State.FORWARDED
    case = apply(case, ev(Event.REJECT, reason="材料不齐且逾期未补正"))
    assert case.state is State.REJECTED
    assert apply(case, ev(Event.DELIVER, delivery=Delivery.MAIL)).state is State.DELIVERED


def test_forward_only_for_proxy_cases() -> None:
    detail = refused(CaseState.open(Mode.DIRECT), ev(Event.FORWARD))
    assert detail == "forward is not possible for a direct case in state accepted"


def test_same_power_cases_are_decided_on_the_spot() -> None:
    case = CaseState.open(Mode.SAME_POWER)
    assert case.mode is Mode.DIRECT
    assert apply(case, ev(Event.APPROVE)).state is State.APPROVED


@pytest.mark.parametrize(("mode", "before"), [(Mode.DIRECT, State.ACCEPTED), (Mode.PROXY, State.FORWARDED)])
def test_supplement_pauses_the_clock_and_returns(mode: Mode, before: State) -> None:
    case = CaseState.open(mode)
    if mode is Mode.PROXY:
        case = apply(case, ev(Event.FORWARD))
    case = apply(case, ev(Event.REQUEST_SUPPLEMENT, at=T0 + 100, missing=("户口簿", "结婚证")))
    assert case.state is State.SUPPLEMENT and case.supplement_from is before
    assert case.paused_seconds(T0 + 160) == 60
    case = apply(case, ev(Event.SUPPLY, at=T0 + 400))
    assert case.state is before and case.supplement_from is None and case.paused_since is None
    assert case.pauses == ((T0 + 100, T0 + 400),)
    # A second round adds a second interval.
    case = apply(case, ev(Event.REQUEST_SUPPLEMENT, at=T0 + 1000, reason="照片不符合要求"))
    case = apply(case, ev(Event.SUPPLY, at=T0 + 1100))
    assert case.paused_seconds(T0 + 5000) == 300 + 100


def test_supply_stamped_before_its_request_is_a_zero_pause() -> None:
    case = apply(CaseState.open(Mode.DIRECT), ev(Event.REQUEST_SUPPLEMENT, at=T0 + 100))
    case = apply(case, ev(Event.SUPPLY, at=T0 + 50))
    assert case.pauses == ((T0 + 100, T0 + 100),)


def test_withdraw_before_decision_only() -> None:
    for state in (State.ACCEPTED, State.SUPPLEMENT):
        assert apply(in_state(state, Mode.DIRECT), ev(Event.WITHDRAW)).state is State.WITHDRAWN
    assert apply(in_state(State.FORWARDED, Mode.PROXY), ev(Event.WITHDRAW)).state is State.WITHDRAWN
    for state in (State.APPROVED, State.REJECTED, State.DELIVERED, State.WITHDRAWN):
        refused(in_state(state, Mode.PROXY), ev(Event.WITHDRAW))


def test_withdrawn_case_is_closed_for_every_event() -> None:
    case = in_state(State.WITHDRAWN, Mode.DIRECT)
    assert allowed_events(case) == ()
    for kind in Event:
        refused(case, ev(kind))


def test_rating_once_after_a_decision() -> None:
    refused(CaseState.open(Mode.DIRECT), ev(Event.RATE))
    case = apply(in_state(State.APPROVED, Mode.DIRECT), ev(Event.RATE, rating=Rating.VERY_DISSATISFIED))
    assert case.state is State.APPROVED and case.rating is Rating.VERY_DISSATISFIED
    assert Event.RATE not in allowed_events(case)
    assert refused(case, ev(Event.RATE)) == "rate: the case has been rated already"
    delivered = apply(case, ev(Event.DELIVER))
    assert delivered.rating is Rating.VERY_DISSATISFIED
    refused(delivered, ev(Event.RATE))


@pytest.mark.parametrize(
    ("kind", "payload", "fragment"),
    [
        (Event.REJECT, {"reason": " "}, "reject: a reason is required"),
        (Event.REQUEST_SUPPLEMENT, {"missing": (), "reason": ""}, "list the missing materials"),
        (Event.DELIVER, {"delivery": None}, "delivery method is required"),
        (Event.RATE, {"rating": None}, "rating 1–5 is required"),
        (Event.APPROVE, {"missing": ("x",)}, "missing belongs only to request_supplement"),
        (Event.APPROVE, {"delivery": Delivery.MAIL}, "approve: no delivery"),
        (Event.DELIVER, {"rating": Rating.FAIR}, "deliver: no rating"),
        (Event.APPROVE, {"at": -1}, "at must be epoch seconds"),
    ],
)
def test_event_payload_guards(kind: Event, payload: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError) as exc:
        ev(kind, **payload)
    assert exc.value.code is ErrorCode.CASE_TRANSITION and fragment in exc.value.detail


def test_case_state_invariants() -> None:
    with pytest.raises(InputError):
        CaseState(State.ACCEPTED, Mode.SAME_POWER)
    with pytest.raises(InputError):
        CaseState(State.SUPPLEMENT, Mode.DIRECT)  # no supplement_from / paused_since
    with pytest.raises(InputError):
        CaseState(State.ACCEPTED, Mode.DIRECT, supplement_from=State.ACCEPTED, paused_since=T0)


# -- the table is the whole truth -------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "kind", "mode"), list(itertools.product(State, Event, (Mode.DIRECT, Mode.PROXY)))
)
def test_apply_follows_the_table_exactly(state: State, kind: Event, mode: Mode) -> None:
    case = in_state(state, mode)
    targets = TRANSITIONS.get((state, kind), {})
    if mode in targets:
        assert apply(case, ev(kind)).state is targets[mode]
        assert kind in allowed_events(case)
    else:
        assert kind.value in refused(case, ev(kind))
        assert kind not in allowed_events(case)


def test_table_invariants() -> None:
    for (state, kind), targets in TRANSITIONS.items():
        assert targets and set(targets) <= {Mode.DIRECT, Mode.PROXY}
        assert state not in (State.WITHDRAWN,)
        if kind is Event.RATE:
            assert all(t is state for t in targets.values())
    # Only proxy cases are forwarded; a proxy case is decided only from FORWARDED.
    assert [k for k, t in TRANSITIONS.items() if k[1] is Event.FORWARD and Mode.DIRECT in t] == []
    for decision in (Event.APPROVE, Event.REJECT):
        sources = {m: {s for (s, k), t in TRANSITIONS.items() if k is decision and m in t} for m in Mode}
        assert sources[Mode.PROXY] == {State.FORWARDED} and sources[Mode.DIRECT] == {State.ACCEPTED}


_events = st.builds(
    CaseEvent,
    kind=st.sampled_from([Event.FORWARD, Event.APPROVE, Event.SUPPLY, Event.WITHDRAW]),
    at=st.integers(T0, T0 + 10**6),
) | st.sampled_from(
    [ev(Event.REJECT), ev(Event.REQUEST_SUPPLEMENT), ev(Event.DELIVER), ev(Event.RATE, rating=Rating.FAIR)]
)


@given(st.sampled_from([Mode.DIRECT, Mode.PROXY, Mode.SAME_POWER]), st.lists(_events, max_size=12))
def test_any_event_sequence_stays_inside_the_table(mode: Mode, events: list[CaseEvent]) -> None:
    case = CaseState.open(mode)
    ratings = 0
    for event in events:
        before = case
        try:
            case = apply(case, event)
        except InputError as exc:
            assert exc.code is ErrorCode.CASE_TRANSITION
            continue
        assert case.state is TRANSITIONS[(before.state, event.kind)][before.mode]
        assert case.mode is before.mode
        ratings += event.kind is Event.RATE
        assert sum(p[1] - p[0] for p in case.pauses) >= 0
    assert ratings <= 1


# -- event bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Event))
def test_event_body_round_trips(kind: Event) -> None:
    event = ev(kind, reason="理由" if kind is not Event.REJECT else "不予许可")
    body = event.to_body()
    assert all(isinstance(k, str) for k in body)
    assert CaseEvent.from_body(copy.deepcopy(body)) == event


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"extra": 1}, "unknown field(s) extra"),
        ({"event": "approve_all"}, "unknown event"),
        ({"at": 1.5}, "at must be epoch seconds"),
        ({"at": True}, "at must be epoch seconds"),
        ({"missing": "户口簿"}, "missing must be a list"),
        ({"delivery": "pigeon"}, "unknown delivery"),
        ({"rating": 6}, "rating must be 1–5"),
        ({"rating": True}, "rating must be 1–5"),
        ({"rating": None}, "not null"),
        ({"reason": 7}, "reason must be text"),
    ],
)
def test_event_from_body_is_strict(change: dict[str, Any], fragment: str) -> None:
    body = ev(Event.APPROVE).to_body() | change
    with pytest.raises(InputError) as exc:
        CaseEvent.from_body(body)
    assert fragment in exc.value.detail
    with pytest.raises(InputError):
        CaseEvent.from_body({"event": "approve", "at": T0, "reason": ""})  # missing "missing"


# -- the document cannot drift from the table -------------------------------------------


def test_doc_contains_the_generated_table_and_diagram() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert render_table() in doc
    assert "```dot\n" + render_dot() + "```" in doc


def test_doc_has_a_row_and_an_edge_for_every_transition() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for (state, kind), targets in TRANSITIONS.items():
        for mode, target in targets.items():
            rows = [
                line
                for line in doc.splitlines()
                if line.startswith(f"| {state.value} {state.zh} | {kind.value} {kind.zh} |")
                and line.endswith(f"| {target.value} {target.zh} |")
            ]
            assert any(mode.value in row for row in rows), (state, kind, mode)
            assert f'{state.value} -> {target.value} [label="{kind.value} (' in doc
    for state in State:
        assert f"| {state.value} | {state.zh} |" in doc
