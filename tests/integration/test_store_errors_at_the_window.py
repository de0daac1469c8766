"""A busy store, a full disk and a read-only store, as the clerk, a kiosk and an operator see them.

The village's real web service runs in its own process (``python -m tongban.run``); the
store is made busy by another writer holding its lock, the disk full by putting the node on
a small tmpfs and filling it, the store read-only by serving the node from a read-only bind
mount. Each time the clerk's page, the JSON API and the command line each answer with the
store's own code and text, and nothing stored changes. Mounting needs root, as the CI
machine runs the suite; the tests say so and stop otherwise.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import VILLAGE
from tests.integration.test_web import form, intake_form, login
from tests.integration.webnode import GOOD_ID, PASSWORD, Web, build_city, device_token, serve


def _records(home: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{home / 'node.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT arrival, id FROM records ORDER BY arrival").fetchall()
        rows += conn.execute("SELECT user, hash FROM clerk_secrets ORDER BY user").fetchall()
        return rows
    finally:
        conn.close()


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests mount a small file system: run them as root (CI does)")


@contextmanager
def _mounted(*args: str) -> Iterator[None]:
    target = args[-1]
    subprocess.run(["mount", *args], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], check=False)


def _proxy_item(web: Web, token: str) -> dict[str, object]:
    status, body = web.api("GET", "/api/v1/items", token)
    assert status == 200
    return next(i for i in body["items"] if i["mode"] == "proxy")


def _api_intake(web: Web, token: str, item: dict[str, object]) -> tuple[int, dict[str, object]]:
    materials = [m["code"] for m in item["materials"] if m["required"]]  # type: ignore[index, union-attr]
    body = {
        "item": item["code"],
        "name": "王秀英",
        "doc_type": "resident_id",
        "doc_no": GOOD_ID,
        "phone": "13800138000",
        "materials": materials,
        "confirm_duplicate": True,
    }
    return web.api("POST", "/api/v1/cases", token, body)


def _page_intake(web: Web, item: dict[str, object]) -> tuple[int, str]:
    materials = [str(m["code"]) for m in item["materials"] if m["required"]]  # type: ignore[index, union-attr]
    data = intake_form(web, str(item["code"]), materials, confirm_duplicate="1")
    status, _, html = web.request("POST", "/intake", data=form(data))
    return status, html


def _cli_add_clerk(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tongban", "node", "clerk", "add", str(home), "xinren", "--name", "新人",
         "--role", "clerk", "--password-stdin"],
        input="a-long-enough-password\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _assert_refused(
    code: str, status: int, api: tuple[int, dict[str, object]], page: tuple[int, str]
) -> None:
    api_status, api_body = api
    assert api_status == status, api_body
    assert api_body["error"]["code"] == code  # type: ignore[index]
    assert "数据库" in api_body["error"]["message"] or "磁盘" in api_body["error"]["message"]  # type: ignore[index]
    page_status, html = page
    assert page_status == status
    assert code in html and "Traceback" not in html


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city")
    build_city(root)
    return root


def test_a_busy_store_is_busy_at_the_window_the_api_and_the_cli(city: Path, tmp_path: Path) -> None:
    home = tmp_path / VILLAGE
    shutil.copytree(city / VILLAGE, home)
    token = device_token(home)
    with serve(home) as web:
        assert login(web, "wangli", PASSWORD)[0] == 303
        item = _proxy_item(web, token)
        before = _records(home)
        holder = sqlite3.connect(home / "node.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the store past the busy timeout
        try:
            api = _api_intake(web, token, item)
            page = _page_intake(web, item)
            cli = _cli_add_clerk(home)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        _assert_refused("E_STORE_BUSY", 503, api, page)
        assert cli.returncode == 3 and "E_STORE_BUSY" in cli.stderr and "数据库正忙" in cli.stderr
        assert _records(home) == before
        assert _api_intake(web, token, item)[0] == 201  # and once the lock is gone, it goes on


def test_a_full_disk_is_full_at_the_window_the_api_and_the_cli(city: Path, tmp_path: Path) -> None:
    _need_root()
    disk = tmp_path / "disk"
    disk.mkdir()
    size = sum(p.stat().st_size for p in (city / VILLAGE).rglob("*") if p.is_file())
    with _mounted("-t", "tmpfs", "-o", f"size={size + 4 * 1024 * 1024}", "tmpfs", str(disk)):
        home = disk / VILLAGE
        shutil.copytree(city / VILLAGE, home)
        token = device_token(home)
        with serve(home) as web:
            assert login(web, "wangli", PASSWORD)[0] == 303
            item = _proxy_item(web, token)
            csrf_page = intake_form(web, str(item["code"]), [])  # pages read before the disk fills
            assert csrf_page["csrf"]
            before = _records(home)
            filler = disk / "filler"
            with filler.open("wb") as f:  # every byte the file system has left
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            api = _api_intake(web, token, item)
            page = _page_intake(web, item)
            cli = _cli_add_clerk(home)
            _assert_refused("E_STORE_FULL", 507, api, page)
            assert cli.returncode == 3 and "E_STORE_FULL" in cli.stderr and "磁盘已满" in cli.stderr
            assert _records(home) == before
            filler.unlink()
            assert _api_intake(web, token, item)[0] == 201


def test_a_read_only_store_is_read_only_at_the_window_the_api_and_the_cli(city: Path, tmp_path: Path) -> None:
    _need_root()
    source = tmp_path / "source"
    shutil.copytree(city / VILLAGE, source)
    token = device_token(source)
    conn = sqlite3.connect(source / "node.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _records(source)
    home = tmp_path / "read-only"
    home.mkdir()
    with _mounted("--bind", str(source), str(home)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(home)], check=True)
        with serve(home, log_file=tmp_path / "web.log") as web:
            status, _ = web.api("GET", "/api/v1/status", token)
            assert status == 200  # what is stored can still be read
            item = _proxy_item(web, token)
            api = _api_intake(web, token, item)
            status, html = login(web, "wangli", PASSWORD)  # a login writes a session
            assert status == 503 and "E_STORE_READONLY" in html and "Traceback" not in html
            cli = _cli_add_clerk(home)
        assert api[0] == 503 and api[1]["error"]["code"] == "E_STORE_READONLY"  # type: ignore[index]
        assert cli.returncode == 3 and "E_STORE_READONLY" in cli.stderr
    assert _records(source) == before
