"""The node's web service held against lock-outs, raw 500s and hostile input.

The village's real web service runs in its own process (``python -m tongban.run``);
clients connect from loopback addresses of their own (127.0.0.N) so that the login
backoff sees distinct sources. Each refusal answers with its stable code, a page or a
JSON body a clerk can read, and nothing stored changes (a dump of the store before and
after, sessions aside: they note a login's activity).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import VILLAGE, wait_for
from tests.integration.test_store_errors_at_the_window import _mounted, _need_root
from tests.integration.test_web import first_item, form, intake_form, login
from tests.integration.webnode import GOOD_ID, PASSWORD, Web, build_city, device_token, free_port, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city(tmp_path_factory.mktemp("city")).root


@pytest.fixture
def home(city: Path, tmp_path: Path) -> Path:
    copy = tmp_path / VILLAGE
    shutil.copytree(city / VILLAGE, copy)
    return copy


@pytest.fixture
def web(home: Path) -> Iterator[Web]:
    with serve(home) as served:
        yield served


@pytest.fixture
def token(home: Path) -> str:
    return device_token(home)


def dump(home: Path, *, immutable: bool = False) -> list[str]:
    """Everything the node stores, as SQL, but its sessions (``immutable``: on a file
    system mounted read-only, where SQLite cannot even note that it reads)."""
    conn = sqlite3.connect(f"file:{home / 'node.db'}?mode=ro{'&immutable=1' if immutable else ''}", uri=True)
    try:
        return [line for line in conn.iterdump() if '"sessions"' not in line]
    finally:
        conn.close()


class Browser:
    """A client at a loopback address of its own, with its own cookies."""

    def __init__(self, web: Web, address: str) -> None:
        parsed = urllib.parse.urlsplit(web.url)
        self.host, self.port, self.address = str(parsed.hostname), int(parsed.port or 80), address
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30, source_address=(self.address, 0))
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";")[0]
            return response.status, dict(response.headers), response.read().decode()
        finally:
            conn.close()

    def login(self, user: str, password: str) -> tuple[int, str, float]:
        """A login through the form: status, page, and how long the POST took."""
        _, _, html = self.request("GET", "/login")
        found = re.search(r'name="login_csrf" value="([^"]+)"', html)
        assert found, html[:300]
        fields = {"user": user, "password": password, "login_csrf": found[1], "next": "/"}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        started = time.perf_counter()
        status, _, body = self.request("POST", "/login", form(fields), headers)  # type: ignore[arg-type]
        return status, body, time.perf_counter() - started


def _code(html: str) -> str:
    found = re.search(r'id="error"><code>(E_[A-Z_]+)</code>', html)
    return found[1] if found else ""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


# -- logins -----------------------------------------------------------------------------------


def test_a_clerk_logs_in_at_her_window_while_another_address_is_throttled(web: Web) -> None:
    intruder, window = Browser(web, "127.0.0.66"), Browser(web, "127.0.0.7")
    assert [intruder.login("wangli", "guessing")[0] for _ in range(3)] == [401] * 3
    status, html, _ = intruder.login("wangli", PASSWORD)
    assert status == 429 and _code(html) == "E_LOGIN_THROTTLED" and "秒后可再试" in html
    assert 'id="login"' in html  # the form again, with the code
    assert window.login("wangli", PASSWORD)[0] == 303


def test_known_and_unknown_names_answer_alike_in_code_and_in_time(web: Web) -> None:
    """Medians over several attempts, with a generous margin; a throttled answer takes as
    long as a hash, without the hash's CPU."""
    known, unknown = [], []
    for n in range(8):  # one attempt per address: none of them is throttled
        status_k, html_k, seconds_k = Browser(web, f"127.0.1.{n + 1}").login("wangli", "guessing")
        status_u, html_u, seconds_u = Browser(web, f"127.0.2.{n + 1}").login("nobody", "guessing")
        assert (status_k, _code(html_k)) == (status_u, _code(html_u)) == (401, "E_LOGIN_FAILED")
        known.append(seconds_k)
        unknown.append(seconds_u)
    hashing = statistics.median(known + unknown)
    margin = max(0.025, 0.4 * hashing)
    assert abs(statistics.median(known) - statistics.median(unknown)) < margin, (known, unknown)

    held_back = Browser(web, "127.0.3.1")
    for user in ("wangli", "nobody"):
        assert [held_back.login(user, "guessing")[0] for _ in range(3)] == [401] * 3
    throttled_known, throttled_unknown = [], []
    cpu = _cpu_seconds(web.proc.pid)
    for _ in range(6):  # within the first 5 s of both locks
        status_k, html_k, seconds_k = held_back.login("wangli", PASSWORD)
        status_u, html_u, seconds_u = held_back.login("nobody", PASSWORD)
        assert (status_k, _code(html_k)) == (status_u, _code(html_u)) == (429, "E_LOGIN_THROTTLED")
        throttled_known.append(seconds_k)
        throttled_unknown.append(seconds_u)
    throttled_cpu = _cpu_seconds(web.proc.pid) - cpu
    assert abs(statistics.median(throttled_known) - statistics.median(throttled_unknown)) < margin
    assert abs(statistics.median(throttled_known + throttled_unknown) - hashing) < margin
    cpu = _cpu_seconds(web.proc.pid)
    for n in range(6):
        Browser(web, f"127.0.4.{n + 1}").login("wangli", "guessing")
        Browser(web, f"127.0.5.{n + 1}").login("nobody", "guessing")
    hashing_cpu = _cpu_seconds(web.proc.pid) - cpu
    assert throttled_cpu < 0.5 * hashing_cpu, (throttled_cpu, hashing_cpu)


