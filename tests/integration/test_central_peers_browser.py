"""An operator agrees with another city in a real browser: propose, compare the fingerprint the
page shows, mistype it (refused in Chinese, nothing signed), type it right, see the city in
force; the page in Chinese and in English is kept as screenshots.

Debian's chromium driven by Playwright, as in test_central_browser.py. The screenshots go to
a temporary directory (``TONGBAN_SHOTS`` to keep them elsewhere).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sync.record.keys import fingerprint
from tests.integration.webcentral import build_central
from tests.integration.webnode import PASSWORD, Web, serve

pytestmark = pytest.mark.slow

QINGPU = "cn-310118"
ROOT = hashlib.sha256(b"qingpu root").digest()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    central = build_central(tmp_path_factory.mktemp("central-peers-browser")).central_dir
    with serve(central, probe="/login") as running:
        yield running


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TONGBAN_SHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_an_operator_proposes_and_confirms_an_agreement_in_the_browser(
    page: Page, web: Web, shots: Path
) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(web.url + "/login")
    page.fill("input[name=user]", "shouquan")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.click("nav >> text=跨市协作")
    expect(page.locator("h1")).to_have_text("跨市协作")
    expect(page.locator("#peers tbody tr.peer")).to_have_count(0)

    form = page.locator("#propose-form")
    form.locator("input[name=name]").fill("上海市青浦区")
    form.locator("input[name=net]").fill(QINGPU)
    form.locator("input[name=root_pk]").fill(ROOT.hex())
    form.locator("textarea[name=items]").fill("QP-HJ-001:7\nQP-HJ-014:7")
    form.locator("input[name=modes][value=proxy_intake]").check()
    form.locator("input[name=roles][value=accept]").check()
    form.locator("input[name=roles][value=decide]").check()
    form.locator("button[type=submit]").click()

    expect(page.locator("#compare")).to_contain_text("请核对上海市青浦区的根密钥指纹")
    expect(page.locator("#compare-fingerprint")).to_contain_text(fingerprint(ROOT))
    expect(page.locator("#proposals")).to_contain_text("QP-HJ-014")
    page.screenshot(path=str(shots / "peers-compare-zh.png"), full_page=True)

    page.locator("#compare input[name=fingerprint]").fill("0000:0000:0000:0000:0000")
    page.locator("#compare button[type=submit]").click()
    expect(page.locator("#error")).to_contain_text("E_PEER_FINGERPRINT")
    expect(page.locator("#error")).to_contain_text("输入的指纹与对方根密钥的指纹不符")
    expect(page.locator("#peers tbody tr.peer")).to_have_count(0)  # nothing signed
    page.screenshot(path=str(shots / "peers-wrong-fingerprint-zh.png"), full_page=True)

    proposal = page.locator(f"#proposals tr[data-net='{QINGPU}']")
    expect(proposal.locator("details")).to_have_attribute("open", "")  # the failed form, open again
    proposal.locator("input[name=fingerprint]").fill(fingerprint(ROOT))
    proposal.locator("button[type=submit]").click()

    expect(page.locator("#done")).to_contain_text("已确认与上海市青浦区的协议，签发第1号互认证书")
    peer = page.locator(f"#peers tr.peer[data-net='{QINGPU}']")
    expect(peer).to_contain_text("在效")
    expect(peer).to_contain_text("代收代办")
    expect(peer).to_contain_text("受理、审批")
    expect(page.locator("#proposals tr.proposal")).to_have_count(0)
    manage = page.locator(f"#peers tr.manage[data-net='{QINGPU}']")
    manage.locator(".revoke-step summary").click()  # the confirmation step opens, nothing sent
    expect(manage.locator(".revoke-peer input[name=confirm]")).to_be_visible()
    page.screenshot(path=str(shots / "peers-zh.png"), full_page=True)

    page.click("#lang")
    expect(page.locator("h1")).to_have_text("Peer cities")
    expect(page.locator(f"#peers tr.peer[data-net='{QINGPU}']")).to_contain_text("in force")
    expect(page.locator(f"#peers tr.peer[data-net='{QINGPU}']")).to_contain_text("proxy intake")
    page.screenshot(path=str(shots / "peers-en.png"), full_page=True)
