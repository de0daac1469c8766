"""Departments as parties: their code shape at every place that parses codes, their
certificate's body, their roles, and the routing of a proxy case to the department."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from core.admin import (
    OrgUnit,
    Tier,
    city_of,
    expected_parent,
    is_department,
    is_within,
    parse_tier,
    tier_for_code,
    validate_node_code,
    within,
)
from core.catalog import Audience, Item, Material, Mode
from core.departments import DepartmentCert, check_department_code
from core.errors import ConfigError, ErrorCode, InputError, RecordError
from core.grants import Grant, decider_for
from core.intake import case_node
from core.roles import DEPARTMENT_ROLES, ROLES, roles_for
from node import config as node_config
from sync.record import kinds
from sync.record.log import dense_for

CENTRAL = "330481"
TOWN = "330481101"
VILLAGE = "330481101201"
GA = "330481GA"
GA_UNIT = "330481GAHZ"


@pytest.mark.parametrize("code", [GA, GA_UNIT, "330481YB", "110101ABCDEF"])
def test_a_department_code_is_the_city_and_capitals(code: str) -> None:
    assert tier_for_code(code) is Tier.DEPARTMENT
    validate_node_code(code, Tier.DEPARTMENT)
    assert is_department(code)
    assert check_department_code(code) == code


@pytest.mark.parametrize(
    "code",
    ["330481G", "330481GABCDEF1", "330481ga", "330481GA1", "990481GA", "33048GA", "330481 GA", "330481ＧＡ"],
)
def test_other_letter_codes_are_admin_code_errors(code: str) -> None:
    with pytest.raises(InputError) as exc:
        tier_for_code(code)
    assert exc.value.code is ErrorCode.ADMIN_CODE
    assert not is_department(code)


def test_division_codes_are_not_departments_and_departments_not_nodes() -> None:
    assert not is_department(TOWN)
    with pytest.raises(InputError) as exc:
        check_department_code(TOWN)
    assert exc.value.code is ErrorCode.TIER_MISMATCH
    with pytest.raises(InputError) as exc:
        validate_node_code(GA, Tier.TOWN)
    assert exc.value.code is ErrorCode.TIER_MISMATCH


def test_a_department_hangs_off_central_and_has_no_subtree() -> None:
    assert parse_tier("department") is Tier.DEPARTMENT
    assert expected_parent(GA, Tier.DEPARTMENT) == CENTRAL
    assert city_of(GA) == CENTRAL
    assert is_within(GA, CENTRAL)
    assert is_within(GA, GA)
    assert not is_within(GA_UNIT, GA)  # a unit's code is not inside its department's
    assert not is_within(GA, TOWN)
    assert not is_within(VILLAGE, GA)
    assert not is_within(GA, "330482")
    assert within(GA, CENTRAL) and not within("330481gA", CENTRAL)
    unit = OrgUnit(GA, "海宁市公安局户政管理", Tier.DEPARTMENT, CENTRAL)
    assert not unit.contains(VILLAGE)
    assert Tier.DEPARTMENT.zh == "部门后台"


def test_a_department_code_is_never_a_case_number_node() -> None:
    with pytest.raises(InputError):
        case_node(f"{GA}-20261201-0001")
    assert case_node(f"{VILLAGE}-20261201-0001") == VILLAGE


def test_a_departments_accounts_have_the_departments_roles() -> None:
    assert roles_for(GA) == DEPARTMENT_ROLES
    assert "clerk" not in DEPARTMENT_ROLES and "approver" in DEPARTMENT_ROLES
    assert roles_for(VILLAGE) == ROLES


def cert(**fields: Any) -> DepartmentCert:
    base: dict[str, Any] = {
        "code": GA,
        "name": "海宁市公安局户政管理",
        "department": "海宁市公安局",
        "parent": CENTRAL,
        "items": ("GA-0001", "GA-0007"),
        "sign_pk": b"\x01" * 32,
        "curve_pk": b"\x02" * 32,
        "nbf": 1_000,
        "exp": 2_000,
        "request": b"request",
    }
    base.update(fields)
    return DepartmentCert(**base)


def test_a_certificate_body_round_trips_and_is_checked_by_its_kind() -> None:
    body = cert().to_body()
    assert DepartmentCert.from_body(body) == cert()
    _, value = kinds.check(kinds.DEPARTMENT_CERT, body)
    assert value == cert()
    assert kinds.scope_of(kinds.DEPARTMENT_CERT, CENTRAL, body) is None  # every store holds it
    assert kinds.KINDS[kinds.DEPARTMENT_CERT].author is kinds.Author.ROOT


@pytest.mark.parametrize(
    "change",
    [
        {"code": TOWN},
        {"code": "330482GA"},  # another city's department under this central
        {"parent": TOWN},
        {"items": ()},
        {"items": ("GA-0007", "GA-0001")},
        {"items": ("GA-0001", "GA-0001")},
        {"items": ("ga-0001",)},
        {"name": " "},
        {"department": ""},
        {"sign_pk": b"\x01" * 31},
        {"exp": 1_000},
        {"request": b""},
    ],
)
def test_a_malformed_certificate_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        cert(**change)
    body = {**cert().to_body(), **{k: list(v) if isinstance(v, tuple) else v for k, v in change.items()}}
    with pytest.raises(RecordError) as exc:
        kinds.check(kinds.DEPARTMENT_CERT, body)
    assert exc.value.code is ErrorCode.SCHEMA


def test_unknown_and_missing_fields_are_refused() -> None:
    body = cert().to_body()
    with pytest.raises(InputError):
        DepartmentCert.from_body({**body, "tier": "department"})
    del body["items"]
    with pytest.raises(InputError):
        DepartmentCert.from_body(body)


def item(code: str, department: str) -> Item:
    return Item(
        code=code,
        name="出生登记",
        name_en="Birth registration",
        department=department,
        audience=Audience.PERSONAL,
        time_limit_days=5,
        materials=(Material("birth_cert", "出生医学证明", True),),
        in_person=True,
        modes={"city": Mode.DIRECT, "town": Mode.PROXY, "village": Mode.PROXY},
    )


def test_a_department_decides_its_listed_items_of_its_catalog_department() -> None:
    c = cert()
    assert c.decides(item("GA-0001", "海宁市公安局"))
    assert not c.decides(item("GA-0002", "海宁市公安局"))  # not listed
    assert not c.decides(item("GA-0001", "海宁市公安局交通警察大队"))  # the catalog moved it


def grant(label: str, aud: str, mode: Mode, parent: Grant | None = None) -> Grant:
    return Grant(
        id=hashlib.sha256(label.encode()).digest(),
        issuer=parent.aud if parent else CENTRAL,
        ts=0,
        aud=aud,
        items=("GA-0001",),
        mode=mode,
        nbf=0,
        exp=10,
        depth=1 if parent is None else 0,
        parent=parent.id if parent else None,
        cat=1,
    )


def test_a_proxy_case_no_grantee_decides_goes_to_the_department() -> None:
    town = grant("town", TOWN, Mode.PROXY)
    village = grant("village", VILLAGE, Mode.PROXY, town)
    chain = [village, town]
    assert decider_for(chain, VILLAGE, Mode.PROXY, CENTRAL, GA) == GA
    assert decider_for(chain, VILLAGE, Mode.PROXY, CENTRAL) == CENTRAL
    assert decider_for(chain, VILLAGE, Mode.PROXY, CENTRAL, None) == CENTRAL


def test_a_grantee_that_decides_keeps_the_case_from_the_department() -> None:
    town = grant("town", TOWN, Mode.SAME_POWER)
    village = grant("village", VILLAGE, Mode.PROXY, town)
    assert decider_for([village, town], VILLAGE, Mode.PROXY, CENTRAL, GA) == TOWN
    assert decider_for([village, town], VILLAGE, Mode.DIRECT, CENTRAL, GA) == VILLAGE


def test_a_department_holds_central_and_itself_whole_and_every_node_holds_it_in_part() -> None:
    at_department = dense_for(GA, CENTRAL)
    assert at_department(CENTRAL) and at_department(GA)
    assert not at_department(VILLAGE) and not at_department(TOWN)
    assert not dense_for(VILLAGE, CENTRAL)(GA) and not dense_for(TOWN, CENTRAL)(GA)


def test_a_department_s_decision_goes_down_to_the_case_s_subtree_and_its_own_records_nowhere() -> None:
    decision = {"case": f"{VILLAGE}-20261201-0001"}
    assert kinds.concerns(kinds.CASE_EVENT, GA, decision, VILLAGE, CENTRAL)
    assert kinds.concerns(kinds.CASE_EVENT, GA, decision, TOWN, CENTRAL)
    assert not kinds.concerns(kinds.CASE_EVENT, GA, decision, "330481105", CENTRAL)
    assert not kinds.concerns(kinds.CLERK_SET, GA, {"user": "huzheng"}, TOWN, CENTRAL)
    assert not kinds.concerns(kinds.NODE_ENROLLED, GA, {}, VILLAGE, CENTRAL)


def test_a_node_toml_of_the_tier_department_is_refused(tmp_path: Path) -> None:
    (tmp_path / node_config.CONFIG_FILE).write_text(
        '[node]\ncode = "330481GA"\ntier = "department"\nname = "户政"\nparent = "330481"\n'
        '[store]\ndatabase = "node.db"\nkeys = "keys/node.key"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError):
        node_config.load(tmp_path)