def test_the_admin_page_shows_who_is_held_back_and_lifts_it(web: Web) -> None:
    intruder = Browser(web, "127.0.0.66")
    for _ in range(3):
        intruder.login("wangli", "guessing")
    admin = Browser(web, "127.0.0.9")
    assert admin.login("cunguan", PASSWORD)[0] == 303
    _, _, html = admin.request("GET", "/admin/clerks")
    assert 'id="backoff-wangli"' in html and "登录受限（1 个地址" in html and 'id="unlock-wangli"' in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, page = admin.request("POST", "/admin/clerks/wangli/unlock", form({"csrf": "forged"}), headers)
    assert status == 403 and _code(page) == "E_CSRF"
    assert intruder.login("wangli", PASSWORD)[0] == 429  # still held back
    status, _, _ = admin.request("POST", "/admin/clerks/wangli/unlock", form({"csrf": csrf[1]}), headers)
    assert status == 303
    _, _, html = admin.request("GET", "/admin/clerks")
    assert 'id="backoff-wangli"' not in html
    assert intruder.login("wangli", PASSWORD)[0] == 303


def test_a_disabled_account_answers_as_a_wrong_password_does(home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tongban", "node", "clerk", "disable", str(home), "wangli"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    with serve(home) as web:
        status, html, _ = Browser(web, "127.0.0.7").login("wangli", PASSWORD)
        assert (status, _code(html)) == (401, "E_LOGIN_FAILED") and "停用" not in html


def test_behind_a_proxy_the_backoff_counts_the_address_the_proxy_saw(home: Path) -> None:
    with (home / "node.toml").open("a", encoding="utf-8") as f:
        f.write("\n[web]\nforwarded_for = true\n")
    with serve(home) as web:
        proxy = Browser(web, "127.0.0.1")

        def login_for(client: str, password: str) -> int:
            proxy.cookies.clear()
            _, _, html = proxy.request("GET", "/login", headers={"X-Forwarded-For": client})
            csrf = re.search(r'name="login_csrf" value="([^"]+)"', html)
            assert csrf
            fields = {"user": "wangli", "password": password, "login_csrf": csrf[1], "next": "/"}
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": client}
            return proxy.request("POST", "/login", form(fields), headers)[0]  # type: ignore[arg-type]

        assert [login_for("10.1.1.1, 10.9.9.9", "guessing") for _ in range(3)] == [401] * 3
        assert login_for("10.9.9.9", PASSWORD) == 429  # what the client claimed first does not count
        assert login_for("10.9.9.8", PASSWORD) == 303


# -- TLS --------------------------------------------------------------------------------------


def test_behind_tls_cookies_are_secure_and_responses_carry_hsts(home: Path) -> None:
    for behind_tls in (False, True):
        if behind_tls:
            with (home / "node.toml").open("a", encoding="utf-8") as f:
                f.write("\n[web]\nsecure_cookies = true\nhsts = true\n")
        with serve(home) as web:
            browser = Browser(web, "127.0.0.1")
            conn = http.client.HTTPConnection(browser.host, browser.port, timeout=30)
            conn.request("GET", "/login?lang=en")
            response = conn.getresponse()
            cookies = response.headers.get_all("Set-Cookie") or []
            assert len(cookies) == 2 and all("HttpOnly" in c and "SameSite=Strict" in c for c in cookies)
            assert all(("Secure" in c) is behind_tls for c in cookies), cookies
            hsts = response.headers.get("Strict-Transport-Security")
            assert hsts == ("max-age=31536000" if behind_tls else None)
            _, headers, _ = browser.request("GET", "/api/v1/status")
            assert headers.get("Strict-Transport-Security") == hsts


# -- the JSON API: bodies it cannot read --------------------------------------------------------


JSON = "application/json"
BODIES = [
    ("30,000 deep", b"[" * 30_000 + b"]" * 30_000, JSON, 400, "E_REQUEST_JSON", "嵌套超过"),
    ("100,000 deep", b"[" * 100_000 + b"]" * 100_000, JSON, 413, "E_REQUEST_TOO_LARGE", ""),
    ("objects deep", b'{"a":' * 20 + b"1" + b"}" * 20, JSON, 400, "E_REQUEST_JSON", "嵌套"),
    ("an array", b"[]", JSON, 400, "E_REQUEST_JSON", "JSON 对象"),
    ("a string", b'"item"', JSON, 400, "E_REQUEST_JSON", "JSON 对象"),
    ("not UTF-8", '{"name": "王丽"}'.encode("gb18030"), JSON, 400, "E_REQUEST_JSON", "UTF-8"),
    ("a key twice", b'{"item": "GA-0001", "item": "GA-0002"}', JSON, 400, "E_REQUEST_JSON", "两次"),
    ("a lone surrogate", b'{"name": "\\ud800"}', JSON, 400, "E_REQUEST_JSON", "代理"),
    ("not JSON", b"{'item': 1}", JSON, 400, "E_REQUEST_JSON", "不是 JSON"),
    ("a form", b"item=GA-0001", "application/x-www-form-urlencoded", 415, "E_REQUEST_TYPE", JSON),
    ("no type", b"{}", "", 415, "E_REQUEST_TYPE", JSON),
    ("latin-1", b"{}", JSON + "; charset=latin-1", 415, "E_REQUEST_TYPE", JSON),
    ("an unknown field", b'{"event": "withdraw", "actor": "x"}', JSON, 400, "E_FIELD_INVALID", "actor"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "body", "content_type", "status", "code", "says"), BODIES)
def test_a_body_the_api_cannot_read_gets_its_code_and_changes_nothing(
    web: Web, token: str, what: str, body: bytes, content_type: str, status: int, code: str, says: str
) -> None:
    before = dump(web.home)
    headers = {"Authorization": f"Bearer {token}"} | ({"Content-Type": content_type} if content_type else {})
    path = (
        "/api/v1/cases/330481104201-20260101-0001/events" if what == "an unknown field" else "/api/v1/cases"
    )
    got, _, text = Browser(web, "127.0.0.1").request("POST", path, body, headers)
    assert got == status, (what, text[:300])
    error = json.loads(text)["error"]
    assert error["code"] == code and says in error["message"], error
    assert re.search(r"[\u4e00-\u9fff]", error["message"]) and "Traceback" not in text
    assert dump(web.home) == before


# -- names a person types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["王\u202e丽", "王\r\n丽", "王\t丽", "王\u200b丽", "王\u2028丽", "\x1b[31m王丽"]
)
def test_a_name_with_a_control_character_is_refused_naming_the_field(web: Web, token: str, name: str) -> None:
    item = first_item(web, token)
    before = dump(web.home)
    status, body = web.api("POST", "/api/v1/cases", token, _intake(item, name))
    assert status == 400 and body["error"]["code"] == "E_FIELD_INVALID"
    assert "姓名中含有不可见的控制字符" in body["error"]["message"]
    assert "the name contains an invisible control character" in body["error"]["message_en"]
    assert login(web, "wangli")[0] == 303
    data = intake_form(web, str(item["code"]), _required(item), name=name, confirm_duplicate="yes")
    status, _, html = web.request("POST", "/intake", data=form(data))
    assert status == 400 and "E_FIELD_INVALID" in html and "姓名中含有不可见的控制字符" in html
    assert dump(web.home) == before


