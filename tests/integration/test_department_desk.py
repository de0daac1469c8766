"""The whole path with a department in a real browser: a village takes in a proxy case, it
syncs to central over ZeroMQ, central's outbox publishes it over RabbitMQ, a clerk of 公安户政
decides it on the department desk in chromium, the signed decision goes back over RPC, and
the village sees it at its next sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import VILLAGE, wait_for
from tests.integration.backoffice import PASSWORD, Backoffice, build_backoffice
from tests.integration.test_run import answers
from tests.integration.webnode import free_port, serve
from tongban.rabbitmq import Broker
from web.accounts import hash_password

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screens"


@pytest.fixture
def office(tmp_path: Path, broker: Broker) -> Backoffice:
    return build_backoffice(tmp_path, broker)


def log_in(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.fill("input[name=user]", "huzheng")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("#link")).to_contain_text("已收到记录")


def test_a_village_case_is_decided_on_the_department_desk_and_reaches_the_village(
    office: Backoffice, page: Page
) -> None:
    web = f"127.0.0.1:{free_port()}"
    url = f"http://{web}"
    case_no = office.take_in()
    rejected = office.take_in(item="GA-0007")
    office.sync_up()
    office.start("central")
    office.start("department")
    office.start("desk", web)
    try:
        wait_for(lambda: answers(url + "/login"), "the department desk", 60, 0.3)
        office.wait_at_department(case_no)
        office.wait_at_department(rejected)
        log_in(page, url)
        expect(page.locator("#queue")).to_contain_text(case_no)
        page.click(f"text={case_no}")
        expect(page.locator("#state")).to_have_text("已转报")
        expect(page.locator("#materials")).to_contain_text("出生医学证明")
        expect(page.locator("#materials")).to_contain_text("窗口已收")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "department-case.png"), full_page=True)

        page.fill("#decide-approve input[name=reason]", "材料齐全，准予登记")
        page.click("#decide-approve button")
        expect(page.locator("#state")).to_have_text("办结（准予）")
        expect(page.locator("#events")).to_contain_text("材料齐全，准予登记")
        expect(page.locator("#no-decision")).to_be_visible()

        # a rejection needs its reason: the page says so and nothing is signed
        page.goto(f"{url}/cases/{rejected}")
        page.locator("#decide-reject input[name=reason]").evaluate("e => e.removeAttribute('required')")
        page.click("#decide-reject button")
        expect(page.locator("#error")).to_contain_text("E_CASE_TRANSITION")
        page.fill("#decide-reject input[name=reason]", "迁入地址不在本市")
        page.click("#decide-reject button")
        expect(page.locator("#state")).to_have_text("办结（不予）")

        page.click("#lang")
        expect(page.locator("#state")).to_have_text("rejected")
        page.screenshot(path=str(SHOTS / "department-case-en.png"), full_page=True)
        page.goto(url + "/")
        expect(page.locator("#queue-empty")).to_be_visible()
        expect(page.locator("#decided")).to_contain_text(case_no)

        office.wait_decided_at_central(case_no)
        office.wait_decided_at_central(rejected, "rejected")
    finally:
        office.close()
    office.sync_down()
    assert office.village_case(case_no).state == "approved"
    assert office.village_case(rejected, VILLAGE).state == "rejected"
    office.verify_all()

    # the window prints the result, naming the department that decided
    with office.city.desk(VILLAGE) as desk:
        desk.clerks.add(desk.keys, "wangli", "王丽", ["clerk"], hash_password(PASSWORD), actor="sys:test")
    with serve(office.city.net.node_dir(VILLAGE)) as village:
        page.goto(village.url + f"/cases/{case_no}?lang=zh")  # the desk left the cookie at en
        page.fill("input[name=user]", "wangli")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        expect(page.locator("#state")).to_have_text("办结（准予）")
        page.click("#paper-decision")
        expect(page.locator("#paper")).to_contain_text("材料齐全，准予登记")
        expect(page.locator("#paper")).to_contain_text("海宁市公安局户政管理")
        page.screenshot(path=str(SHOTS / "village-result.png"), full_page=True)
