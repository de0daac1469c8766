"""Scanned pages on the clerk's screens, through the real web service of a node.

A page comes with the intake form (``multipart/form-data``), is stripped and kept; the case
page shows it; the file route serves it only to an account of the node with the headers a
page needs (a PDF always as a download). A bad file is refused with its code in Chinese,
nothing stored and the clerk's input kept. A node that lists a page it does not hold yet
shows 传输中.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import SystemClock
from node.web.uploads import MAX_UPLOAD_REQUEST
from tests.helpers import TOWN, VILLAGE, relay
from tests.integration.test_web import first_item, intake_form, snapshot
from tests.integration.webnode import Web, build_city, csrf_of, device_token, login, multipart, serve
from tests.scanfiles import PAGES, PLAIN_PDF, pdf, phone_photo
from web.render import SECURITY_HEADERS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city(tmp_path_factory.mktemp("city")).root


@pytest.fixture(scope="module")
def village(city: Path) -> Iterator[Web]:
    with serve(city / VILLAGE) as web:
        yield web


TOKENS: dict[Path, str] = {}


def held(home: Path) -> list[Path]:
    root = home / "files"
    return (
        sorted(p for p in root.rglob("*") if p.is_file() and "partial" not in p.parts)
        if root.exists()
        else []
    )


def take_in(
    village: Web, files: list[tuple[str, str, str, bytes]], **fields: str
) -> tuple[int, dict[str, str], str, str]:
    """An intake of the first proxy item with ``files``; status, headers, page, item code."""
    if village.home not in TOKENS:
        TOKENS[village.home] = device_token(village.home, "kiosk-files")
    item = first_item(village, TOKENS[village.home])
    required = [m["code"] for m in item["materials"] if m["required"]]  # type: ignore[index,union-attr]
    assert login(village, "wangli")[0] == 303
    data = intake_form(village, str(item["code"]), required, confirm_duplicate="yes", **fields)
    body, headers = multipart(
        data, [(f"file_{required[0] if m == '*' else m}", n, k, b) for m, n, k, b in files]
    )
    status, got, html = village.request("POST", "/intake", data=body, headers=headers)
    return status, got, html, str(item["code"])


def test_intake_with_a_photo_and_a_pdf_shows_and_serves_them(city: Path, village: Web) -> None:
    photo = phone_photo()
    status, headers, html, _ = take_in(
        village, [("*", "身份证.jpg", "image/jpeg", photo), ("*", "scan.pdf", "application/pdf", PLAIN_PDF)]
    )
    assert status == 303, html
    case_no = headers["Location"].split("/")[2]
    status, _, page = village.request("GET", f"/cases/{case_no}")
    assert status == 200 and 'id="files"' in page
    urls = re.findall(rf"/cases/{case_no}/files/([0-9a-f]{{64}})", page)
    shas = list(dict.fromkeys(urls))
    assert len(shas) == 2, page
    assert 'class="thumb"' in page and 'class="pdf"' in page and "第1页" in page
    image_sha, pdf_sha = shas
    status, got, _ = village.request("GET", f"/cases/{case_no}/files/{image_sha}")
    assert status == 200
    assert got["Content-Type"] == "image/jpeg"
    assert got["Content-Disposition"].startswith("inline")
    assert got["X-Content-Type-Options"] == "nosniff"
    assert got["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert got["Cache-Control"].startswith("private")
    kept = (city / VILLAGE / "files" / image_sha[:2] / image_sha).read_bytes()
    assert kept[:2] == b"\xff\xd8" and b"PhoneMaker" not in kept and b"GPS" not in kept
    status, got, _ = village.request("GET", f"/cases/{case_no}/files/{pdf_sha}")
    assert status == 200 and got["Content-Type"] == "application/pdf"
    assert got["Content-Disposition"].startswith("attachment") and got["Content-Disposition"].endswith(
        '.pdf"'
    )
    assert got["X-Content-Type-Options"] == "nosniff" and got["Cache-Control"].startswith("private")

    # anonymous, a session of another node, a page of another case: refused
    village.jar.clear()
    status, _, body = village.request("GET", f"/cases/{case_no}/files/{image_sha}")
    assert status == 403 and "E_FILE_FORBIDDEN" in body
    clock = SystemClock()
    relay(city / VILLAGE, city / TOWN, clock, up=True)  # type: ignore[arg-type]
    with serve(city / TOWN) as town:
        assert login(town, "shenpi")[0] == 303
        cookie = "; ".join(f"{c.name}={c.value}" for c in town.jar)
        status, _, body = village.request(
            "GET", f"/cases/{case_no}/files/{image_sha}", headers={"Cookie": cookie}
        )
        assert status == 403 and "E_FILE_FORBIDDEN" in body
        # the town holds the records, not yet the pages: 传输中, never a broken image
        status, _, page = town.request("GET", f"/cases/{case_no}")
        assert status == 200 and "传输中" in page and 'class="thumb"' not in page
        status, _, body = town.request("GET", f"/cases/{case_no}/files/{image_sha}")
        assert status == 404 and "E_FILE_MISSING" in body
    assert login(village, "wangli")[0] == 303
    status, _, body = village.request("GET", f"/cases/{VILLAGE}-0000-000000/files/{image_sha}")
    assert status == 403 and "E_FILE_FORBIDDEN" in body


@pytest.mark.parametrize(
    ("name", "kind", "data", "code"),
    [
        ("身份证.jpg", "image/jpeg", b"this is no picture at all", "E_FILE_TYPE"),
        ("身份证.pdf", "application/pdf", phone_photo(), "E_FILE_TYPE_MISMATCH"),
        ("身份证.jpg", "image/jpeg", phone_photo()[:3000], "E_FILE_DAMAGED"),
    ],
)
def test_a_bad_file_is_refused_on_the_form_and_nothing_is_stored(
    village: Web, name: str, kind: str, data: bytes, code: str
) -> None:
    assert login(village, "wangli")[0] == 303
    before, files_before = snapshot(village.home), held(village.home)
    status, _, html, _ = take_in(village, [("*", name, kind, data)], notes="复印件已核对")
    assert status == 400, html[:300]
    assert f"<code>{code}</code>" in html and 'id="intake-form"' in html
    assert re.search(r"[\u4e00-\u9fff]", html.split(f"<code>{code}</code>")[1][:80])  # its Chinese text
    assert "复印件已核对" in html and "王秀英" in html  # the clerk's input kept
    assert snapshot(village.home)[:5] == before[:5] and held(village.home) == files_before


def test_a_file_over_the_upload_bound_is_refused(village: Web) -> None:
    before, files_before = snapshot(village.home), held(village.home)
    big = b"\xff\xd8\xff" + bytes(20 * 1024 * 1024)
    status, _, html, _ = take_in(village, [("*", "big.jpg", "image/jpeg", big)])
    assert status == 413 and "E_FILE_TOO_LARGE" in html
    assert snapshot(village.home)[:5] == before[:5] and held(village.home) == files_before


def test_an_intake_without_files_still_works_as_multipart(village: Web) -> None:
    status, headers, html, _ = take_in(village, [], phone="13900000001")
    assert status == 303, html[:300]
    _, _, page = village.request("GET", headers["Location"].rsplit("/", 1)[0])
    assert 'id="files"' not in page


def test_the_supplements_pages_and_the_decision_letter_come_with_their_steps(
    city: Path, village: Web
) -> None:
    status, headers, html, _ = take_in(village, [], name="李四", doc_no="330481197501010011")
    assert status == 303, html[:300]
    case_no = headers["Location"].split("/")[2]
    clock = SystemClock()
    relay(city / VILLAGE, city / TOWN, clock, up=True)  # type: ignore[arg-type]
    with serve(city / TOWN) as town:
        assert login(town, "shenpi")[0] == 303
        body, kind = multipart(
            {"csrf": csrf_of(town, f"/cases/{case_no}"), "event": "request_supplement", "missing": "户口簿"},
            [],
        )
        assert town.request("POST", f"/cases/{case_no}/step", data=body, headers=kind)[0] == 303
    relay(city / TOWN, city / VILLAGE, clock)  # type: ignore[arg-type]

    assert login(village, "wangli")[0] == 303
    _, _, page = village.request("GET", f"/cases/{case_no}")
    assert 'id="step-supply"' in page and 'enctype="multipart/form-data"' in page
    material = re.findall(r'name="file_([^"]+)"', page.split('id="step-supply"')[1])[0]
    photo = ("file_" + material, "户口簿.jpg", "image/jpeg", phone_photo())
    body, kind = multipart({"csrf": csrf_of(village, f"/cases/{case_no}"), "event": "supply"}, [photo])
    status, _, page = village.request("POST", f"/cases/{case_no}/step", data=body, headers=kind)
    assert status == 303, page[:300]
    _, _, page = village.request("GET", f"/cases/{case_no}")
    assert f'data-material="{material}"' in page and "补正材料已收" in page.split('id="files"')[1]

    relay(city / VILLAGE, city / TOWN, clock, up=True)  # type: ignore[arg-type]
    with serve(city / TOWN) as town:
        assert login(town, "shenpi")[0] == 303
        before = snapshot(town.home)
        bad = ("file_decision", "决定书.pdf", "application/pdf", b"%PDF-1.4 not really")
        body, kind = multipart(
            {"csrf": csrf_of(town, f"/cases/{case_no}"), "event": "approve", "reason": "同意"}, [bad]
        )
        status, _, page = town.request("POST", f"/cases/{case_no}/step", data=body, headers=kind)
        assert status == 400 and "<code>E_FILE_DAMAGED</code>" in page.split('id="step-approve"')[1]
        assert 'value="同意"' in page and snapshot(town.home)[:5] == before[:5]
        letter = (
            "file_decision",
            "决定书.pdf",
            "application/pdf",
            pdf(b"<< /Type /Catalog /Pages 2 0 R >>", *PAGES, b"(letter)"),
        )
        body, kind = multipart({"csrf": csrf_of(town, f"/cases/{case_no}"), "event": "approve"}, [letter])
        assert town.request("POST", f"/cases/{case_no}/step", data=body, headers=kind)[0] == 303
        _, _, page = town.request("GET", f"/cases/{case_no}")
        decision = page.split('data-material="decision"')[1].split("</section>")[0]
        assert "决定书" in decision and 'class="pdf"' in decision
        sha = re.findall(r"/files/([0-9a-f]{64})", decision)[0]
        status, got, _ = town.request("GET", f"/cases/{case_no}/files/{sha}")
        assert status == 200 and got["Content-Disposition"].startswith("attachment")
    relay(city / TOWN, city / VILLAGE, clock)  # type: ignore[arg-type]
    _, _, page = village.request("GET", f"/cases/{case_no}")
    decision = page.split('data-material="decision"')[1].split("</section>")[0]
    assert "决定书" in decision and "传输中" in decision  # the record came by relay, the file not yet


def test_a_form_over_the_request_bound_is_refused_before_it_is_read(village: Web) -> None:
    assert login(village, "wangli")[0] == 303
    body, kind = multipart({"csrf": csrf_of(village, "/intake"), "item": "x"}, [])
    status, _, html = village.request(
        "POST", "/intake", data=body, headers={**kind, "Content-Length": str(MAX_UPLOAD_REQUEST + 1)}
    )
    assert status == 413 and "E_REQUEST_TOO_LARGE" in html


def test_the_preview_script_is_served_by_the_node(village: Web) -> None:
    status, got, text = village.request("GET", "/static/scan.js")
    assert status == 200 and got["Content-Type"].startswith("text/javascript") and "FileReader" in text
    village.jar.clear()
    assert login(village, "wangli")[0] == 303
    _, got, page = village.request("GET", "/intake")
    assert '<script src="/static/scan.js" defer></script>' in page
    assert "script-src 'self'" in got["Content-Security-Policy"] and "<script>" not in page