def test_rare_characters_and_compatibility_ideographs_pass_untouched(web: Web, token: str) -> None:
    name = "𠮷\ufa10\U000323af·\u9fff丽\U000f0001"  # U+20BB7, a compatibility ideograph, Ext. H, PUA
    status, body = web.api("POST", "/api/v1/cases", token, _intake(first_item(web, token), name))
    assert status == 201, body
    assert body["case"]["name"] == name
    status, found = web.api("GET", "/api/v1/cases/" + body["case"]["case_no"], token)
    assert found["case"]["name"] == name


def test_a_display_name_with_a_control_character_is_refused(web: Web) -> None:
    assert login(web, "cunguan")[0] == 303
    _, _, html = web.request("GET", "/admin/clerks")
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    before = dump(web.home)
    fields = {
        "csrf": csrf[1],
        "user": "xinren",
        "name": "新\u202e人",
        "password": "a long password",
        "roles": "clerk",
    }
    status, _, html = web.request("POST", "/admin/clerks", data=form(fields))  # type: ignore[arg-type]
    assert status == 400 and "E_FIELD_INVALID" in html and "显示名中含有不可见的控制字符" in html
    assert dump(web.home) == before


def test_a_center_name_with_a_control_character_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    for args in (
        ["node", "init", str(tmp_path / "n"), "--tier", "town", "--code", "330481104",
         "--name", "许村镇\u202e中心", "--parent-code", "330481"],
        ["central", "init", str(tmp_path / "c"), "--code", "330481", "--name", "海宁市\n"  "中心"],
    ):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "tongban", *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 3 and "E_FIELD_INVALID" in done.stderr
        assert "the center's name contains an invisible control character" in done.stderr
    assert list(tmp_path.iterdir()) == []


