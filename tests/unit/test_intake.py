"""Intake rules: applicant, phone, field lengths, materials, case numbers, the intake body, routing."""

from __future__ import annotations

from datetime import date

import pytest

from core.catalog import Audience, Item, Material, Mode
from core.documents import DocType
from core.errors import ErrorCode, InputError
from core.grants import Grant, decider_for
from core.intake import (
    Applicant,
    Intake,
    case_node,
    case_number,
    check_applicant,
    clean_text,
    missing_materials,
    one_time_notice,
    validate_phone,
)

TODAY = date(2026, 11, 23)
GOOD_ID = "11010519491231002X"  # the example in GB 11643


def item(*materials: Material) -> Item:
    return Item(
        code="GA-0001",
        name="居住证办理",
        name_en="Residence permit",
        department="公安局",
        audience=Audience.PERSONAL,
        time_limit_days=7,
        materials=materials,
        in_person=True,
        modes={"village": Mode.PROXY, "town": Mode.DIRECT},
    )


ID = Material("id_card", "居民身份证", required=True, original=True)
PHOTO = Material("photo", "照片", required=True)
LEASE = Material("lease", "租房合同", required=False)


@pytest.mark.parametrize(
    "phone", ["13800138000", "199 1234 5678", "0573-87221234", "057387221234", "010-62751234"]
)
def test_phones_accepted(phone: str) -> None:
    assert " " not in validate_phone(phone)


@pytest.mark.parametrize(
    "phone", ["12800138000", "1380013800", "138001380000", "abc", "0573-123", "+8613800138000"]
)
def test_phones_refused(phone: str) -> None:
    with pytest.raises(InputError) as err:
        validate_phone(phone)
    assert err.value.code is ErrorCode.PHONE_INVALID


def test_applicant_checked_field_by_field() -> None:
    a = check_applicant(" 王秀英 ", "resident_id", GOOD_ID.lower(), "13800138000", TODAY)
    assert a == Applicant("王秀英", DocType.RESIDENT_ID, GOOD_ID, "13800138000")
    with pytest.raises(InputError) as err:
        check_applicant("王秀英", "resident_id", "110105194912310021", "13800138000", TODAY)
    assert err.value.code is ErrorCode.ID_CHECKSUM
    with pytest.raises(InputError) as err:
        check_applicant("", "resident_id", GOOD_ID, "13800138000", TODAY)
    assert err.value.code is ErrorCode.FIELD_REQUIRED
    with pytest.raises(InputError) as err:
        check_applicant("王" * 51, "resident_id", GOOD_ID, "13800138000", TODAY)
    assert err.value.code is ErrorCode.FIELD_TOO_LONG
    with pytest.raises(InputError) as err:
        check_applicant("王秀英", "passport", GOOD_ID, "13800138000", TODAY)
    assert err.value.code is ErrorCode.ID_TYPE_UNKNOWN


def test_control_characters_refused_but_markup_is_just_text() -> None:
    assert clean_text("notes", "<script>alert(1)</script>", limit=500) == "<script>alert(1)</script>"
    with pytest.raises(InputError) as err:
        clean_text("notes", "a\x00b", limit=500)
    assert err.value.code is ErrorCode.FIELD_INVALID


def test_missing_materials_in_catalog_order_and_unknown_codes_refused() -> None:
    it = item(ID, PHOTO, LEASE)
    assert missing_materials(it, {"lease"}) == (ID, PHOTO)
    assert missing_materials(it, {"id_card", "photo"}) == ()
    with pytest.raises(InputError):
        missing_materials(it, {"id_card", "bogus"})
    notice = one_time_notice(it, "王秀英", {"photo"}, "庆云村便民服务中心", TODAY)
    assert [m.code for m in notice.missing] == ["id_card"]
    assert [m.code for m in notice.received] == ["photo"]


def test_case_numbers_name_their_node() -> None:
    number = case_number("330481107201", TODAY, 7)
    assert number == "330481107201-20261123-0007"
    assert case_node(number) == "330481107201"
    with pytest.raises(InputError):
        case_node("330481107201-2026-7")
    with pytest.raises(InputError):
        case_number("330481107201", TODAY, 0)


def _intake() -> Intake:
    return Intake(
        case="330481107201-20261123-0001",
        item="GA-0001",
        item_name="居住证办理",
        cat=1,
        mode=Mode.PROXY,
        decider="330481107",
        applicant=Applicant("王秀英", DocType.RESIDENT_ID, GOOD_ID, "13800138000"),
        materials=("id_card",),
        notes="",
        limit=7,
        deadline=date(2026, 12, 2),
        flags=("E_GRANT_EXPIRED",),
        grant=b"\1" * 32,
    )


def test_intake_body_round_trip_and_strictness() -> None:
    body = _intake().to_body()
    assert Intake.from_body(body) == _intake()
    for broken in (
        {**body, "extra": 1},
        {k: v for k, v in body.items() if k != "deadline"},
        {**body, "mode": "same_power"},
        {**body, "cat": -1},
        {**body, "grant": b"short"},
        {**body, "applicant": {"name": "x"}},
        {**body, "case": "not-a-case"},
    ):
        with pytest.raises(InputError):
            Intake.from_body(broken)


def _grant(aud: str, issuer: str, mode: Mode, parent: bytes | None) -> Grant:
    return Grant(
        id=bytes([len(aud)]) * 32,
        issuer=issuer,
        ts=0,
        aud=aud,
        items=("GA-0001",),
        mode=mode,
        nbf=0,
        exp=10,
        depth=0 if parent else 1,
        parent=parent,
        cat=1,
    )


def test_one_decider_per_case() -> None:
    town = _grant("330481107", "330481", Mode.DIRECT, None)
    village = _grant("330481107201", "330481107", Mode.PROXY, town.id)
    assert decider_for([village, town], "330481107201", Mode.PROXY, "330481") == "330481107"
    assert decider_for([village, town], "330481107201", Mode.DIRECT, "330481") == "330481107201"
    town_proxy = _grant("330481107", "330481", Mode.PROXY, None)
    assert decider_for([village, town_proxy], "330481107201", Mode.PROXY, "330481") == "330481"
