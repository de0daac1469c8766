"""A village clerk follows a joint application (多地联办) in a real browser (chromium via
Playwright): the case page lists our part and Qingpu's, by name, with what Qingpu asks for;
the clerk takes Qingpu's supplement in with the step form the page offers only then, and the
part is Qingpu's to decide again. A screenshot of the page is kept in the test's directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from central import authority
from central.crossing_store import IN, by_their_case
from core.parts import PartStatus
from sync.projection import case_queries
from tests.helpers import VILLAGE, relay
from tests.integration.jointcities import (
    HAINING,
    QINGPU,
    QP_TOWN,
    build,
    cross,
    desk,
    down,
    form,
    leaving,
    up,
)
from tests.integration.webnode import PASSWORD, serve

pytestmark = pytest.mark.slow


def test_the_window_sees_each_part_and_takes_in_the_supplement_a_part_asks_for(
    page: Page, tmp_path: Path
) -> None:
    c = build(tmp_path / "cities")
    with desk(c, VILLAGE) as d:
        number = d.intake(form((leaving(c),)), actor="wangli").case_no
    up(c)
    cross(c, c.hn, c.qp, HAINING, QINGPU)
    sent = cross(c, c.qp, c.hn, QINGPU, HAINING)
    with authority.open_central(c.qp, c.clock) as central:
        theirs = by_their_case(central.store.db, HAINING, number, IN)
        assert theirs is not None
    relay(c.qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    with desk(c, QP_TOWN) as d:
        d.act(theirs.case_no, "request_supplement", {"missing": "迁出地户口簿"}, "shenpi")
    relay(c.qingpu.node_dir(QP_TOWN), c.qp, c.clock, up=True)
    cross(c, c.qp, c.hn, QINGPU, HAINING, sent)
    down(c)

    with serve(c.haining.node_dir(VILLAGE), probe="/login") as web:
        page.goto(web.url + "/login")
        page.fill("input[name=user]", "wangli")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        page.goto(f"{web.url}/cases/{number}")
        parts = page.locator("#parts li.part")
        expect(parts).to_have_count(2)
        expect(parts.nth(0)).to_have_text("本市部分：购房户口迁入（海宁市） 已转报")
        expect(parts.nth(1)).to_contain_text("上海市青浦区部分：市内户口迁移（户口迁出） 补正中")
        expect(parts.nth(1)).to_contain_text("需补正：迁出地户口簿")
        page.screenshot(path=str(tmp_path / "joint-case.png"), full_page=True)

        form_ = page.locator("#step-part_supply")
        expect(form_.locator("select[name=part] option")).to_have_text(
            ["上海市青浦区部分：市内户口迁移（户口迁出）"]
        )
        form_.locator("input[name=reason]").fill("户口簿已补交")
        form_.locator("button[type=submit]").click()
        expect(page.locator("#parts li.part").nth(1)).to_contain_text("已受理")
        expect(page.locator("ol.events")).to_contain_text("联办部分补正材料已收")
        expect(page.locator("#step-part_supply")).to_have_count(0)  # nothing asked any more
    with desk(c, VILLAGE) as d:
        [part] = case_queries.parts_of(d.db, number)
        assert (part.status, part.their_case) == (PartStatus.ACCEPTED, theirs.case_no)
