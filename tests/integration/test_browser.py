"""A clerk's day in a real browser: Debian's chromium, driven by Playwright's Python client.

Logs in, takes a walk-in through the one-time notice and then the intake, prints the
receipt (the print button, and a real PDF in print media), and finds the case by a
partial Chinese name. chromium is installed by ``make test`` (scripts/system-deps.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import VILLAGE
from tests.integration.webnode import PASSWORD, Web, build_city, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    city = build_city(tmp_path_factory.mktemp("browser")).root
    with serve(city / VILLAGE) as running:
        yield running


def log_in(page: Page, web: Web, user: str = "wangli") -> None:
    page.goto(web.url + "/")
    expect(page).to_have_url(web.url + "/login?next=%2F")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("#sync")).to_contain_text("待上传记录")


def test_clerk_takes_a_walk_in_prints_the_receipt_and_finds_the_case(
    page: Page, web: Web, tmp_path: Path
) -> None:
    log_in(page, web)
    page.click("nav >> text=受理")
    # choose the first proxy item decided by the town without extra fields: ↓ moves through
    # the picker's list without leaving the page, Enter opens the item with its checklist
    page.fill("#item-filter", "代收代办")
    page.fill("#item-filter", "")
    proxy = page.locator(".pick-group:not([data-group=common]) a.pick-item", has_text="代收代办")
    target = proxy.filter(has_not_text="出生").first
    page.focus("#item-filter")
    page.keyboard.press("ArrowDown")
    expect(page).to_have_url(web.url + "/intake")  # ↓ does not submit anything
    target.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#intake-form")).to_be_visible()
    page.fill("input[name=name]", "王秀英")
    page.fill("input[name=doc_no]", "11010519491231002X")
    page.fill("input[name=phone]", "13800138000")

    # materials missing: the one-time notice lists them, nothing is taken in
    page.click("#notice")
    expect(page.locator("#notice-paper")).to_contain_text("一次性告知书")
    expect(page.locator("#notice-paper ol.missing li").first).to_be_visible()
    page.go_back()
    page.fill("input[name=doc_no]", "11010519491231002X")  # not kept by the browser (autocomplete off)

    page.locator("input[name=materials]").evaluate_all("els => els.forEach(e => { e.checked = true })")
    page.click("#accept")
    expect(page.locator("#receipt")).to_contain_text("受理通知书")
    case_no = page.locator("#case-no").inner_text().strip()
    assert case_no.startswith(VILLAGE + "-")
    assert page.locator("#receipt .qr svg").count() == 1

    # print: the button calls window.print, and the print rendering hides the screen parts
    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1 }; }")
    page.click("#print")
    assert page.evaluate("window.__printed") == 1
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()
    pdf = page.pdf(path=str(tmp_path / "receipt.pdf"), format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    page.emulate_media(media="screen")

    # find it again by part of the name
    page.goto(web.url + "/cases")
    page.fill("input[name=q]", "秀英")
    page.press("input[name=q]", "Enter")
    expect(page.locator("table.cases")).to_contain_text(case_no)
    page.click(f"text={case_no}")
    expect(page.locator("#state")).to_have_text("已受理，待上报")  # offline: not at the town yet


def test_english_is_one_click_away(page: Page, web: Web) -> None:
    log_in(page, web)
    page.click("#lang")
    expect(page.locator("nav")).to_contain_text("Intake")
    page.click("#lang")
    expect(page.locator("nav")).to_contain_text("受理")
