"""A village clerk takes in another city's item (异地代收) in a real browser (chromium via
Playwright): the picker lists Qingpu's mirrored items under the city's name, the search finds
them by it, the form shows Qingpu's materials and time limit, and the receipt says where the
case goes. Screenshots of the list and of the form are kept in the test's directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jsonschema_rs
import pytest
from playwright.sync_api import Page, expect

from node.clerks import hash_password
from node.web.openapi import document
from tests.helpers import CITY, VILLAGE, open_desk
from tests.integration.peercities import QINGPU, QINGPU_NAME, Cities, build, mirror_first
from tests.integration.webnode import PASSWORD, Web, device_token, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cities, Web, str]]:
    """The village's web service over both cities, a clerk and a device token."""
    cities = build(tmp_path_factory.mktemp("peer-browser"))
    mirror_first(cities)
    home = cities.haining.net.node_dir(VILLAGE)
    with open_desk(home, cities.clock) as desk:
        desk.clerks.add(desk.keys, "wangli", "王丽", ["clerk"], hash_password(PASSWORD), actor="sys:test")
    token = device_token(home)
    with serve(home) as running:
        yield cities, running, token


def test_the_api_lists_the_other_city_items_by_key_and_takes_one_in(city: tuple[Cities, Web, str]) -> None:
    cities, web, token = city
    status, body = web.api("GET", "/api/v1/items", token)
    assert status == 200
    theirs = [i for i in body["items"] if i["owner"] == QINGPU]
    assert [i["key"] for i in theirs] == [f"{c}@{QINGPU}" for c in cities.items]
    assert all(i["owner_name"] == QINGPU_NAME and i["mode"] == "proxy" for i in theirs)
    intake = {
        "item": theirs[0]["key"], "name": "李明", "doc_type": "resident_id", "doc_no": "330481199001010014",
        "phone": "13900139000", "materials": [m["code"] for m in theirs[0]["materials"] if m["required"]],
    }  # fmt: skip
    schema = document()["components"]["schemas"]["Intake"]
    assert jsonschema_rs.validator_for(schema).is_valid(intake)
    assert not jsonschema_rs.validator_for(schema).is_valid({**intake, "item": f"{cities.items[0]}@"})
    status, created = web.api("POST", "/api/v1/cases", token, intake)
    assert status == 201, created
    assert created["case"]["item"] == cities.items[0] and created["case"]["decider"] == CITY
    status, refused = web.api(
        "POST", "/api/v1/cases", token, {**intake, "item": f"{cities.items[0]}@cn-999999"}
    )
    assert status >= 400 and refused["error"]["code"] == "E_PEER_SCOPE"


def test_the_window_lists_and_takes_in_the_other_city_item(
    page: Page, city: tuple[Cities, Web, str], tmp_path: Path
) -> None:
    cities, web, _ = city
    code = cities.items[0]
    page.goto(web.url + "/login")
    page.fill("input[name=user]", "wangli")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.goto(web.url + "/intake")
    group = page.locator(".pick-group.peer-group")
    expect(group.locator("h3")).to_have_text(f"异地代收 · {QINGPU_NAME}")
    expect(group.locator("a.pick-item")).to_have_count(2)
    page.fill("#item-filter", "青浦")  # found by the owning city's name
    expect(page.locator("a.peer-item:visible")).to_have_count(2)
    page.screenshot(path=str(tmp_path / "peer-items-list.png"), full_page=True)

    page.locator(f"a.peer-item[href*='{code}']").click()
    expect(page.locator("#intake-form input[name=item]")).to_have_value(f"{code}@{QINGPU}")
    expect(page.locator("#peer-note")).to_contain_text(f"本件由{QINGPU_NAME}审批，经海宁市转送")
    expect(page.locator("h1 .mode.peer")).to_have_text(f"异地代收 · {QINGPU_NAME}")
    expect(page.locator("#guide")).to_contain_text(QINGPU_NAME)
    with cities.central() as central:
        from sync.projection.peer_items import newest_mirror

        mirror = newest_mirror(central.store.db, QINGPU)
    assert mirror is not None
    item = mirror.get(code)
    assert item is not None
    for material in item.materials:
        expect(page.locator("#materials")).to_contain_text(material.name)
    page.screenshot(path=str(tmp_path / "peer-intake-form.png"), full_page=True)

    page.fill("input[name=name]", "王秀英")
    page.fill("input[name=doc_no]", "11010519491231002X")
    page.fill("input[name=phone]", "13800138000")
    page.locator("#materials input[name=materials]").evaluate_all(
        "els => els.forEach(e => { e.checked = true })"
    )
    page.click("#accept")
    expect(page.locator("#receipt")).to_contain_text("受理通知书")
    expect(page.locator("#receipt-peer")).to_have_text(f"本件由{QINGPU_NAME}审批，经海宁市转送")
    page.screenshot(path=str(tmp_path / "peer-receipt.png"), full_page=True)
    case_no = page.locator("#case-no").inner_text().strip()
    page.goto(f"{web.url}/cases/{case_no}")
    expect(page.locator("#case-peer")).to_have_text(f"本件由{QINGPU_NAME}审批，经海宁市转送")
    page.goto(web.url + "/catalog")  # the item list: Qingpu's items after ours
    expect(page.locator("tr.peer-item")).to_have_count(2)
    expect(page.locator("tr.peer-item").first).to_contain_text(f"异地代收 · {QINGPU_NAME}")
    print("screenshots:", tmp_path)
