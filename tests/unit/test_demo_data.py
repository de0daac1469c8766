"""The shipped demo data: the Haining catalog and organisation tree are well formed."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.catalog import CatalogRelease, Item, Mode
from core.catalog_data import items_from_data

DEMO = Path(__file__).resolve().parents[2] / "central" / "demo"
SEED_VILLAGE_DIRECT, SEED_VILLAGE_PROXY = 23, 59  # seeds/001: 23项直接办、59项代理办
HAINING_TOWNS = {
    "硖石街道",
    "海洲街道",
    "海昌街道",
    "马桥街道",
    "许村镇",
    "长安镇",
    "周王庙镇",
    "盐官镇",
    "斜桥镇",
    "丁桥镇",
    "袁花镇",
    "黄湾镇",
}


def _load(name: str) -> Any:
    with (DEMO / name).open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def items() -> tuple[Item, ...]:
    return items_from_data(_load("catalog.yaml")["items"])


def test_catalog_parses_and_is_large_and_varied(items: tuple[Item, ...]) -> None:
    assert len(items) >= 60
    departments = Counter(i.department for i in items)
    assert len(departments) >= 6
    prefixes = {i.code.split("-")[0] for i in items}
    assert {"GA", "RS", "YB", "MZ", "WJ", "ZJ", "SW"} <= prefixes
    assert {i.audience.value for i in items} == {"personal", "enterprise"}
    assert any(i.time_limit_days == 0 for i in items) and max(i.time_limit_days for i in items) <= 20
    assert all(i.materials for i in items)
    assert all(i.name_en.isascii() for i in items)


def test_catalog_codes_match_their_department(items: tuple[Item, ...]) -> None:
    by_prefix: dict[str, set[str]] = {}
    for item in items:
        by_prefix.setdefault(item.code.split("-")[0], set()).add(item.department)
    # One department per prefix, except 公安's traffic police brigade under GA.
    assert all(len(depts) == 1 for prefix, depts in by_prefix.items() if prefix != "GA")


def test_village_proportion_matches_the_comment_and_the_seed(items: tuple[Item, ...]) -> None:
    text = (DEMO / "catalog.yaml").read_text(encoding="utf-8")
    match = re.search(r"^# village-modes: direct=(\d+) proxy=(\d+)", text, re.MULTILINE)
    assert match, "catalog.yaml must state the village proportion"
    direct, proxy = int(match.group(1)), int(match.group(2))
    village = Counter(i.modes["village"] for i in items if "village" in i.modes)
    assert set(village) <= {Mode.DIRECT, Mode.PROXY}
    assert (village[Mode.DIRECT], village[Mode.PROXY]) == (direct, proxy)
    seed_share = SEED_VILLAGE_DIRECT / (SEED_VILLAGE_DIRECT + SEED_VILLAGE_PROXY)
    assert abs(direct / (direct + proxy) - seed_share) < 0.02
    assert proxy > direct  # "at village level most items are proxy"


def test_catalog_makes_a_release_whose_body_round_trips(items: tuple[Item, ...]) -> None:
    release = CatalogRelease(1, 1_764_000_000, 1_764_000_000 + 120 * 86_400, items)
    assert CatalogRelease.from_body(release.to_body()) == release


def test_org_tree_codes_are_consistent() -> None:
    tree = _load("org-tree.yaml")
    city = tree["city"]
    assert city == {"code": "330481", "name": "海宁市"}
    nodes = tree["nodes"]
    assert all(set(n) == {"code", "name", "tier", "parent"} for n in nodes)
    assert all(isinstance(n["code"], str) and n["code"].isascii() and n["code"].isdigit() for n in nodes)
    codes = [n["code"] for n in nodes]
    assert len(codes) == len(set(codes)), "codes are unique"
    assert len({n["name"] for n in nodes}) == len(nodes), "names are unique"

    by_tier: dict[str, list[dict[str, str]]] = {}
    for n in nodes:
        by_tier.setdefault(n["tier"], []).append(n)
    assert set(by_tier) == {"city", "town", "village"}

    (hall,) = by_tier["city"]
    assert hall["code"] == city["code"] + "000" and hall["parent"] == city["code"]

    towns = {n["code"]: n for n in by_tier["town"]}
    assert {n["name"] for n in towns.values()} == HAINING_TOWNS
    for code, town in towns.items():
        assert len(code) == 9 and code.startswith(city["code"]) and code[6:] != "000"
        assert town["parent"] == city["code"]

    villages_per_town: Counter[str] = Counter()
    for village in by_tier["village"]:
        code, parent = village["code"], village["parent"]
        assert len(code) == 12 and code[9:] != "000", code
        assert parent in towns and code.startswith(parent), code
        villages_per_town[parent] += 1
    assert all(2 <= villages_per_town[t] <= 4 for t in towns), villages_per_town


def test_org_tree_uses_the_statistical_town_codes() -> None:
    towns = {n["name"]: n["code"] for n in _load("org-tree.yaml")["nodes"] if n["tier"] == "town"}
    assert towns["硖石街道"] == "330481001" and towns["许村镇"] == "330481101"
    assert towns["袁花镇"] == "330481112"
