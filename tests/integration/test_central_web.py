"""Central's operator web service: the real nameko http service on a real central store.

Every refusal shows its stable code and changes nothing stored (the snapshot compares the
log, the projections and the draft before and after).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TOWN, VILLAGE, wait_for
from tests.integration.webcentral import build_central, csrf_of, form, login, post, query, snapshot, upload
from tests.integration.webnode import PASSWORD, Web, serve

pytestmark = pytest.mark.slow

DEMO_CATALOG = Path(__file__).parents[2] / "central" / "demo" / "catalog.yaml"
CSV_HEADER = (
    "code,name,name_en,department,audience,time_limit_days,in_person,fee,legal_basis,"
    "mode_city,mode_town,mode_village,material_code,material_name,material_required,"
    "material_original,material_note\n"
)
NEW_ITEM_CSV = CSV_HEADER + (
    "ZJ-0901,农房翻建审批,Rural house rebuilding permit,海宁市住建局,personal,20,是,,,"
    "direct,direct,proxy,id_card,居民身份证,是,是,\n"
    ",,,,,,,,,,,,site_plan,建房位置图,是,否,村委会盖章\n"
)
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_central(tmp_path_factory.mktemp("central")).central_dir


@pytest.fixture(scope="module")
def web(home: Path) -> Iterator[Web]:
    with serve(home, probe="/login") as running:
        yield running


def version(home: Path) -> int:
    return int(query(home, "SELECT max(version) FROM catalog_releases")[0][0])  # type: ignore[call-overload]


def yaml_item(code: str, name: str, time_limit: int | str = 5) -> bytes:
    return (
        "items:\n"
        f"  - code: {code}\n"
        f"    name: '{name}'\n"
        "    name_en: An item\n"
        "    department: 海宁市民政局\n"
        "    audience: personal\n"
        f"    time_limit_days: {time_limit}\n"
        "    in_person: false\n"
        "    modes: {city: direct, town: direct, village: proxy}\n"
        "    materials:\n"
        "      - {code: id_card, name: 居民身份证, required: true}\n"
    ).encode()


def test_login_and_backoff(web: Web) -> None:
    web.jar.clear()
    status, headers, _ = web.request("GET", "/catalog/draft")
    assert status == 303 and headers["Location"].startswith("/login?next=")
    status, body = login(web, "shixiang", "not the password")
    assert status == 401 and "E_LOGIN_FAILED" in body
    status, body = login(web, "nobody", PASSWORD)
    assert status == 401 and "E_LOGIN_FAILED" in body
    for _ in range(2):
        login(web, "chakan", "not the password")
    login(web, "chakan", "not the password")  # the third failure locks the account
    status, body = login(web, "chakan", PASSWORD)
    assert status == 429 and "E_LOGIN_THROTTLED" in body
    status, _ = login(web, "shixiang")
    assert status == 303
    _, _, html = web.request("GET", "/")
    assert "施事项" in html and "事项管理员" in html


def test_each_role_sees_only_what_it_may(web: Web, home: Path) -> None:
    expected = {
        "shixiang": {"/": 200, "/catalog": 200, "/catalog/draft": 200, "/delegation": 403, "/audit": 403},
        "shouquan": {"/": 200, "/catalog": 200, "/catalog/draft": 403, "/delegation": 200, "/audit": 403},
        "shenji": {"/": 200, "/catalog": 200, "/catalog/draft": 403, "/delegation": 200, "/audit": 200},
    }
    for user, pages in expected.items():
        assert login(web, user)[0] == 303
        for path, status in pages.items():
            got, _, body = web.request("GET", path)
            assert got == status, (user, path)
            if status == 403:
                assert "E_ROLE" in body
    _, _, html = web.request("GET", "/delegation")  # the auditor reads, and has no forms to grant
    assert 'id="grant-form"' not in html and "revoke-grant" not in html
    # the viewer: the dashboard and the catalog, no link to the draft, and a publish is refused
    before = snapshot(home)
    # the viewer was throttled by the login test: a correct login works once the lock ends
    wait_for(lambda: login(web, "chakan")[0] == 303, "the viewer's login backoff to end", 30, 1.0)
    _, _, html = web.request("GET", "/catalog")
    assert 'id="nav-draft"' not in html and "/delegation" not in html
    status, body = post(web, "/catalog/publish", {"digest": "x", "base": "1", "valid_days": "30"})
    assert status == 403 and "E_ROLE" in body
    status, body = post(web, "/delegation/grant", {"aud": TOWN, "mode": "proxy", "valid_days": "30"})
    assert status == 403 and "E_ROLE" in body
    assert snapshot(home) == before


def test_csrf_is_refused(web: Web, home: Path) -> None:
    login(web, "shixiang")
    before = snapshot(home)
    status, body = post(web, "/catalog/draft/start", {}, csrf="forged")
    assert status == 403 and "E_CSRF" in body
    status, body = upload(web, "catalog.yaml", DEMO_CATALOG.read_bytes(), csrf="forged")
    assert status == 403 and "E_CSRF" in body
    assert snapshot(home) == before
    web.jar.clear()
    status, _, body = web.request("POST", "/login", data=b"user=shixiang&password=x&login_csrf=forged")
    assert status == 403 and "E_CSRF" in body


def test_import_edit_publish_makes_the_next_release_named_with_its_operator(web: Web, home: Path) -> None:
    login(web, "shixiang")
    old = version(home)
    assert upload(web, "catalog.yaml", DEMO_CATALOG.read_bytes(), how="replace")[0] == 303
    assert upload(web, "new-items.csv", NEW_ITEM_CSV.encode("gb18030"), how="merge")[0] == 303
    _, _, html = web.request("GET", "/catalog/draft")
    assert "ZJ-0901" in html and "new-items.csv" in html
    # edit one item: a new name, a shorter time limit, a material less
    _, _, page = web.request("GET", "/catalog/draft/items/GA-0001")
    materials = re.findall(r'name="material_code" value="([^"]*)"', page)
    names = re.findall(r'name="material_name" value="([^"]*)"', page)
    assert materials[:2] == ["birth_cert", "hukou_book"]
    kept = [(c, n) for c, n in zip(materials, names, strict=True) if c and c != "marriage_cert"]
    status, _ = post(
        web,
        "/catalog/draft/items/GA-0001",
        {
            "name": "出生登记(新)",
            "name_en": "Household registration of a newborn",
            "department": "海宁市公安局",
            "time_limit_days": "3",
            "in_person": "yes",
            "mode_city": "direct",
            "mode_town": "same_power",
            "mode_village": "proxy",
            "material_code": [c for c, _ in kept],
            "material_name": [n for _, n in kept],
            "material_required": ["yes"] * len(kept),
            "material_original": ["yes"] * len(kept),
            "material_note": [""] * len(kept),
        },
        csrf=csrf_of(web, "/catalog/draft"),
    )
    assert status == 303
    assert post(web, "/catalog/draft/items/GA-0002/remove", {}, csrf=csrf_of(web, "/catalog/draft"))[0] == 303
    # the confirmation shows the differences; the publish names the operator
    _, _, confirm = web.request("GET", "/catalog/publish")
    assert "ZJ-0901" in confirm and "GA-0002" in confirm and "出生登记(新)" in confirm
    digest = re.search(r'name="digest" value="([^"]+)"', confirm)
    base = re.search(r'name="base" value="([^"]+)"', confirm)
    assert digest and base and base[1] == str(old)
    status, headers, _ = web.request(
        "POST",
        "/catalog/publish",
        data=form({"csrf": csrf_of(web), "digest": digest[1], "base": base[1], "valid_days": "60"}),
    )
    assert status == 303 and headers["Location"] == f"/catalog/releases?published={old + 1}"
    assert version(home) == old + 1
    rows = query(home, "SELECT actor FROM records WHERE kind = 'catalog.release' ORDER BY seq DESC LIMIT 1")
    assert rows == [("shixiang",)]
    assert query(home, "SELECT count(*) FROM catalog_draft") == [(0,)]
    item = query(home, "SELECT name FROM catalog_items WHERE version = ? AND code = 'GA-0001'", old + 1)
    assert item == [("出生登记(新)",)]
    # the same confirmation twice: the second is stale (there is no draft any more)
    status, _, body = web.request(
        "POST",
        "/catalog/publish",
        data=form({"csrf": csrf_of(web), "digest": digest[1], "base": base[1], "valid_days": "60"}),
    )
    assert status == 400 and "E_DRAFT_NONE" in body and version(home) == old + 1
    # the new item is granted to no town yet: the page that confirms the publish says so
    _, _, html = web.request("GET", f"/catalog/releases?published={old + 1}")
    note = html[html.index('id="ungranted"') :]
    assert "ZJ-0901" in note[: note.index("</div>")] and "尚未授权给任何镇" in note


def test_an_import_merges_and_a_replace_that_deletes_asks_first(web: Web, home: Path) -> None:
    # defect 10: a two-item file, imported as the default, made a diff deleting 85 items
    login(web, "shixiang")
    current = int(query(home, "SELECT count(*) FROM catalog_items WHERE version = ?", version(home))[0][0])  # type: ignore[call-overload]
    _, _, page = web.request("GET", "/catalog/draft")
    assert re.search(r'<input type="radio" name="how" value="merge" checked>', page)
    status, headers, _ = web.request(
        "POST",
        "/catalog/draft/discard",
        data=form({"csrf": csrf_of(web, "/catalog/draft"), "confirm": "yes"}),
    )
    before = snapshot(home)
    two = yaml_item("MZ-0911", "甲事项") + yaml_item("MZ-0912", "乙事项")[7:]
    status, body = upload(web, "two.yaml", two, how="replace")
    assert status == 409 and "E_DRAFT_REPLACE" in body and f"将删除{current}个事项" in body
    assert 'id="replace-confirm"' in body and snapshot(home) == before  # nothing changed yet
    fields = dict(
        re.findall(
            r'<input type="hidden" name="(how|filename|content|confirm_deletes)" value="([^"]*)"', body
        )
    )
    assert fields["confirm_deletes"] == str(current)
    status, headers, _ = web.request(
        "POST", "/catalog/draft/import", data=form({**fields, "confirm_deletes": "3", "csrf": csrf_of(web)})
    )
    assert status == 409 and snapshot(home) == before  # a count that is not the one shown
    status, headers, _ = web.request(
        "POST", "/catalog/draft/import", data=form({**fields, "csrf": csrf_of(web)})
    )
    assert status == 303 and headers["Location"] == "/catalog/draft?done=replaced&n=2"
    _, _, html = web.request("GET", headers["Location"])
    assert "草稿已替换为文件中的2个事项" in html and "共2项事项" in html
    # discard asks for its box; a merge with no draft starts from the current release
    status, body = post(web, "/catalog/draft/discard", {}, csrf=csrf_of(web, "/catalog/draft"))
    assert status == 400 and "请勾选确认" in body and "共2项事项" in body
    status, headers, _ = web.request(
        "POST",
        "/catalog/draft/discard",
        data=form({"csrf": csrf_of(web, "/catalog/draft"), "confirm": "yes"}),
    )
    assert status == 303 and headers["Location"] == "/catalog/draft?done=discarded"
    assert upload(web, "two.yaml", two)[0] == 303
    _, _, html = web.request("GET", "/catalog/draft?done=merged&n=2")
    assert "已把2个事项合并进草稿" in html and f"共{current + 2}项事项" in html
    _, _, html = web.request("GET", "/catalog/draft?done=<b>x</b>")
    assert 'id="done"' not in html  # only the messages the page knows
    post(web, "/catalog/draft/discard", {"confirm": "yes"}, csrf=csrf_of(web, "/catalog/draft"))


def test_diff_of_two_releases_shows_added_removed_and_changed(web: Web, home: Path) -> None:
    login(web, "chakan")
    new = version(home)
    assert new >= 2, "runs after the publish test"
    status, _, html = web.request("GET", f"/catalog/diff?old={new - 1}&new={new}")
    assert status == 200
    added = html[html.index('id="diff-added"') :]
    assert "ZJ-0901" in added[: added.index("</ul>")]
    removed = html[html.index('id="diff-removed"') :]
    assert "GA-0002" in removed[: removed.index("</ul>")]
    changed = html[html.index('id="diff-changed"') :]
    assert "GA-0001" in changed and "出生登记(新)" in changed and "承诺时限" in changed
    status, _, body = web.request("GET", f"/catalog/diff?old=1&new={new + 5}")
    assert status == 404 and "E_NOT_FOUND" in body


def test_a_broken_import_or_edit_shows_its_code_and_keeps_the_draft(web: Web, home: Path) -> None:
    login(web, "shixiang")
    assert upload(web, "one.yaml", yaml_item("MZ-0901", "低保申请"))[0] == 303
    before = snapshot(home)
    bad_field = CSV_HEADER + NEW_ITEM_CSV.splitlines()[1].replace(",20,", ",-3,") + "\n"
    cases = [
        ("bad.csv", bad_field.encode(), "time_limit_days"),
        ("typo.csv", NEW_ITEM_CSV.replace("department", "departmnet").encode(), "departmnet"),
        ("twice.yaml", yaml_item("MZ-0902", "甲") + yaml_item("MZ-0902", "乙")[7:], "appears twice"),
        ("twice.csv", (NEW_ITEM_CSV + NEW_ITEM_CSV.splitlines()[1] + "\n").encode(), "appears twice"),
        ("catalog.txt", b"items: []", ".yaml, .yml or .csv"),
    ]
    for name, content, detail in cases:
        status, body = upload(web, name, content, how="merge")
        assert status == 400 and "E_CATALOG_INVALID" in body and detail in body, (name, body[-600:])
        assert snapshot(home) == before, name
    status, body = post(
        web,
        "/catalog/draft/items/MZ-0901",
        {
            "name": "低保申请",
            "name_en": "x",
            "department": "民政",
            "time_limit_days": "400",
            "in_person": "no",
        },
        csrf=csrf_of(web, "/catalog/draft"),
    )
    assert status == 400 and "E_CATALOG_INVALID" in body and 'value="400"' in body
    assert snapshot(home) == before
    assert (
        post(web, "/catalog/draft/discard", {"confirm": "yes"}, csrf=csrf_of(web, "/catalog/draft"))[0] == 303
    )
    status, body = post(
        web, "/catalog/draft/discard", {"confirm": "yes"}, csrf=csrf_of(web, "/catalog/draft")
    )
    assert status == 400 and "E_DRAFT_NONE" in body


def test_an_item_name_is_shown_escaped(web: Web, home: Path) -> None:
    login(web, "shixiang")
    assert upload(web, "xss.yaml", yaml_item("MZ-0903", XSS))[0] == 303
    status, headers, html = web.request("GET", "/catalog/draft")
    assert status == 200 and XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    _, _, confirm = web.request("GET", "/catalog/publish")
    assert XSS not in confirm and "&lt;script&gt;" in confirm
    post(web, "/catalog/draft/discard", {"confirm": "yes"}, csrf=csrf_of(web, "/catalog/draft"))


def test_grant_to_a_town_and_revoke_it(web: Web, home: Path) -> None:
    login(web, "shouquan")
    before = snapshot(home)
    for data, code in (
        ({"aud": VILLAGE, "mode": "proxy", "valid_days": "30", "depth": "0"}, "E_GRANT_AUDIENCE"),
        ({"aud": TOWN, "mode": "same_power", "items": ["MZ-0001"], "valid_days": "30", "depth": "1"}, ""),
        ({"aud": TOWN, "mode": "sideways", "valid_days": "30", "depth": "1"}, "E_FIELD_INVALID"),
        ({"aud": TOWN, "mode": "proxy", "valid_days": "0", "depth": "1"}, "E_FIELD_INVALID"),
    ):
        status, body = post(web, "/delegation/grant", data, csrf=csrf_of(web, "/delegation"))
        assert status in (400, 403) and "E_" in body, data
        if code:
            assert code in body
        assert snapshot(home) == before, data
    status, _ = post(
        web,
        "/delegation/grant",
        {"aud": TOWN, "mode": "proxy", "items": ["GA-0001", "MZ-0001"], "valid_days": "10", "depth": "1"},
        csrf=csrf_of(web, "/delegation"),
    )
    assert status == 303
    grants = query(
        home, "SELECT g.id, r.actor FROM grants g JOIN records r ON r.id = g.id WHERE g.aud = ?", TOWN
    )
    assert len(grants) == 1 and grants[0][1] == "shouquan"
    grant_id = bytes(grants[0][0]).hex()  # type: ignore[arg-type]
    _, _, html = web.request("GET", "/delegation")
    row = html[html.index(f'data-grant="{grant_id}"') :]
    assert "即将到期" in row[: row.index("</tr>")]  # 10 days: within the 14-day warning
    assert "许村镇便民服务中心" in row[: row.index("</tr>")]  # the town by name, not only its code
    before = snapshot(home)
    status, body = post(
        web,
        "/delegation/revoke",
        {"grant": grant_id, "reason": " ", "confirm": "yes"},
        csrf=csrf_of(web, "/delegation"),
    )
    assert status == 400 and "E_FIELD_REQUIRED" in body and snapshot(home) == before
    # no confirmation ticked: nothing is revoked, and the page says why
    status, body = post(
        web, "/delegation/revoke", {"grant": grant_id, "reason": "机构调整"}, csrf=csrf_of(web, "/delegation")
    )
    assert status == 400 and "E_FIELD_REQUIRED" in body and "请勾选确认" in body and snapshot(home) == before
    status, headers, _ = web.request(
        "POST",
        "/delegation/revoke",
        data=form(
            {"grant": grant_id, "reason": "机构调整", "confirm": "yes", "csrf": csrf_of(web, "/delegation")}
        ),
    )
    assert status == 303 and headers["Location"] == "/delegation?done=revoked"
    _, _, html = web.request("GET", headers["Location"])
    assert 'id="done"' in html and "授权已撤销" in html
    assert query(home, "SELECT reason FROM grant_revocations") == [("机构调整",)]
    _, _, html = web.request("GET", "/delegation")
    row = html[html.index(f'data-grant="{grant_id}"') :]
    assert "已撤销" in row[: row.index("</tr>")]
    before = snapshot(home)
    status, body = post(
        web,
        "/delegation/revoke",
        {"grant": grant_id, "reason": "再次", "confirm": "yes"},
        csrf=csrf_of(web, "/delegation"),
    )
    assert status == 403 and "E_GRANT_REVOKED" in body and snapshot(home) == before


def test_revoke_a_node(web: Web, home: Path) -> None:
    login(web, "shouquan")
    before = snapshot(home)
    status, body = post(
        web,
        "/delegation/nodes/revoke",
        {"node": VILLAGE, "reason": "设备被盗"},
        csrf=csrf_of(web, "/delegation"),
    )
    assert status == 400 and "请勾选确认" in body and snapshot(home) == before
    status, _ = post(
        web,
        "/delegation/nodes/revoke",
        {"node": VILLAGE, "reason": "设备被盗", "confirm": "yes"},
        csrf=csrf_of(web, "/delegation"),
    )
    assert status == 303
    rows = query(home, "SELECT v.reason, r.actor FROM revocations v JOIN records r ON r.id = v.record_id")
    assert rows == [("设备被盗", "shouquan")]
    _, _, html = web.request("GET", "/delegation")
    row = html[html.index(f'data-node="{VILLAGE}"') :]
    assert "已吊销" in row[: row.index("</tr>")]
    before = snapshot(home)
    status, body = post(
        web,
        "/delegation/nodes/revoke",
        {"node": VILLAGE, "reason": "again", "confirm": "yes"},
        csrf=csrf_of(web, "/delegation"),
    )
    assert status == 400 and "E_CERT_UNKNOWN" in body and snapshot(home) == before


def test_dashboard_csv_and_audit(web: Web, home: Path) -> None:
    login(web, "chakan")
    status, _, html = web.request("GET", "/")
    assert status == 200 and 'id="tiles"' in html and "/dashboard.csv?table=overdue" in html
    status, headers, text = web.request("GET", "/dashboard.csv?table=nodes")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    # defect 11: the headers and the values in the screen's language
    assert (
        text.lstrip("\ufeff").startswith("编码,名称,层级,上级节点") and TOWN in text and "镇（街道）" in text
    )
    status, _, text = web.request("GET", "/dashboard.csv?table=nodes&lang=en")
    assert (
        status == 200
        and text.lstrip("\ufeff").startswith("Code,Name,Tier,Parent")
        and "镇（街道）" not in text
    )
    status, _, body = web.request("GET", "/dashboard.csv?table=cases")
    assert status == 400 and "E_FIELD_INVALID" in body
    login(web, "shenji")
    status, _, html = web.request("POST", "/audit/verify", data=form({"csrf": csrf_of(web, "/audit")}))
    assert status == 200 and 'id="verify-result"' in html and "校验通过" in html


def test_english_is_one_click_away(web: Web) -> None:
    login(web, "chakan")
    _, _, html = web.request("GET", "/catalog?lang=en")
    assert "Catalog" in html and "Dashboard" in html
    _, _, html = web.request("GET", "/catalog")  # the cookie keeps it
    assert "Dashboard" in html
    web.request("GET", "/catalog?lang=zh")


def test_admin_commands(home: Path, web: Web) -> None:
    def tongban(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tongban", "central", "admin", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    added = tongban(
        "add",
        str(home),
        "xinren",
        "--name",
        "辛任",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="a new password 1\n",
    )
    assert added.returncode == 0, added.stderr
    weak = tongban(
        "add", str(home), "ruomi", "--name", "弱密", "--role", "viewer", "--password-stdin", stdin="short\n"
    )
    assert weak.returncode == 3 and "E_PASSWORD_WEAK" in weak.stderr
    assert login(web, "xinren", "a new password 1")[0] == 303
    assert (
        tongban("passwd", str(home), "xinren", "--password-stdin", stdin="another password 2\n").returncode
        == 0
    )
    assert login(web, "xinren", "a new password 1")[0] == 401
    assert tongban("disable", str(home), "xinren").returncode == 0
    listed = tongban("list", str(home)).stdout
    assert re.search(r"xinren\s+辛任\s+viewer\s+disabled", listed) and "shixiang" in listed
    status, body = login(web, "xinren", "another password 2")
    assert status == 401 and "E_LOGIN_FAILED" in body  # a disabled account never says so
    rows = query(home, "SELECT actor FROM records WHERE kind = 'clerk.set' ORDER BY seq DESC LIMIT 1")
    assert rows == [("sys:cli",)]
