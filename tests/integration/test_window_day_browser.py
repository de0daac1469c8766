"""The window's day in a real browser at 1366 × 768 (the typical window PC), one role after
another: the village clerk takes in 低保 for a resident through an agent, the applicant and
the agent read from the card, the item's extra fields typed; the one-time notice printed
without the clerk's banner; the town's approver decides from the materials received and
prints the decision notice; the village sees the decision on its home page; central's
operator looks at the dashboard. Debian's chromium under Playwright, as in test_browser.py.

Screenshots go to ``build/screenshots/window-day/`` (``TONGBAN_SHOTS`` to put them
elsewhere), to be looked at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from central import authority
from central.admins import admins
from core.clock import SystemClock
from node.clerks import hash_password
from tests.helpers import TOWN, VILLAGE, relay
from tests.integration.webcentral import OPERATORS
from tests.integration.webnode import PASSWORD, Web, build_city, serve

pytestmark = pytest.mark.slow

SHOTS = Path(
    os.environ.get("TONGBAN_SHOTS", Path(__file__).parents[2] / "build" / "screenshots" / "window-day")
)
WINDOW = {"width": 1366, "height": 768}
LOW_INCOME = "MZ-0001"
APPLICANT = {
    "name": "陈晓梅",
    "number": "330481198803150022",
    "sex": "女",
    "address": "浙江省海宁市许村镇新阳村8组",
}
AGENT = {
    "name": "陈建国",
    "number": "330481199001010014",
    "sex": "男",
    "address": "浙江省海宁市许村镇新阳村8组",
}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = build_city(tmp_path_factory.mktemp("day-browser"))
    toml = net.root / VILLAGE / "node.toml"
    text = toml.read_text(encoding="utf-8").replace("[node]\n", '[node]\nphone = "0573-87012345"\n', 1)
    toml.write_text(text + '\n[reader]\nkind = "simulated"\n\n[sms]\ngateway = "log"\n', encoding="utf-8")
    with authority.open_central(net.central_dir, net.clock) as central:
        for user, name, roles in OPERATORS:
            admins(central).add(central, user, name, roles, hash_password(PASSWORD), actor="sys:test")
    SHOTS.mkdir(parents=True, exist_ok=True)
    return net.root


@pytest.fixture(scope="module")
def village(city: Path) -> Iterator[Web]:
    with serve(city / VILLAGE) as web:
        yield web


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, web: Web, user: str) -> None:
    page.set_viewport_size(WINDOW)
    page.goto(web.url + "/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("header.top")).to_be_visible()


def lay_card(city: Path, card: dict[str, str]) -> None:
    """A card laid on the simulated reader."""
    (city / VILLAGE / "reader-card.json").write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")


def fill_the_form(page: Page, city: Path) -> None:
    """The applicant and the agent read from their cards, the phones and extra fields typed."""
    lay_card(city, APPLICANT)
    page.click("#read-card")
    expect(page.locator("#card-read")).to_contain_text("陈晓梅")
    expect(page.locator("input[name=doc_no]")).to_have_value(APPLICANT["number"])
    page.fill("input[name=phone]", "13812345678")
    page.check("#agent-on")
    lay_card(city, AGENT)
    page.click("#read-agent-card")
    expect(page.locator("input[name=agent_name]")).to_have_value("陈建国")
    expect(page.locator("#agent-on")).to_be_checked()
    (city / VILLAGE / "reader-card.json").unlink()
    page.fill("input[name=phone]", "13812345678")  # a read fills the person, the page keeps the rest
    page.fill("input[name=agent_phone]", "13912345678")
    page.fill("input[name=extra_household_size]", "3")
    page.fill("input[name=extra_monthly_income]", "1200")


def test_the_village_clerk_takes_in_low_income_through_an_agent(page: Page, city: Path, village: Web) -> None:
    log_in(page, village, "wangli")
    shot(page, "1-village-home")
    page.click("#home-intake")
    page.fill("#item-filter", "zdsh")  # 最低生活保障: its pinyin initials
    expect(
        page.locator(f".pick-group:not([data-group=common]) a[href='/intake?item={LOW_INCOME}']")
    ).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#intake-form")).to_be_visible()
    expect(page.locator("#guide")).to_contain_text("社会救助暂行办法")

    fill_the_form(page, city)
    shot(page, "2-village-intake-form")

    # the income declaration is not there yet: the one-time notice, printed without the banner
    page.locator("#materials input[name=materials]").evaluate_all(
        "els => els.forEach(e => { e.checked = !e.value.startsWith('income') })"
    )
    page.click("#accept")
    expect(page.locator("#notice-paper")).to_contain_text("家庭收入和财产状况申报表")
    expect(page.locator("#not-taken-in")).to_be_visible()
    expect(page.locator("#paper-number")).to_contain_text(f"{VILLAGE}-GZ-")
    page.emulate_media(media="print")
    assert not page.locator("#not-taken-in").is_visible() and not page.locator("header.top").is_visible()
    expect(page.locator("#notice-paper")).to_contain_text("0573-87012345")
    shot(page, "3-village-notice-printed")
    page.emulate_media(media="screen")

    # the resident comes back with it: the same form, everything ticked
    page.goto(village.url + f"/intake?item={LOW_INCOME}")
    fill_the_form(page, city)
    page.locator("#intake-form input[name=materials]").evaluate_all(
        "els => els.forEach(e => { e.checked = true })"
    )
    page.click("#accept")
    expect(page.locator("#receipt")).to_contain_text("受理通知书")
    expect(page.locator("#receipt-agent")).to_contain_text("陈建国")
    expect(page.locator("#receipt")).to_contain_text("许村镇便民服务中心")  # the decider by name
    expect(page.locator("#receipt")).to_contain_text("王丽")  # the clerk by name
    page.emulate_media(media="print")
    shot(page, "4-village-receipt-printed")
    page.emulate_media(media="screen")


def test_the_town_approver_decides_and_prints_the_notice(page: Page, city: Path, village: Web) -> None:
    relay(city / VILLAGE, city / TOWN, SystemClock(), up=True)  # type: ignore[arg-type]
    with serve(city / TOWN) as town:
        log_in(page, town, "shenpi")
        page.click("nav >> text=待审批")
        expect(page.locator("table.cases")).to_contain_text("陈晓梅")
        shot(page, "5-town-queue")
        page.locator("table.cases tr", has_text="陈晓梅").locator("a").first.click()
        received = page.locator("#materials-received li")
        expect(received).to_have_count(5)  # four of the item's and the letter of authorization
        expect(page.locator("#case-agent")).to_contain_text("陈建国")
        expect(page.locator(".extra-value").first).to_have_text("3")
        page.fill(
            "#step-approve textarea[name=reason], #step-approve input[name=reason]", "经入户调查，符合条件"
        )
        page.click("#step-approve button[type=submit]")
        expect(page.locator("#state")).to_have_text("办结（准予）")
        shot(page, "6-town-case-approved")
        page.click("#paper-decision")
        expect(page.locator("#paper")).to_contain_text("准予决定通知书")
        expect(page.locator("#paper-number")).to_contain_text("-JD")
        page.emulate_media(media="print")
        assert not page.locator("header.top").is_visible()
        shot(page, "7-town-decision-printed")
    relay(city / TOWN, city / VILLAGE, SystemClock())  # type: ignore[arg-type]


def test_the_village_sees_the_decision_on_its_home_page(page: Page, village: Web) -> None:
    log_in(page, village, "wangli")
    expect(page.locator("#news")).to_contain_text("已准予")
    expect(page.locator("#news")).to_contain_text("许村镇便民服务中心")
    shot(page, "8-village-home-news")
    page.click("#news a")
    expect(page.locator("#paper-decision")).to_be_visible()
    page.click("#paper-decision")
    expect(page.locator("#paper")).to_contain_text("经入户调查，符合条件")
    page.emulate_media(media="print")
    shot(page, "9-village-decision-printed")


def test_central_sees_the_dashboard(page: Page, city: Path) -> None:
    relay(city / TOWN, city / "central", SystemClock(), up=True)  # type: ignore[arg-type]
    with serve(city / "central", probe="/login") as central:
        log_in(page, central, "chakan")
        page.goto(central.url + "/dashboard")
        expect(page.locator("#chart-volumes figcaption")).to_have_text("各层级办件量")
        expect(page.locator("#chart-top-village svg text").first).to_have_text("MZ-0001 最低生活保障申请")
        shot(page, "10-central-dashboard")
        log_in(page, central, "shixiang")
        page.goto(central.url + "/catalog/draft")
        expect(page.locator("#import input[value=merge]")).to_be_checked()
        shot(page, "11-central-draft")
