"""Case rows as the case queries read them, and as a node shows them (overdue, mine, the API's JSON)."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, asdict
from typing import Any

import pytest

from core.cases import KEEPS_STATE, Delivery, Rating, State, allowed_events
from core.catalog import Mode
from node.casework import Case, state_of
from sync.projection.case_queries import CASE_COLUMNS, CaseRow, Supplement

COLUMNS = [c.strip() for c in CASE_COLUMNS.split(",")]


def stored(**changes: Any) -> tuple[Any, ...]:
    """A ``cases`` row in :data:`CASE_COLUMNS` order, as SQLite returns it."""
    row: dict[str, Any] = {
        "case_no": "330481104201-20261123-0001",
        "node": "330481104201",
        "item": "GA-0001",
        "item_name": "居住证办理",
        "cat": 1,
        "mode": "proxy",
        "decider": "330481104",
        "name": "王秀英",
        "doc_type": "resident_id",
        "doc_no": "11010519491231002X",
        "phone": "13800138000",
        "materials": '["id_card", "photo"]',
        "notes": "",
        "limit_days": 7,
        "deadline": "2026-12-02",
        "flags": "[]",
        "received": 1_795_400_000,
        "actor": "wangli",
        "state": "forwarded",
        "rating": None,
        "comment": None,
        "delivery": None,
        "decided_at": None,
        "closed_at": None,
        "missing": None,
        "paused_days": 0,
        "events": 1,
        "intake_deadline": "2026-12-02",
        "quarantined": 0,
    }
    row.update(changes)
    assert list(row) == COLUMNS
    return tuple(row.values())


def test_a_row_parses_its_json_and_its_enums() -> None:
    row = CaseRow.from_row(stored(flags='["E_GRANT_EXPIRED", "calendar_estimated"]'))
    assert row.materials == ("id_card", "photo")
    assert row.flags == ("E_GRANT_EXPIRED", "calendar_estimated")
    assert row.state is State.FORWARDED and row.mode is Mode.PROXY
    assert row.rating is None and row.delivery is None and row.missing is None


def test_a_closed_rated_case_parses_rating_and_delivery() -> None:
    row = CaseRow.from_row(stored(state="delivered", rating=4, delivery="mail", comment="好", closed_at=9))
    assert row.state is State.DELIVERED
    assert row.rating is Rating.SATISFIED and row.delivery is Delivery.MAIL


def test_the_last_supplement_request_is_parsed() -> None:
    missing = json.dumps({"missing": ["身份证", "照片"], "reason": "复印件不清晰"}, ensure_ascii=False)
    row = CaseRow.from_row(stored(state="supplement", missing=missing))
    assert row.missing == Supplement(("身份证", "照片"), "复印件不清晰")


def test_rows_are_frozen() -> None:
    row = CaseRow.from_row(stored())
    with pytest.raises(FrozenInstanceError):
        row.state = State.APPROVED  # type: ignore[misc]


def test_overdue_and_mine_are_derived_when_shown() -> None:
    row = CaseRow.from_row(stored())
    assert not Case.shown(row, "330481104201", "2026-12-02").overdue  # due today: on time
    late = Case.shown(row, "330481104", "2026-12-03")
    assert late.overdue and not late.mine
    decided = CaseRow.from_row(stored(state="approved"))
    assert not Case.shown(decided, "330481104201", "2027-06-01").overdue  # its time limit has stopped


def test_the_json_of_a_shown_case_keeps_the_columns_then_the_derived_fields() -> None:
    missing = json.dumps({"missing": ["照片"], "reason": ""}, ensure_ascii=False)
    row = CaseRow.from_row(stored(state="supplement", missing=missing))
    case = Case.shown(row, "330481104201", "2026-12-01")
    data = json.loads(json.dumps(asdict(case), ensure_ascii=False))
    assert list(data) == [*COLUMNS, "overdue", "mine", "waiting_up"]
    assert data["waiting_up"] is False
    assert data["state"] == "supplement" and data["mode"] == "proxy"
    assert data["materials"] == ["id_card", "photo"] and data["flags"] == []
    assert data["missing"] == {"missing": ["照片"], "reason": ""}
    assert (data["overdue"], data["mine"]) == (False, True)


def test_a_supplement_returns_to_where_it_was_asked_for() -> None:
    proxy = state_of(CaseRow.from_row(stored(state="supplement")))
    direct = state_of(CaseRow.from_row(stored(state="supplement", mode="direct")))
    assert proxy.supplement_from is State.FORWARDED and direct.supplement_from is State.ACCEPTED
    # Besides the part steps of a joint application (allowed in every state but withdrawn).
    assert [e.value for e in allowed_events(proxy) if e not in KEEPS_STATE] == ["supply", "withdraw"]