def _required(item: dict[str, object]) -> list[str]:
    return [str(m["code"]) for m in item["materials"] if m["required"]]  # type: ignore[index, union-attr]


def _intake(item: dict[str, object], name: str) -> dict[str, object]:
    return {
        "item": item["code"], "name": name, "doc_type": "resident_id", "doc_no": GOOD_ID,
        "phone": "13800138000", "materials": _required(item), "confirm_duplicate": True,
    }  # fmt: skip


# -- faults: E_INTERNAL, and error pages that need no store -----------------------------------------


def test_an_unexpected_fault_is_e_internal_with_a_reference_the_log_repeats(web: Web, token: str) -> None:
    status, body = web.api("POST", "/api/v1/cases", token, _intake(first_item(web, token), "王秀英"))
    assert status == 201
    case_no = body["case"]["case_no"]
    conn = sqlite3.connect(web.home / "node.db")
    with conn:  # a damaged row that the store itself does not notice
        conn.execute("UPDATE cases SET materials = '[' WHERE case_no = ?", (case_no,))
    conn.close()
    before = dump(web.home)
    assert login(web, "wangli")[0] == 303
    status, _, html = web.request("GET", f"/cases/{case_no}")
    assert status == 500 and _code(html) == "E_INTERNAL" and "Traceback" not in html
    page_ref = re.search(r"错误编号 ([0-9a-f]{8})", html)
    assert page_ref and "系统内部错误，已记录" in html and "An internal error occurred" in html
    status, _, text = web.request(
        "GET", f"/api/v1/cases/{case_no}", headers={"Authorization": f"Bearer {token}"}
    )
    error = json.loads(text)["error"]
    assert status == 500 and error["code"] == "E_INTERNAL" and "Traceback" not in text
    api_ref = re.search(r"reference ([0-9a-f]{8})", error["detail"])
    assert api_ref and api_ref[1] != page_ref[1]
    log = (web.home / "web.log").read_text(encoding="utf-8")
    for ref in (page_ref[1], api_ref[1]):
        assert re.search(rf"E_INTERNAL {ref}: GET /.*\nTraceback", log), log[-2000:]
    assert dump(web.home) == before


