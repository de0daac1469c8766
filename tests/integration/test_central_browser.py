"""An operator's catalog round in a real browser: log in, import the demo catalog into a
draft, review the differences, publish, compare the releases, look at the dashboard.

Debian's chromium driven by Playwright, as in test_browser.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from central.dashboard import TABLES
from core.catalog_data import items_from_data
from tests.integration.webcentral import build_central
from tests.integration.webnode import PASSWORD, Web, serve
from tongban.demo import demo_file

pytestmark = pytest.mark.slow

DEMO_CATALOG = Path(__file__).parents[2] / "central" / "demo" / "catalog.yaml"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    demo = items_from_data(demo_file("catalog.yaml")["items"])
    # v1: the first ten items, one of them with another time limit
    first = [dataclasses.replace(demo[0], time_limit_days=demo[0].time_limit_days + 5), *demo[1:10]]
    central = build_central(tmp_path_factory.mktemp("central-browser"), first).central_dir
    with serve(central, probe="/login") as running:
        yield running


def test_an_operator_imports_reviews_publishes_and_compares(page: Page, web: Web) -> None:
    demo = items_from_data(demo_file("catalog.yaml")["items"])
    page.goto(web.url + "/")
    expect(page).to_have_url(web.url + "/login?next=%2F")
    page.fill("input[name=user]", "shixiang")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("nav")).to_contain_text("清单草稿")

    page.click("nav >> text=清单草稿")
    expect(page.locator("#no-draft")).to_be_visible()
    page.set_input_files("#import input[name=file]", str(DEMO_CATALOG))
    page.click("#import button[type=submit]")
    expect(page.locator("#draft-count")).to_contain_text(str(len(demo)))
    expect(page.locator("#items")).to_contain_text(demo[-1].code)

    page.click("#review")
    expect(page.locator("#publish-summary")).to_contain_text("第2版")
    expect(page.locator("#diff-added li")).to_have_count(len(demo) - 10)
    expect(page.locator("#diff-changed")).to_contain_text(demo[0].code)
    page.click("#publish")
    expect(page.locator("#published")).to_contain_text("第2版")
    expect(page.locator("#releases tbody tr").first).to_contain_text("shixiang")

    page.click(".diff-link")
    expect(page.locator("h1")).to_contain_text("v1 → v2")
    expect(page.locator("#diff-added")).to_contain_text(demo[-1].code)

    page.click("nav >> text=运行概况")
    expect(page.locator("#tiles")).to_contain_text("办件总量")
    assert page.locator(".charts svg").count() >= 2
    expect(page.locator("#csv a")).to_have_count(len(TABLES))  # one link per table
    page.click("#lang")
    expect(page.locator("nav")).to_contain_text("Dashboard")
