"""A central with a town and a village, its operators, and helpers to drive its web service."""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
import uuid
from collections.abc import Sequence
from pathlib import Path

from central import authority
from central.admins import admins
from core.catalog import Item
from core.catalog_data import items_from_data
from core.clock import FixedClock, SystemClock
from tests.helpers import CITY, TOWN, VILLAGE, Network, make_network
from tests.integration.webnode import PASSWORD, Web
from tongban.demo import demo_file
from web.accounts import hash_password

OPERATORS = (
    ("shixiang", "施事项", ["catalog_admin"]),
    ("shouquan", "寿授权", ["delegation_admin"]),
    ("shenji", "沈审计", ["auditor"]),
    ("chakan", "车查看", ["viewer"]),
)


def build_central(root: Path, catalog: Sequence[Item] | None = None) -> Network:
    """Central with ``catalog`` (default: the demo catalog) as v1, a town and a village
    enrolled, four operators.

    Real time: the web service runs with the system clock.
    """
    net = make_network(root, FixedClock(t=SystemClock().now() - 3600, step=1))
    net.add_node(TOWN, "town", CITY, name="许村镇便民服务中心")
    net.add_node(VILLAGE, "village", TOWN, name="新阳村便民服务中心")
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.publish_catalog(central, catalog or items_from_data(demo_file("catalog.yaml")["items"]))
        accounts = admins(central)
        digest = hash_password(PASSWORD)
        for user, name, roles in OPERATORS:
            accounts.add(central, user, name, roles, digest, actor="sys:test")
    return net


def form(data: dict[str, str | list[str]]) -> bytes:
    return urllib.parse.urlencode(data, doseq=True).encode()


def login(web: Web, user: str, password: str = PASSWORD) -> tuple[int, str]:
    web.jar.clear()
    _, _, html = web.request("GET", "/login")
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', html)
    assert login_csrf, html[:300]
    status, _, body = web.request(
        "POST",
        "/login",
        data=form({"user": user, "password": password, "login_csrf": login_csrf[1], "next": "/"}),
    )
    return status, body


def csrf_of(web: Web, path: str = "/catalog") -> str:
    _, _, html = web.request("GET", path)
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found[1]


def post(web: Web, path: str, data: dict[str, str | list[str]], csrf: str | None = None) -> tuple[int, str]:
    status, _, body = web.request("POST", path, data=form({"csrf": csrf or csrf_of(web), **data}))
    return status, body


def upload(
    web: Web, name: str, content: bytes, how: str = "merge", csrf: str | None = None
) -> tuple[int, str]:
    """POST a catalog file to the draft import, as a browser's multipart form does."""
    boundary = uuid.uuid4().hex
    parts = [
        ("csrf", None, (csrf or csrf_of(web)).encode()),
        ("how", None, how.encode()),
        ("file", name, content),
    ]
    body = b""
    for field, filename, value in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    status, _, text = web.request(
        "POST",
        "/catalog/draft/import",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    return status, text


def snapshot(home: Path) -> tuple[object, ...]:
    """What a refusal must leave as it was: the log, the projections, the draft."""
    conn = sqlite3.connect(home / "central.db")
    try:
        return tuple(
            conn.execute(sql).fetchone()[0]
            for sql in (
                "SELECT count(*) FROM records",
                "SELECT coalesce(max(arrival), 0) FROM records",
                "SELECT count(*) FROM grants",
                "SELECT count(*) FROM grant_revocations",
                "SELECT count(*) FROM revocations",
                "SELECT count(*) FROM catalog_releases",
                "SELECT count(*) FROM clerks",
                "SELECT group_concat(code || body) FROM (SELECT * FROM catalog_draft_items ORDER BY code)",
                "SELECT coalesce(max(changed_at), 0) FROM catalog_draft",
            )
        )
    finally:
        conn.close()


def query(home: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(home / "central.db")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
