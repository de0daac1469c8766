"""The node's OpenAPI document states every constraint the server enforces, and holds.

Two ways: bodies and queries chosen by hand — the three a property-based run once found
refused although the document allowed them (an empty name, an empty ID number, a blank
search) among them — are valid by the document exactly when the server takes their shape;
and schemathesis (a property-based tester made for OpenAPI) runs a few hundred generated
requests against a live node with a device token: no server error, no response that does
not match the document, no request the document forbids taken. What no schema can say
(a check character, a birth date, an item this node is not granted, a case it does not
hold) is the one refusal the document does not predict; its code is in the error body the
document describes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from node.web.openapi import document
from tests.helpers import VILLAGE
from tests.integration.webnode import GOOD_ID, Web, build_city, device_token, serve

pytestmark = pytest.mark.slow

ST = Path(sys.executable).with_name("st")
SHAPE_CODES = {
    "E_FIELD_REQUIRED", "E_FIELD_TOO_LONG", "E_FIELD_INVALID", "E_PHONE_INVALID", "E_ID_TYPE_UNKNOWN",
    "E_REQUEST_JSON",
}  # fmt: skip
"""The codes of a refused shape; the others (E_ID_CHECKSUM, E_GRANT_ITEM …) judge the content."""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city(tmp_path_factory.mktemp("city")).root / VILLAGE


@pytest.fixture(scope="module")
def token(home: Path) -> str:
    return device_token(home)


@pytest.fixture(scope="module")
def web(home: Path) -> Iterator[Web]:
    with serve(home) as served:
        yield served


def _schema(name: str) -> Any:
    return jsonschema_rs.validator_for(document()["components"]["schemas"][name])


def _item(web: Web, token: str) -> dict[str, Any]:
    status, body = web.api("GET", "/api/v1/items", token)
    assert status == 200
    return next(i for i in body["items"] if i["verdict"] == "ok")


def _good(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "item": item["code"],
        "name": "王秀英",
        "doc_type": "resident_id",
        "doc_no": GOOD_ID,
        "phone": "13800138000",
        "materials": [m["code"] for m in item["materials"] if m["required"]],
        "confirm_duplicate": True,
    }


CHANGES: list[tuple[str, dict[str, Any], bool]] = [
    ("as a clerk fills it in", {}, True),
    ("an empty name", {"name": ""}, False),
    ("a name of spaces", {"name": "   "}, False),
    ("a name with U+202E", {"name": "王\u202e丽"}, False),
    ("a name with a line break", {"name": "王\n丽"}, False),
    ("a rare character and a compatibility ideograph", {"name": "𠮷\ufa10"}, True),
    ("a name of 50 characters", {"name": "王" * 50}, True),
    ("a name of 51 characters", {"name": "王" * 51}, False),
    ("an empty ID number", {"doc_no": ""}, False),
    ("an unknown document type", {"doc_type": "passport"}, False),
    ("a landline", {"phone": "0573-87654321"}, True),
    ("a phone number too short", {"phone": "1380013"}, False),
    ("notes with a line break", {"notes": "第一行\n第二行"}, True),
    ("notes with an escape character", {"notes": "\x1b[31m"}, False),
    ("a material code in capitals", {"materials": ["ID_CARD"]}, False),
    ("confirm_duplicate as text", {"confirm_duplicate": "yes"}, False),
    ("a field the document does not name", {"priority": 1}, False),
    ("no item", {"item": None}, False),
]


@pytest.mark.parametrize(("what", "change", "valid"), CHANGES, ids=[c[0] for c in CHANGES])
def test_an_intake_is_valid_by_the_document_exactly_when_the_server_takes_its_shape(
    web: Web, token: str, what: str, change: dict[str, Any], valid: bool
) -> None:
    body = {k: v for k, v in (_good(_item(web, token)) | change).items() if v is not None}
    assert _schema("Intake").is_valid(body) is valid, what
    status, answer = web.api("POST", "/api/v1/notices", token, body)
    code = answer.get("error", {}).get("code")
    assert (code not in SHAPE_CODES) is valid, (what, status, answer)


@pytest.mark.parametrize(
    ("q", "valid"),
    [("秀英", True), (GOOD_ID, True), ("", False), ("   ", False), ("x" * 41, False), ("a\x1bb", False)],
)
def test_the_search_query_is_valid_by_the_document_exactly_when_the_server_takes_it(
    web: Web, token: str, q: str, valid: bool
) -> None:
    params = document()["paths"]["/api/v1/cases"]["get"]["parameters"]
    assert [p["name"] for p in params] == ["q", "state", "since", "until"]
    param = params[0]
    assert param["required"] is True
    assert jsonschema_rs.validator_for(param["schema"]).is_valid(q) is valid
    status, answer = web.api("GET", "/api/v1/cases?q=" + urllib.parse.quote(q), token)
    assert (status == 200) is valid, (q, status, answer)


def test_an_event_is_valid_by_the_document_exactly_when_the_server_takes_its_shape(
    web: Web, token: str
) -> None:
    status, taken = web.api("POST", "/api/v1/cases", token, _good(_item(web, token)))
    assert status == 201, taken
    path = f"/api/v1/cases/{taken['case']['case_no']}/events"
    for body, valid in (
        ({"event": "rate"}, False),  # a rating needs its stars
        ({"event": "rate", "rating": 6}, False),
        ({"event": "deliver"}, False),  # a delivery needs its way
        ({"event": "approve"}, False),  # decisions are an approver's, on the node's screen
        ({"event": "withdraw", "reason": "申请人撤回"}, True),
    ):
        assert _schema("Event").is_valid(body) is valid, body
        status, answer = web.api("POST", path, token, body)
        assert (status == 200) is valid, (body, status, answer)


def test_schemathesis_finds_no_server_error_and_no_response_the_document_does_not_describe(
    web: Web, token: str
) -> None:
    """What it runs: every operation, the examples, coverage and fuzzing phases, positive and
    negative data, 25 examples each, deterministic; every check but positive data acceptance
    (which would count E_ID_CHECKSUM and E_GRANT_ITEM as the document's fault)."""
    started = time.monotonic()
    run = subprocess.run(
        [
            str(ST), "run", f"{web.url}/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", "25",
            "--exclude-checks", "positive_data_acceptance",
            "--generation-deterministic",
            "--workers", "1", "--request-timeout", "10",
        ],
        capture_output=True, text=True, timeout=120, cwd=web.home.parent,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    count = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert count and count[1] == count[2], run.stdout[-3000:]
    assert 200 <= int(count[1]) <= 2000 and seconds < 60, (count[1], seconds)
    log = (web.home / "web.log").read_text(encoding="utf-8")
    assert "E_INTERNAL" not in log and "Traceback" not in log
