"""Administrative codes: shapes, tiers, parents and subtrees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.admin import (
    PROVINCE_CODES,
    OrgUnit,
    Tier,
    city_of,
    expected_parent,
    is_within,
    parse_tier,
    tier_for_code,
    validate_node_code,
)
from core.errors import ErrorCode, InputError

CENTRAL = "330481"
CITY_HALL = "330481000"
TOWN = "330481104"
OTHER_TOWN = "330481105"
VILLAGE = "330481104201"
OTHER_VILLAGE = "330481105201"


def _code(exc: pytest.ExceptionInfo[InputError]) -> ErrorCode:
    return exc.value.code


@pytest.mark.parametrize(
    ("code", "tier"),
    [(CENTRAL, Tier.CENTRAL), (CITY_HALL, Tier.CITY), (TOWN, Tier.TOWN), (VILLAGE, Tier.VILLAGE)],
)
def test_tier_for_code_recognizes_each_shape(code: str, tier: Tier) -> None:
    assert tier_for_code(code) is tier
    validate_node_code(code, tier)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "33048",  # 5 digits
        "3304810",  # 7 digits
        "3304811042011",  # 13 digits
        "33048a",  # a letter
        "３３０４８１",  # full-width digits are not ASCII digits
        " 330481",
        "990481",  # 99 is no province
        "100481",  # neither is 10
        "730481",  # nor 73
        "330481000201",  # village under no town (town part 000)
        "330481104000",  # village part 000
    ],
)
def test_malformed_codes_are_admin_code_errors(code: str) -> None:
    with pytest.raises(InputError) as exc:
        tier_for_code(code)
    assert _code(exc) is ErrorCode.ADMIN_CODE
    assert repr(code) in exc.value.detail


def test_non_string_code_is_admin_code_error() -> None:
    with pytest.raises(InputError) as exc:
        tier_for_code(330481)  # type: ignore[arg-type]
    assert _code(exc) is ErrorCode.ADMIN_CODE


@pytest.mark.parametrize("province", sorted(PROVINCE_CODES))
def test_every_listed_province_is_accepted(province: str) -> None:
    assert tier_for_code(province + "0100") is Tier.CENTRAL


def test_province_list_is_the_gb2260_set() -> None:
    assert len(PROVINCE_CODES) == 34
    assert {
        "11",
        "15",
        "21",
        "23",
        "31",
        "37",
        "41",
        "46",
        "50",
        "54",
        "61",
        "65",
        "71",
        "81",
        "82",
    } <= PROVINCE_CODES
    assert not {"10", "16", "20", "24", "38", "47", "55", "66", "83", "91"} & PROVINCE_CODES


@pytest.mark.parametrize(
    ("code", "claimed"),
    [
        (TOWN, Tier.VILLAGE),
        (TOWN, Tier.CITY),
        (CITY_HALL, Tier.TOWN),
        (CENTRAL, Tier.TOWN),
        (VILLAGE, Tier.TOWN),
    ],
)
def test_wrong_tier_is_tier_mismatch(code: str, claimed: Tier) -> None:
    with pytest.raises(InputError) as exc:
        validate_node_code(code, claimed)
    assert _code(exc) is ErrorCode.TIER_MISMATCH
    assert claimed.value in exc.value.detail


def test_malformed_code_is_admin_code_even_with_a_tier() -> None:
    with pytest.raises(InputError) as exc:
        validate_node_code("3304811", Tier.TOWN)
    assert _code(exc) is ErrorCode.ADMIN_CODE


def test_tier_given_as_plain_text_is_accepted_or_named() -> None:
    validate_node_code(TOWN, "town")  # type: ignore[arg-type]
    with pytest.raises(InputError) as exc:
        validate_node_code(TOWN, "township")  # type: ignore[arg-type]
    assert _code(exc) is ErrorCode.FIELD_INVALID
    assert "township" in exc.value.detail


def test_parse_tier() -> None:
    assert parse_tier("village") is Tier.VILLAGE
    with pytest.raises(InputError):
        parse_tier("VILLAGE")


def test_tier_labels() -> None:
    assert Tier.CENTRAL.zh == "市级平台"
    assert Tier.CITY.zh == "市级中心"
    assert Tier.TOWN.label() == "镇街中心"
    assert Tier.VILLAGE.label("en") == "village service center"
    assert all(t.zh and t.en for t in Tier)
    assert str(Tier.TOWN) == "town"


@pytest.mark.parametrize(
    ("code", "tier", "parent"),
    [
        (CENTRAL, Tier.CENTRAL, None),
        (CITY_HALL, Tier.CITY, CENTRAL),
        (TOWN, Tier.TOWN, CENTRAL),
        (VILLAGE, Tier.VILLAGE, TOWN),
    ],
)
def test_expected_parent(code: str, tier: Tier, parent: str | None) -> None:
    assert expected_parent(code, tier) == parent


def test_expected_parent_checks_the_tier() -> None:
    with pytest.raises(InputError) as exc:
        expected_parent(TOWN, Tier.VILLAGE)
    assert _code(exc) is ErrorCode.TIER_MISMATCH


@pytest.mark.parametrize("code", [CENTRAL, CITY_HALL, TOWN, VILLAGE])
def test_city_of(code: str) -> None:
    assert city_of(code) == CENTRAL


def test_city_of_rejects_bad_code() -> None:
    with pytest.raises(InputError):
        city_of("33048")


@pytest.mark.parametrize(
    ("code", "ancestor", "inside"),
    [
        (CENTRAL, CENTRAL, True),
        (CITY_HALL, CENTRAL, True),
        (TOWN, CENTRAL, True),
        (VILLAGE, CENTRAL, True),
        (VILLAGE, TOWN, True),
        (TOWN, TOWN, True),
        (VILLAGE, VILLAGE, True),
        (CITY_HALL, CITY_HALL, True),
        # the city-hall node is beside the towns, not above them
        (TOWN, CITY_HALL, False),
        (VILLAGE, CITY_HALL, False),
        (OTHER_VILLAGE, TOWN, False),
        (OTHER_TOWN, TOWN, False),
        (TOWN, VILLAGE, False),
        (CENTRAL, TOWN, False),
        ("330482104", CENTRAL, False),  # a town of the neighbouring county
        ("330482", CENTRAL, False),
    ],
)
def test_is_within(code: str, ancestor: str, inside: bool) -> None:
    assert is_within(code, ancestor) is inside


def test_is_within_refuses_malformed_codes() -> None:
    with pytest.raises(InputError):
        is_within("3304811042", TOWN)
    with pytest.raises(InputError):
        is_within(VILLAGE, "33048110")


def test_org_unit_checks_code_tier_and_parent() -> None:
    unit = OrgUnit(TOWN, "斜桥镇", Tier.TOWN, CENTRAL)
    assert unit.contains(VILLAGE)
    assert not unit.contains(OTHER_VILLAGE)
    with pytest.raises(InputError) as exc:
        OrgUnit(VILLAGE, "某村", Tier.VILLAGE, CENTRAL)
    assert _code(exc) is ErrorCode.ADMIN_CODE
    assert TOWN in exc.value.detail
    with pytest.raises(InputError) as exc:
        OrgUnit(TOWN, "斜桥镇", Tier.VILLAGE, TOWN)
    assert _code(exc) is ErrorCode.TIER_MISMATCH
    with pytest.raises(InputError) as exc:
        OrgUnit(TOWN, "  ", Tier.TOWN, CENTRAL)
    assert _code(exc) is ErrorCode.FIELD_INVALID


_province = st.sampled_from(sorted(PROVINCE_CODES))
_three = st.integers(1, 999).map(lambda n: f"{n:03d}")
_city6 = st.builds(lambda p, n: p + f"{n:04d}", _province, st.integers(0, 9999))


@given(_city6, _three, _three)
def test_shapes_agree_with_parents_and_subtrees(city: str, town_part: str, village_part: str) -> None:
    town = city + town_part
    village = town + village_part
    hall = city + "000"
    assert [tier_for_code(c) for c in (city, hall, town, village)] == [
        Tier.CENTRAL,
        Tier.CITY,
        Tier.TOWN,
        Tier.VILLAGE,
    ]
    assert expected_parent(village, Tier.VILLAGE) == town
    assert expected_parent(town, Tier.TOWN) == city
    assert expected_parent(hall, Tier.CITY) == city
    # The parent chain always leads to an ancestor in the is_within sense.
    for child in (hall, town, village):
        assert is_within(child, city)
    assert is_within(village, town)
    assert not is_within(village, hall)
    assert not is_within(town, village)
