"""What a clerk sees when she is held back or the store cannot be written, in a real browser.

Debian's chromium at 1366×768, the size of a service center's screens: the login form
with ``E_LOGIN_THROTTLED`` after three wrong passwords, and the error page of a store that
can be read but not written (a tmpfs remounted read-only) — in Chinese, the English text
one click away. Each page is kept as a screenshot (``login-throttled.png``,
``store-read-only.png`` in the test's directory) for a person to look at.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import VILLAGE
from tests.integration.test_store_errors_at_the_window import _mounted, _need_root
from tests.integration.test_web_hardening import dump
from tests.integration.webnode import PASSWORD, build_city, serve

pytestmark = pytest.mark.slow
SCREEN = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city(tmp_path_factory.mktemp("city")).root


def _log_in(page: Page, url: str, password: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=user]", "wangli")
    page.fill("input[name=password]", password)
    page.click("#login button[type=submit]")


def test_the_login_form_says_a_clerk_is_held_back_in_chinese(page: Page, city: Path, tmp_path: Path) -> None:
    home = tmp_path / VILLAGE
    shutil.copytree(city / VILLAGE, home)
    page.set_viewport_size(SCREEN)
    with serve(home) as web:
        for _ in range(3):
            _log_in(page, web.url, "not her password")
            expect(page.locator("#error")).to_contain_text("E_LOGIN_FAILED")
        _log_in(page, web.url, PASSWORD)
        error = page.locator("#error")
        expect(error).to_contain_text("E_LOGIN_THROTTLED")
        expect(error).to_contain_text("登录失败次数过多，请稍后再试")
        expect(error).to_contain_text("秒后可再试")
        expect(page.locator("#login input[name=user]")).to_be_visible()  # the form, to try again
        assert error.bounding_box()["y"] + error.bounding_box()["height"] < SCREEN["height"]  # type: ignore[index]
        page.screenshot(path=str(tmp_path / "login-throttled.png"))
        page.click("#error summary")
        expect(error.locator("details")).to_contain_text("Too many failed logins")


def test_the_error_page_of_a_read_only_store_reads_well_in_chinese(
    page: Page, city: Path, tmp_path: Path
) -> None:
    _need_root()
    disk = tmp_path / "disk"
    disk.mkdir()
    page.set_viewport_size(SCREEN)
    with _mounted("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)):
        home = disk / VILLAGE
        shutil.copytree(city / VILLAGE, home)
        with serve(home, log_file=tmp_path / "web.log") as web:
            _log_in(page, web.url, PASSWORD)
            expect(page.locator("#sync")).to_be_visible()
        conn = sqlite3.connect(home / "node.db")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        before = dump(home)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with serve(home, log_file=tmp_path / "web-ro.log") as web:
            page.goto(web.url + "/")  # what is stored can still be read
            expect(page.locator("#sync")).to_be_visible()
            page.click("header form[action='/logout'] button")  # ending a session is a write
            error = page.locator("#error")
            expect(error).to_contain_text("E_STORE_READONLY")
            expect(error).to_contain_text("数据库文件只能读取、不能写入，无法保存")
            expect(page.locator("header .brand")).to_contain_text("新阳村便民服务中心")
            page.screenshot(path=str(tmp_path / "store-read-only.png"))
            page.click("#error summary")
            expect(error.locator("details")).to_contain_text("The store can be read but not written")
        assert dump(home, immutable=True) == before
