"""core.catalog: modes and their order, items, releases and their bodies, data files, diffs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.admin import Tier
from core.catalog import (
    Audience,
    CatalogRelease,
    Item,
    Material,
    Mode,
    item_available,
    mode_le,
)
from core.catalog_data import items_from_data
from core.catalog_diff import diff_releases
from core.errors import ErrorCode, InputError

T0 = 1_764_000_000


def make_item(code: str = "GA-0001", **changes: Any) -> Item:
    fields: dict[str, Any] = {
        "code": code,
        "name": "出生登记",
        "name_en": "Household registration of a newborn",
        "department": "海宁市公安局",
        "audience": Audience.PERSONAL,
        "time_limit_days": 0,
        "materials": (
            Material("birth_cert", "出生医学证明", required=True, original=True),
            Material("marriage_cert", "结婚证", required=False, note="非婚生育的免交"),
        ),
        "in_person": True,
        "modes": {"city": Mode.DIRECT, "town": Mode.SAME_POWER, "village": Mode.PROXY},
    }
    fields.update(changes)
    return Item(**fields)


def data_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "code": "GA-0001",
        "name": "出生登记",
        "name_en": "Household registration of a newborn",
        "department": "海宁市公安局",
        "audience": "personal",
        "time_limit_days": 0,
        "in_person": True,
        "modes": {"city": "direct", "town": "same_power", "village": "proxy"},
        "materials": [{"code": "birth_cert", "name": "出生医学证明", "required": True, "original": True}],
    }
    entry.update(changes)
    return entry


def release(*items: Item, version: int = 1) -> CatalogRelease:
    return CatalogRelease(version, T0, T0 + 120 * 86400, items or (make_item(),))


def assert_catalog_error(exc: pytest.ExceptionInfo[InputError], *fragments: str) -> None:
    assert exc.value.code is ErrorCode.CATALOG_INVALID
    for fragment in fragments:
        assert fragment in exc.value.detail, exc.value.detail


# -- modes ------------------------------------------------------------------------------


def test_modes_are_ordered_by_strength_not_alphabetically() -> None:
    assert Mode.PROXY < Mode.DIRECT < Mode.SAME_POWER
    assert Mode.SAME_POWER > Mode.PROXY and Mode.DIRECT >= Mode.DIRECT
    # Alphabetically "direct" < "proxy" < "same_power": the enum must not fall back to that.
    assert not Mode.DIRECT < Mode.PROXY
    assert sorted([Mode.SAME_POWER, Mode.DIRECT, Mode.PROXY]) == [Mode.PROXY, Mode.DIRECT, Mode.SAME_POWER]
    assert max(Mode.PROXY, Mode.DIRECT) is Mode.DIRECT
    assert [m.rank for m in Mode] == [0, 1, 2]
    assert mode_le(Mode.PROXY, Mode.DIRECT) and not mode_le(Mode.SAME_POWER, Mode.DIRECT)


@pytest.mark.parametrize("other", ["direct", "zzz", 1])
def test_modes_refuse_comparison_with_plain_values(other: object) -> None:
    with pytest.raises(TypeError):
        _ = Mode.PROXY < other  # noqa: SIM300 (both directions on purpose)
    with pytest.raises(TypeError):
        _ = other > Mode.PROXY


def test_mode_is_still_its_string_value() -> None:
    assert isinstance(Mode.SAME_POWER, str) and str(Mode.SAME_POWER) == "same_power"
    assert Mode("proxy") is Mode.PROXY
    assert Mode.DIRECT.zh == "直接办"


# -- items ------------------------------------------------------------------------------


def test_item_modes_are_read_only_and_in_tier_order() -> None:
    item = make_item(modes={"village": Mode.PROXY, "city": Mode.DIRECT, "town": Mode.DIRECT})
    assert list(item.modes) == ["city", "town", "village"]
    with pytest.raises(TypeError):
        item.modes["city"] = Mode.PROXY  # type: ignore[index]
    assert hash(item) == hash(
        make_item(modes={"city": Mode.DIRECT, "town": Mode.DIRECT, "village": Mode.PROXY})
    )


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"code": "GA1"}, "code must look like GA-0001"),
        ({"code": "ga-0001"}, "code must look like GA-0001"),
        ({"name": "  "}, "name must not be empty"),
        ({"time_limit_days": -1}, "time_limit_days must be between 0 and 365"),
        ({"time_limit_days": True}, "time_limit_days must be an integer"),
        ({"fee": -100}, "fee must be at least 0"),
        ({"modes": {}}, "offered at no tier"),
        ({"modes": {"county": Mode.DIRECT}}, "unknown tier 'county'"),
        ({"modes": {"city": Mode.SAME_POWER}}, "same_power exists only at town"),
        ({"modes": {"town": Mode.DIRECT, "village": Mode.SAME_POWER}}, "same_power exists only at town"),
        ({"modes": {"city": Mode.DIRECT, "village": Mode.PROXY}}, "offered at village but not at town"),
        ({"modes": {"town": Mode.PROXY, "village": Mode.DIRECT}}, "village (direct) is stronger than town"),
        (
            {"materials": (Material("a1", "x", True), Material("a1", "y", False))},
            "material a1 listed twice",
        ),
    ],
)
def test_item_validation_names_item_and_field(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError) as exc:
        make_item(**changes)
    assert_catalog_error(exc, fragment)


def test_item_available_takes_tier_names_and_tier_enum() -> None:
    item = make_item(modes={"town": Mode.DIRECT, "village": Mode.PROXY})
    assert item_available(item, "village") is Mode.PROXY
    assert item_available(item, Tier.TOWN) is Mode.DIRECT
    assert item_available(item, Tier.CITY) is None
    assert item_available(item, Tier.CENTRAL) is None


# -- releases and bodies ----------------------------------------------------------------


def _walk_types(value: object) -> None:
    """Only the canonical-CBOR data model: text keys, ints (no floats), str, bool, lists, maps."""
    if isinstance(value, dict):
        for key, element in value.items():
            assert isinstance(key, str)
            _walk_types(element)
    elif isinstance(value, list):
        for element in value:
            _walk_types(element)
    else:
        assert isinstance(value, bool | int | str | bytes), type(value)
        assert not isinstance(value, float)


def test_release_body_round_trips_and_uses_only_cbor_types() -> None:
    rel = release(make_item("MZ-0001", modes={"city": Mode.DIRECT}), make_item("GA-0001"))
    body = rel.to_body()
    _walk_types(body)
    assert [i["code"] for i in body["items"]] == ["GA-0001", "MZ-0001"]  # sorted
    assert set(body) == {"version", "issued_at", "expires_at", "items"}
    assert set(body["items"][0]) == {
        "code",
        "name",
        "name_en",
        "department",
        "audience",
        "time_limit_days",
        "materials",
        "in_person",
        "modes",
        "fee",
        "legal_basis",
    }
    again = CatalogRelease.from_body(copy.deepcopy(body))
    assert again == rel and again.to_body() == body
    assert rel.item("MZ-0001").modes == {"city": Mode.DIRECT}


def _mutated(path: tuple[str | int, ...], value: object = None, *, delete: bool = False) -> dict[str, Any]:
    body = release().to_body()
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "delete", "fragment"),
    [
        (("extra",), 1, False, "unknown field(s) extra"),
        (("version",), None, True, "missing field(s) version"),
        (("version",), 1.0, False, "version must be an integer"),
        (("version",), 0, False, "version must be at least 1"),
        (("expires_at",), T0, False, "expires_at must be after issued_at"),
        (("items",), {}, False, "items must be a list"),
        (("items", 0, "fee"), 1.5, False, "item GA-0001: fee must be an integer"),
        (("items", 0, "in_person"), 1, False, "in_person must be true or false"),
        (("items", 0, "time_limit_days"), False, False, "time_limit_days must be an integer"),
        (("items", 0, "audience"), "citizen", False, "audience must be one of personal, enterprise"),
        (("items", 0, "modes", "town"), "full", False, "modes.town must be one of proxy"),
        (("items", 0, "modes", "town"), "同权", False, "modes.town must be one of"),  # aliases: files only
        (("items", 0, "nickname"), "x", False, "item GA-0001: unknown field(s) nickname"),
        (("items", 0, "legal_basis"), None, True, "missing field(s) legal_basis"),
        (("items", 0, "materials", 0, "original"), None, True, "missing field(s) original"),
        (("items", 0, "materials", 0, "note"), None, False, "note must be text"),
        (("items", 0, "materials"), "id_card", False, "materials must be a list"),
    ],
)
def test_release_from_body_is_strict(
    path: tuple[str | int, ...], value: object, delete: bool, fragment: str
) -> None:
    with pytest.raises(InputError) as exc:
        CatalogRelease.from_body(_mutated(path, value, delete=delete))
    assert_catalog_error(exc, fragment)


def test_release_from_body_requires_sorted_unique_items() -> None:
    body = release(make_item("GA-0001"), make_item("GA-0002")).to_body()
    body["items"].reverse()
    with pytest.raises(InputError) as exc:
        CatalogRelease.from_body(body)
    assert_catalog_error(exc, "sorted by code")
    body["items"] = [body["items"][0], body["items"][0]]
    with pytest.raises(InputError):
        CatalogRelease.from_body(body)


def test_release_refuses_duplicate_codes_and_bad_times() -> None:
    with pytest.raises(InputError) as exc:
        release(make_item(), make_item())
    assert_catalog_error(exc, "item GA-0001", "twice")
    with pytest.raises(InputError):
        CatalogRelease(1, T0, T0 - 1, (make_item(),))


def test_release_lookup_and_expiry() -> None:
    rel = release()
    assert rel.get("GA-0001") is not None and rel.get("GA-9999") is None
    with pytest.raises(InputError) as exc:
        rel.item("GA-9999")
    assert exc.value.code is ErrorCode.ITEM_UNKNOWN
    assert not rel.is_expired(T0) and rel.is_expired(rel.expires_at)


# -- data files -------------------------------------------------------------------------


def test_items_from_data_is_lenient_about_spelling() -> None:
    (item,) = items_from_data(
        [
            data_entry(
                time_limit_days="5",
                in_person="否",
                fee="2000",
                modes={"city": "直接办", "town": "同权", "village": "代收代办"},
                materials=[{"code": "id_card", "name": "居民身份证", "required": "yes", "original": 1}],
            )
        ]
    )
    assert item.time_limit_days == 5 and item.in_person is False and item.fee == 2000
    assert dict(item.modes) == {"city": Mode.DIRECT, "town": Mode.SAME_POWER, "village": Mode.PROXY}
    assert item.materials == (Material("id_card", "居民身份证", required=True, original=True),)
    assert item.legal_basis == "" and item.audience is Audience.PERSONAL


def test_items_from_data_reads_csv_style_strings() -> None:
    row = data_entry(time_limit_days="0", in_person="TRUE", fee="", legal_basis="")
    row["materials"] = [
        {"code": "id_card", "name": "居民身份证", "required": "是", "original": "", "note": ""}
    ]
    (item,) = items_from_data([row])
    assert item.fee == 0 and item.in_person is True and item.legal_basis == ""
    assert item.materials == (Material("id_card", "居民身份证", required=True),)
    with pytest.raises(InputError) as exc:  # an empty cell is not an answer for a required field
        items_from_data([data_entry(in_person="")])
    assert_catalog_error(exc, "in_person must be true or false")


def test_items_from_data_treats_an_empty_tier_as_not_offered() -> None:
    (item,) = items_from_data([data_entry(modes={"city": "direct", "town": "direct", "village": None})])
    assert "village" not in item.modes


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"time_limit_days": -3}, "item GA-0001: time_limit_days must be"),
        ({"time_limit_days": "three"}, "item GA-0001: time_limit_days must be an integer"),
        ({"time_limit_days": 400}, "item GA-0001: time_limit_days must be between 0 and 365"),
        ({"in_person": "maybe"}, "item GA-0001: in_person must be true or false"),
        ({"audience": "citizen"}, "item GA-0001: audience must be personal or enterprise"),
        ({"modes": {"town": "sometimes"}}, "item GA-0001: modes.town: unknown mode"),
        ({"modes": "direct"}, "modes must be a mapping"),
        ({"time_limit": 3}, "item GA-0001: unknown field(s) time_limit"),
        (
            {"materials": [{"code": "id_card", "name": "居民身份证"}]},
            "material #1: missing field(s) required",
        ),
        ({"materials": "id_card"}, "materials must be a list"),
    ],
)
def test_items_from_data_is_strict_about_content(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError) as exc:
        items_from_data([data_entry(**changes)])
    assert_catalog_error(exc, fragment)


def test_items_from_data_names_missing_fields_and_position() -> None:
    entry = data_entry()
    del entry["name_en"], entry["modes"]
    with pytest.raises(InputError) as exc:
        items_from_data([entry])
    assert_catalog_error(exc, "item GA-0001: missing field(s) modes, name_en")
    with pytest.raises(InputError) as exc:
        items_from_data([data_entry(), {"name": "无编号"}])
    assert_catalog_error(exc, "item #2")


def test_items_from_data_refuses_duplicates_and_non_lists() -> None:
    with pytest.raises(InputError) as exc:
        items_from_data([data_entry(), data_entry()])
    assert_catalog_error(exc, "item GA-0001", "twice")
    with pytest.raises(InputError):
        items_from_data({"items": []})


# -- diffs ------------------------------------------------------------------------------


def test_diff_releases() -> None:
    old = release(make_item("GA-0001"), make_item("GA-0002"), make_item("MZ-0001"), version=1)
    new = release(
        make_item("GA-0001", time_limit_days=1, fee=100),
        make_item("MZ-0001"),
        make_item("YB-0001"),
        version=2,
    )
    diff = diff_releases(old, new)
    assert (diff.old_version, diff.new_version) == (1, 2)
    assert diff.added == ("YB-0001",) and diff.removed == ("GA-0002",)
    assert [(c.code, c.fields) for c in diff.changed] == [("GA-0001", ("time_limit_days", "fee"))]
    assert not diff.empty and diff_releases(old, old).empty


def test_diff_sees_mode_changes() -> None:
    old = release(make_item(), version=1)
    new = release(make_item(modes={"city": Mode.DIRECT, "town": Mode.DIRECT}), version=2)
    assert diff_releases(old, new).changed[0].fields == ("modes",)


# -- property: every valid item survives its body ---------------------------------------

_modes = st.fixed_dictionaries(
    {},
    optional={
        "city": st.sampled_from([Mode.PROXY, Mode.DIRECT]),
        "town": st.sampled_from(list(Mode)),
    },
).filter(bool)


@st.composite
def items(draw: st.DrawFn) -> Item:
    modes = dict(draw(_modes))
    if "town" in modes and draw(st.booleans()):
        modes["village"] = draw(st.sampled_from([m for m in (Mode.PROXY, Mode.DIRECT) if m <= modes["town"]]))
    text = st.text(min_size=1, max_size=20).filter(str.strip)
    material_codes = draw(
        st.lists(st.from_regex(r"[a-z][a-z0-9_]{1,10}", fullmatch=True), unique=True, max_size=4)
    )
    return Item(
        code=draw(st.from_regex(r"[A-Z]{2,4}-[0-9]{4}", fullmatch=True)),
        name=draw(text),
        name_en=draw(text),
        department=draw(text),
        audience=draw(st.sampled_from(list(Audience))),
        time_limit_days=draw(st.integers(0, 365)),
        materials=tuple(
            Material(c, draw(text), draw(st.booleans()), draw(st.booleans())) for c in material_codes
        ),
        in_person=draw(st.booleans()),
        modes=modes,
        fee=draw(st.integers(0, 10**7)),
        legal_basis=draw(st.text(max_size=30)),
    )


@given(items())
def test_every_item_round_trips_through_its_body(item: Item) -> None:
    body = item.to_body()
    _walk_types(body)
    assert Item.from_body(body) == item