def _damage_table(home: Path, table: str) -> None:
    """Overwrite the root page of ``table`` in the store file, as a failing disk would."""
    conn = sqlite3.connect(f"file:{home / 'node.db'}?mode=ro", uri=True)
    try:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    finally:
        conn.close()
    with (home / "node.db").open("r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xa5" * size)


def test_an_error_page_is_shown_when_the_store_cannot_be_read_for_the_frame(home: Path, token: str) -> None:
    conn = sqlite3.connect(home / "node.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with serve(home) as web:
        assert login(web, "wangli")[0] == 303
        _damage_table(home, "link_state")  # what the sync bar of every page shows
        status, _, html = web.request("GET", "/")
        assert status == 500 and _code(html) == "E_STORE_CORRUPT" and "Traceback" not in html
        assert "新阳村便民服务中心" in html and "数据库文件损坏" in html  # the frame, from the configuration
        status, _, text = web.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert status == 500 and json.loads(text)["error"]["code"] == "E_STORE_CORRUPT"


@contextmanager
def _listening(home: Path) -> Iterator[str]:
    """The web service, once its port accepts connections: no request has reached it yet."""
    port = free_port()
    log = (home / "web.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tongban.run", str(home), "--only", "web", "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def accepts() -> bool:
        assert proc.poll() is None, (home / "web.log").read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(accepts, "the web service to listen", 30, 0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_a_store_that_cannot_be_opened_any_more_gets_the_kits_own_page(home: Path, token: str) -> None:
    with _listening(home) as url:
        with (home / "node.db").open("r+b") as f:  # after the first check, before any request
            f.write(b"this is not a database")
        web = Web(url, home, None)  # type: ignore[arg-type]
        status, _, html = web.request("GET", "/login")
        assert status == 500 and 'id="error"><code>E_STORE_CORRUPT</code>' in html and "Traceback" not in html
        assert "数据库文件损坏" in html and "The database file is damaged" in html
        status, _, text = web.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert status == 500 and json.loads(text)["error"]["code"] == "E_STORE_CORRUPT"


# -- a full disk and a read-only store at the login form ----------------------------------------


def test_the_login_form_says_the_disk_is_full_or_the_store_read_only_and_nothing_changes(
    city: Path, tmp_path: Path
) -> None:
    """A login writes a session: the form shows the store's code instead (a real tmpfs,
    filled, then remounted read-only), and nothing stored changes."""
    _need_root()
    disk = tmp_path / "disk"
    disk.mkdir()
    size = sum(p.stat().st_size for p in (city / VILLAGE).rglob("*") if p.is_file())
    with _mounted("-t", "tmpfs", "-o", f"size={size + 4 * 1024 * 1024}", "tmpfs", str(disk)):
        home = disk / VILLAGE
        shutil.copytree(city / VILLAGE, home)
        with serve(home, log_file=tmp_path / "web.log") as web:
            clerk = Browser(web, "127.0.0.7")
            clerk.request("GET", "/login")  # the form is read before the disk fills
            before = dump(home)
            filler = disk / "filler"
            with filler.open("wb") as f, contextlib.suppress(OSError):  # every byte it has left
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            status, html, _ = clerk.login("wangli", PASSWORD)
            assert (status, _code(html)) == (507, "E_STORE_FULL") and 'id="login"' in html
            assert "磁盘已满" in html and "Traceback" not in html
            filler.unlink()
            assert dump(home) == before
        conn = sqlite3.connect(home / "node.db")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        before = dump(home)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with serve(home, log_file=tmp_path / "web-ro.log") as web:
            status, html, _ = Browser(web, "127.0.0.7").login("wangli", PASSWORD)
            assert (status, _code(html)) == (503, "E_STORE_READONLY") and 'id="login"' in html
            assert "只能读取、不能写入" in html and "readonly database" not in html.split("<details")[0]
        assert dump(home, immutable=True) == before
