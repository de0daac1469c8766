"""Scanned pages travel with the case, in a real browser (Debian's chromium under Playwright)
over a real sync (ZeroMQ with CURVE on loopback, the files phase after the records):

the village clerk takes in a proxy case with a photographed ID card (a phone's JPEG with its
GPS position) and a scanned PDF, sees their preview before it is taken in and the pages on the
case page; the village syncs; the town's approver opens both pages and approves with the
scanned decision letter attached; the village syncs again and shows the letter (决定书).

Screenshots go to ``build/screenshots/scans/`` (``TONGBAN_SHOTS`` to put them elsewhere).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from node.clerks import hash_password
from tests.helpers import CITY, TOWN, VILLAGE, open_desk
from tests.integration.syncnet import City, build_delegated_city, proxy_form
from tests.integration.webnode import PASSWORD, Web, serve
from tests.scanfiles import PLAIN_PDF, phone_photo, png

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("TONGBAN_SHOTS", Path(__file__).parents[2] / "build" / "screenshots" / "scans"))
WINDOW = {"width": 1366, "height": 768}
JPEG, PDF = "image/jpeg", "application/pdf"


@pytest.fixture
def city(tmp_path: Path) -> City:
    city = build_delegated_city(tmp_path)
    for code, users in (
        (TOWN, [("shenpi", "沈批", ["approver", "clerk"])]),
        (VILLAGE, [("wangli", "王丽", ["clerk"])]),
    ):
        with open_desk(city.home(code), city.clock) as desk:
            for user, name, roles in users:
                desk.clerks.add(desk.keys, user, name, roles, hash_password(PASSWORD), actor="sys:test")
    SHOTS.mkdir(parents=True, exist_ok=True)
    return city


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, web: Web, user: str) -> None:
    page.set_viewport_size(WINDOW)
    page.goto(web.url + "/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("header.top")).to_be_visible()


def sync(city: City, code: str) -> None:
    with city.serving(CITY, TOWN):
        result = city.sync(code)
    assert result.ok, result.error


def test_scans_travel_from_the_village_to_the_town_and_the_decision_letter_back(
    page: Page, city: City
) -> None:
    with open_desk(city.home(VILLAGE), city.clock) as desk:
        item = proxy_form(desk, TOWN).item
    with serve(city.home(VILLAGE)) as village:
        log_in(page, village, "wangli")
        page.goto(village.url + f"/intake?item={item}")
        expect(page.locator("#intake-form")).to_be_visible()
        page.fill("input[name=name]", "王秀英")
        page.fill("input[name=doc_no]", "11010519491231002X")
        page.fill("input[name=phone]", "13800138000")
        page.locator("#materials input[name=materials]").evaluate_all(
            "els => els.forEach(e => { e.checked = true })"
        )
        scans = page.locator("#materials input[type=file]")
        # a file that is no picture: refused on the form in Chinese, nothing taken in, the typing kept
        scans.nth(0).set_input_files([{"name": "身份证.jpg", "mimeType": JPEG, "buffer": b"not a photo"}])
        page.click("#accept")
        expect(page.locator("#error")).to_contain_text("E_FILE_TYPE")
        expect(page.locator("#error")).to_contain_text("文件")
        expect(page.locator("input[name=name]")).to_have_value("王秀英")
        shot(page, "0-village-intake-refused-file")
        page.locator("#materials input[name=materials]").evaluate_all(
            "els => els.forEach(e => { e.checked = true })"
        )
        scans.nth(0).set_input_files([{"name": "身份证.jpg", "mimeType": JPEG, "buffer": phone_photo()}])
        scans.nth(1).set_input_files([{"name": "户口簿扫描.pdf", "mimeType": PDF, "buffer": PLAIN_PDF}])
        previews = page.locator("#materials .preview")
        expect(previews.nth(0).locator("img.thumb")).to_have_attribute("src", re.compile(r"^data:image/jpeg"))
        expect(previews.nth(1).locator(".pdf-icon")).to_have_text("PDF")
        expect(previews.nth(1)).to_contain_text("户口簿扫描.pdf")
        shot(page, "1-village-intake-preview")
        page.click("#accept")
        expect(page.locator("#receipt")).to_contain_text("受理通知书")
        case_no = page.url.split("/")[-2]

        page.goto(village.url + f"/cases/{case_no}")
        pages = page.locator("#files .page")
        expect(pages).to_have_count(2)
        thumb = page.locator("#files img.thumb")
        expect(thumb).to_be_visible()
        assert (
            thumb.evaluate("img => img.complete && img.naturalWidth") > 0
        )  # the page itself, not a broken image
        expect(page.locator("#files a.pdf")).to_contain_text("PDF")
        thumb.click()
        expect(page.locator("#files img.full")).to_be_visible()
        shot(page, "2-village-case-pages")
        page.goto(village.url + f"/cases/{case_no}?lang=en")
        expect(page.locator("#files-title")).to_have_text("Scanned materials")
        shot(page, "2b-village-case-pages-en")
        page.goto(village.url + f"/cases/{case_no}?lang=zh")
    sync(city, VILLAGE)  # records, then the files phase: both pages go up to the town

    with serve(city.home(TOWN)) as town:
        log_in(page, town, "shenpi")
        page.goto(town.url + f"/cases/{case_no}")
        expect(page.locator("#files .page")).to_have_count(2)
        expect(page.locator("#files .in-transit")).to_have_count(0)
        thumb = page.locator("#files img.thumb")
        assert thumb.evaluate("img => img.complete && img.naturalWidth") > 0
        thumb.click()
        expect(page.locator("#files img.full")).to_be_visible()
        with page.expect_download() as download:
            page.click("#files a.pdf")
        assert Path(download.value.path()).read_bytes() == PLAIN_PDF
        shot(page, "3-town-case-pages")
        letter = png((620, 877))
        page.fill("#step-approve input[name=reason]", "材料齐全，准予办理")
        page.locator("#step-approve input[type=file]").set_input_files(
            [{"name": "决定书.png", "mimeType": "image/png", "buffer": letter}]
        )
        expect(page.locator("#step-approve .preview img.thumb")).to_be_visible()
        shot(page, "4-town-approve-with-letter")
        page.click("#step-approve button[type=submit]")
        expect(page.locator("#state")).to_have_text("办结（准予）")
        expect(page.locator("#files .decision")).to_contain_text("决定书")
        shot(page, "5-town-approved")
    sync(city, VILLAGE)  # the decision's record comes down, then its letter

    with serve(city.home(VILLAGE)) as village:
        log_in(page, village, "wangli")
        page.goto(village.url + f"/cases/{case_no}")
        expect(page.locator("#state")).to_have_text("办结（准予）")
        decision = page.locator("#files .decision")
        expect(decision).to_contain_text("决定书")
        expect(decision.locator(".in-transit")).to_have_count(0)
        letter_img = decision.locator("img.thumb")
        assert letter_img.evaluate("img => img.complete && img.naturalWidth") > 0
        letter_img.click()
        expect(decision.locator("img.full")).to_be_visible()
        shot(page, "6-village-decision-letter")
