"""Finding an item at the window: its pinyin keys, and the picker's order."""

from __future__ import annotations

from core.catalog import Mode
from core.grants import Authorization, Verdict
from node.finder import COMMON, groups, search_keys
from sync.projection.delegation import ItemAuthority
from tests.unit.test_catalog import make_item


def held(code: str, name: str, department: str) -> ItemAuthority:
    item = make_item(code, name=name, department=department)
    return ItemAuthority(item, Mode.PROXY, Authorization(Verdict.OK), None, "330481104")


def test_an_item_is_found_by_its_pinyin_initials_its_pinyin_and_its_code() -> None:
    keys = search_keys(make_item("MZ-0001", name="最低生活保障申请", department="海宁市民政局"))
    assert keys.initials == "zdshbzsq"
    assert keys.pinyin.startswith("zuidishenghuobaozhang")
    words = keys.words.split()
    assert "mz-0001" in words and "海宁市民政局" in words and "hnsmzj" in words
    assert search_keys(make_item(name="出生登记")).initials == "csdj"


def test_the_most_used_items_come_first_then_each_department_in_catalog_order() -> None:
    items = [
        held("GA-0001", "出生登记", "海宁市公安局"),
        held("MZ-0001", "最低生活保障申请", "海宁市民政局"),
        held("GA-0002", "死亡注销户口", "海宁市公安局"),
    ]
    shown = groups(items, {"MZ-0001": 5, "GA-0002": 9})
    assert [g.title for g in shown] == ["", "海宁市公安局", "海宁市民政局"]
    assert [a.item.code for a in shown[0].items] == ["GA-0002", "MZ-0001"]
    assert [a.item.code for a in shown[1].items] == ["GA-0001", "GA-0002"]
    assert [g.title for g in groups(items, {})] == ["海宁市公安局", "海宁市民政局"]  # nothing used yet
    many = [held(f"GA-{n:04d}", "出生登记", "海宁市公安局") for n in range(1, 20)]
    assert len(groups(many, {a.item.code: 1 for a in many})[0].items) == COMMON
