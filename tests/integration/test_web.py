"""The clerk web service and /api/v1, through the real nameko http service on a real SQLite file.

Every bad input gets its stable code, and nothing stored changes (the snapshot compares
the log, the cases and the rejected table before and after).
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import SystemClock
from node.web.service import NodeWeb
from tests.helpers import TOWN, VILLAGE, relay
from tests.integration.webnode import (
    GOOD_ID,
    ID_2,
    PASSWORD,
    Web,
    build_city,
    csrf_of,
    device_token,
    form,
    login,
    serve,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city(tmp_path_factory.mktemp("city")).root


@pytest.fixture(scope="module")
def village(city: Path) -> Iterator[Web]:
    with serve(city / VILLAGE) as web:
        yield web


@pytest.fixture(scope="module")
def token(city: Path) -> str:
    return device_token(city / VILLAGE)


def snapshot(home: Path) -> tuple[int, ...]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return tuple(
            conn.execute(sql).fetchone()[0]
            for sql in (
                "SELECT count(*) FROM records",
                "SELECT coalesce(max(arrival), 0) FROM records",
                "SELECT count(*) FROM cases",
                "SELECT count(*) FROM case_events",
                "SELECT count(*) FROM rejected",
                "SELECT count(*) FROM clerks",
            )
        )
    finally:
        conn.close()


def intake_form(web: Web, item: str, materials: list[str], **fields: str) -> dict[str, str | list[str]]:
    data: dict[str, str | list[str]] = {
        "csrf": csrf_of(web, f"/intake?item={item}"),
        "item": item,
        "name": "王秀英",
        "doc_type": "resident_id",
        "doc_no": GOOD_ID,
        "phone": "13800138000",
        "notes": "",
        "materials": materials,
        "action": "accept",
    }
    data.update(fields)
    return data


def first_item(web: Web, token: str, mode: str = "proxy") -> dict[str, object]:
    """The first granted item in ``mode``; a proxy item decided by the town."""
    status, items = web.api("GET", "/api/v1/items", token)
    assert status == 200
    return next(i for i in items["items"] if i["mode"] == mode and (mode != "proxy" or i["decider"] == TOWN))


def test_login_required_and_wrong_password(village: Web) -> None:
    village.jar.clear()
    status, headers, _ = village.request("GET", "/intake")
    assert status == 303 and headers["Location"].startswith("/login?next=")
    status, body = login(village, "wangli", "wrong password!")
    assert status == 401 and "E_LOGIN_FAILED" in body
    status, body = login(village, "nobody", PASSWORD)
    assert status == 401 and "E_LOGIN_FAILED" in body


def test_login_backoff_after_failures(village: Web) -> None:
    for _ in range(3):
        login(village, "cunguan", "not the password")
    status, body = login(village, "cunguan", PASSWORD)
    assert status == 429 and "E_LOGIN_THROTTLED" in body


def test_login_form_needs_its_csrf_token(village: Web) -> None:
    village.jar.clear()
    status, _, body = village.request("POST", "/login", data=form({"user": "wangli", "password": PASSWORD}))
    assert status == 403 and "E_CSRF" in body


def test_intake_receipt_and_search(village: Web, token: str) -> None:
    item = first_item(village, token)
    assert login(village, "wangli")[0] == 303
    required = [m["code"] for m in item["materials"] if m["required"]]  # type: ignore[index,union-attr]
    before = snapshot(village.home)
    status, headers, _ = village.request(
        "POST", "/intake", data=form(intake_form(village, str(item["code"]), required))
    )
    assert status == 303, _
    receipt_path = headers["Location"]
    assert receipt_path.endswith("/receipt")
    status, _, html = village.request("GET", receipt_path)
    assert status == 200 and "受理通知书" in html and "<svg" in html
    case_no = receipt_path.split("/")[2]
    assert case_no.startswith(VILLAGE + "-")
    after = snapshot(village.home)
    assert after[0] == before[0] + 2  # the intake and its forward, in one transaction
    assert after[2] == before[2] + 1
    status, _, html = village.request("GET", "/cases?q=" + urllib.parse.quote("秀英"))
    assert status == 200 and case_no in html
    status, _, html = village.request("GET", "/cases?q=" + GOOD_ID)
    assert case_no in html
    status, _, html = village.request("GET", "/cases/" + case_no + "?lang=en")
    assert "forwarded" in html and "History" in html
    status, _, html = village.request("GET", "/cases/" + case_no + "?lang=zh")
    # forwarded in its own record, but the village has not synced: the town cannot see it yet
    assert "已受理，待上报" in html and 'id="waiting-up-note"' in html


def test_missing_materials_gives_the_one_time_notice_and_stores_nothing(village: Web, token: str) -> None:
    item = first_item(village, token)
    assert login(village, "wangli")[0] == 303
    before = snapshot(village.home)
    data = intake_form(village, str(item["code"]), [], doc_no=ID_2, name="李四")
    status, _, html = village.request("POST", "/intake", data=form(data))
    assert status == 422 and "E_MATERIALS_MISSING" in html and "一次性告知书" in html
    for m in item["materials"]:  # type: ignore[attr-defined]
        if m["required"]:
            assert m["name"] in html
    assert snapshot(village.home) == before


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"doc_no": "110105194912310021"}, "E_ID_CHECKSUM"),
        ({"doc_no": "11010519491231"}, "E_ID_FORMAT"),
        ({"phone": "12345"}, "E_PHONE_INVALID"),
        ({"name": "王" * 51}, "E_FIELD_TOO_LONG"),
        ({"notes": "x" * 501}, "E_FIELD_TOO_LONG"),
        ({"name": ""}, "E_FIELD_REQUIRED"),
        ({"item": "ZZ-9999"}, "E_ITEM_UNKNOWN"),
    ],
)
def test_bad_intake_input_is_refused_with_its_code(
    village: Web, token: str, fields: dict[str, str], code: str
) -> None:
    item = first_item(village, token)
    assert login(village, "wangli")[0] == 303
    required = [m["code"] for m in item["materials"] if m["required"]]  # type: ignore[index,union-attr]
    data = intake_form(village, str(item["code"]), required)
    data.update(fields)
    before = snapshot(village.home)
    status, _, html = village.request("POST", "/intake", data=form(data))
    assert status in (400, 403, 404, 422) and code in html
    assert snapshot(village.home) == before


def test_item_not_granted_is_refused(village: Web, city: Path, token: str) -> None:
    status, items = village.api("GET", "/api/v1/items", token)
    granted = {i["code"] for i in items["items"]}
    town_only = _town_only_item(city, granted)
    before = snapshot(village.home)
    status, body = village.api(
        "POST",
        "/api/v1/cases",
        token,
        {
            "item": town_only,
            "name": "张三",
            "doc_type": "resident_id",
            "doc_no": GOOD_ID,
            "phone": "13800138000",
        },
    )
    assert status == 403 and body["error"]["code"] == "E_GRANT_ITEM"
    assert snapshot(village.home) == before


def _town_only_item(city: Path, granted: set[str]) -> str:
    conn = sqlite3.connect(city / VILLAGE / "node.db")
    try:
        codes = [r[0] for r in conn.execute("SELECT code FROM catalog_items ORDER BY code")]
    finally:
        conn.close()
    return next(c for c in codes if c not in granted)


def test_markup_is_shown_escaped(village: Web, token: str) -> None:
    item = first_item(village, token)
    required = [m["code"] for m in item["materials"] if m["required"]]  # type: ignore[index,union-attr]
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    status, body = village.api(
        "POST",
        "/api/v1/cases",
        token,
        {
            "item": item["code"],
            "name": "赵<b>六</b>",
            "doc_type": "resident_id",
            "doc_no": "330481199001010014",
            "phone": "13800138000",
            "materials": required,
            "notes": payload,
            "confirm_duplicate": True,
        },
    )
    assert status == 201, body
    case_no = body["case"]["case_no"]
    assert login(village, "wangli")[0] == 303
    _, _, html = village.request("GET", "/cases/" + case_no)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<b>六</b>" not in html and "赵&lt;b&gt;六&lt;/b&gt;" in html
    _, _, html = village.request("GET", "/cases?q=" + urllib.parse.quote("赵"))
    assert "&lt;b&gt;" in html


def test_post_without_csrf_is_refused(village: Web) -> None:
    assert login(village, "cunguan")[0] in (303, 429)
    before = snapshot(village.home)
    status, _, _html = village.request(
        "POST",
        "/admin/clerks",
        data=form({"user": "evil", "name": "x", "password": "0123456789ab", "roles": "admin"}),
    )
    assert status in (403, 303)  # 303: the login above was throttled, so there is no session at all
    assert snapshot(village.home) == before


def test_roles_are_enforced(village: Web) -> None:
    assert login(village, "wangli")[0] == 303
    status, _, html = village.request("GET", "/admin/clerks")
    assert status == 403 and "E_ROLE" in html
    assert login(village, "shenji")[0] == 303
    status, _, html = village.request("GET", "/intake")
    assert status == 403 and "E_ROLE" in html
    status, _, html = village.request("GET", "/audit")
    assert status == 200
    csrf = csrf_of(village, "/audit")
    status, _, html = village.request("POST", "/audit/verify", data=form({"csrf": csrf}))
    assert status == 200 and "校验通过" in html


def test_oversized_request_is_refused(village: Web, token: str) -> None:
    before = snapshot(village.home)
    status, body = village.api("POST", "/api/v1/cases", token, {"item": "x", "notes": "x" * 70_000})
    assert status == 413 and body["error"]["code"] == "E_REQUEST_TOO_LARGE"
    assert snapshot(village.home) == before


def test_api_token_and_errors(village: Web, token: str) -> None:
    status, body = village.api("GET", "/api/v1/status", "tbd_not-a-token")
    assert status == 401 and body["error"]["code"] == "E_TOKEN_INVALID"
    assert body["error"]["message"] and body["error"]["message_en"]
    status, body = village.api("GET", "/api/v1/cases/330481104201-20260101-0001", token)
    assert status == 404 and body["error"]["code"] == "E_CASE_UNKNOWN"
    status, body = village.api(
        "POST", "/api/v1/cases/330481104201-20260101-0001/events", token, {"event": "approve"}
    )
    assert status == 403 and body["error"]["code"] == "E_ROLE"


def test_api_intake_duplicate_warning(village: Web, token: str) -> None:
    item = first_item(village, token)
    required = [m["code"] for m in item["materials"] if m["required"]]  # type: ignore[index,union-attr]
    body = {
        "item": item["code"],
        "name": "钱七",
        "doc_type": "resident_id",
        "doc_no": "33048119800101001X",
        "phone": "0573-87221234",
        "materials": required,
    }
    status, first = village.api("POST", "/api/v1/cases", token, body)
    assert status == 201, first
    before = snapshot(village.home)
    status, dup = village.api("POST", "/api/v1/cases", token, body)
    assert status == 409 and dup["error"]["code"] == "E_CASE_DUPLICATE"
    assert dup["error"]["cases"] == [first["case"]["case_no"]]
    assert snapshot(village.home) == before
    status, second = village.api("POST", "/api/v1/cases", token, {**body, "confirm_duplicate": True})
    assert status == 201 and second["case"]["case_no"] != first["case"]["case_no"]


def test_openapi_lists_every_api_route(village: Web) -> None:
    _status, _, text = village.request("GET", "/api/v1/openapi.json")
    doc = json.loads(text)
    routes = set()
    for name in dir(NodeWeb):
        fn = getattr(NodeWeb, name)
        for ext in getattr(fn, "nameko_entrypoints", ()):
            url = getattr(ext, "url", None)
            if url and url.startswith("/api/v1/") and not url.endswith("openapi.json"):
                routes.add(re.sub(r"<(\w+)>", r"{\1}", url))
    assert routes and routes == set(doc["paths"])


def test_town_approver_decides_what_the_village_forwarded(city: Path, village: Web, token: str) -> None:
    item = first_item(village, token)
    required = [m["code"] for m in item["materials"] if m["required"]]  # type: ignore[index,union-attr]
    status, body = village.api(
        "POST",
        "/api/v1/cases",
        token,
        {
            "item": item["code"],
            "name": "孙八",
            "doc_type": "resident_id",
            "doc_no": "330481197501010011",
            "phone": "13900139000",
            "materials": required,
        },
    )
    assert status == 201
    case_no = body["case"]["case_no"]
    assert body["case"]["decider"] == TOWN
    clock = SystemClock()
    relay(city / VILLAGE, city / TOWN, clock, up=True)  # type: ignore[arg-type]
    with serve(city / TOWN) as town:
        assert login(town, "shenpi")[0] == 303
        _, _, html = town.request("GET", "/queue")
        assert case_no in html
        csrf = csrf_of(town, "/cases/" + case_no)
        status, _, _ = town.request(
            "POST",
            f"/cases/{case_no}/step",
            data=form({"csrf": csrf, "event": "approve", "reason": "材料齐全"}),
        )
        assert status == 303
        _, _, html = town.request("GET", "/cases/" + case_no)
        assert "办结（准予）" in html
        assert login(town, "guanli")[0] == 303  # an admin, not an approver
        csrf = csrf_of(town, "/admin/clerks")
        status, _, html = town.request(
            "POST", f"/cases/{case_no}/step", data=form({"csrf": csrf, "event": "reject"})
        )
        assert status == 403 and "E_ROLE" in html
    relay(city / TOWN, city / VILLAGE, clock)  # type: ignore[arg-type]
    status, body = village.api("GET", f"/api/v1/cases/{case_no}", token)
    assert body["case"]["state"] == "approved"
    status, body = village.api(
        "POST", f"/api/v1/cases/{case_no}/events", token, {"event": "deliver", "delivery": "pickup"}
    )
    assert status == 200 and body["case"]["state"] == "delivered"
    status, body = village.api(
        "POST", f"/api/v1/cases/{case_no}/events", token, {"event": "rate", "rating": 5, "reason": "很快"}
    )
    assert status == 200 and body["case"]["rating"] == 5
