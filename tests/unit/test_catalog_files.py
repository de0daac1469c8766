"""Catalog files as operators write them: YAML and CSV (one row per material)."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.catalog_files import items_from_file, load_catalog_file
from core.catalog import Material, Mode
from core.errors import ErrorCode, InputError

HEADER = (
    "code,name,name_en,department,audience,time_limit_days,in_person,mode_city,mode_town,mode_village,"
    "material_code,material_name,material_required,material_original,material_note\n"
)
ROWS = (
    "ZJ-0901,农房翻建审批,Rural house rebuilding,海宁市住建局,personal,20,是,direct,direct,proxy,"
    "id_card,居民身份证,是,是,\n"
    ",,,,,,,,,,site_plan,建房位置图,是,否,村委会盖章\n"
    "MZ-0901,低保申请,Minimum living allowance,海宁市民政局,personal,10,no,direct,direct,,,,,,\n"
)


def refused(name: str, text: str) -> str:
    with pytest.raises(InputError) as exc:
        items_from_file(name, text.encode())
    assert exc.value.code is ErrorCode.CATALOG_INVALID
    assert exc.value.detail.startswith(name + ": ")
    return exc.value.detail


def test_csv_rows_without_a_code_add_materials_to_the_item_above() -> None:
    allowance, house = items_from_file("list.csv", (HEADER + ROWS).encode())  # sorted by code
    assert house.code == "ZJ-0901" and house.in_person is True and house.time_limit_days == 20
    assert house.materials == (
        Material("id_card", "居民身份证", required=True, original=True),
        Material("site_plan", "建房位置图", required=True, original=False, note="村委会盖章"),
    )
    assert dict(house.modes) == {"city": Mode.DIRECT, "town": Mode.DIRECT, "village": Mode.PROXY}
    assert allowance.materials == () and "village" not in allowance.modes


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_the_encodings_spreadsheets_write(encoding: str) -> None:
    assert len(items_from_file("list.csv", (HEADER + ROWS).encode(encoding))) == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (HEADER.replace("department", "dept") + ROWS, "header: unknown column(s) dept"),
        (HEADER.replace("audience,", "") + ROWS, "header: missing column(s) audience"),
        (
            HEADER + ROWS.replace(",,,,,,,,,,site_plan", ",,,,,5,,,,,site_plan"),
            "row 3 has no code but item fields",
        ),
        (HEADER + ",,,,,,,,,,id_card,居民身份证,是,是,\n", "row 2 continues no item"),
        (HEADER + ROWS + ROWS.splitlines()[0] + "\n", "item ZJ-0901: code appears twice"),
        (HEADER + ROWS.replace(",20,", ",-1,"), "item ZJ-0901: time_limit_days must be"),
        (HEADER + ROWS.replace(",是,是,\n", ",是,是,,extra\n", 1), "row 2 has more cells than the header"),
        ("", "the file is empty"),
    ],
)
def test_a_broken_csv_is_refused_naming_the_row_or_item(text: str, fragment: str) -> None:
    assert fragment in refused("list.csv", text)


def test_yaml_and_the_demo_catalog(tmp_path: Path) -> None:
    demo = Path(__file__).parents[2] / "central" / "demo" / "catalog.yaml"
    assert len(load_catalog_file(demo)) == 86
    assert "expected a top-level 'items:' list" in refused("list.yaml", "- code: GA-0001\n")
    assert "list.yml: " in refused("list.yml", "items: [\n")
    assert "a catalog file is .yaml, .yml or .csv" in refused("list.xlsx", "")
    with pytest.raises(InputError) as exc:
        items_from_file("list.csv", b"\xff\xfe\x00\x00" * 3)
    assert "neither UTF-8 nor GB 18030" in exc.value.detail
    with pytest.raises(InputError):
        load_catalog_file(tmp_path / "missing.yaml")
