"""A town admin's delegation page: the villages and grants by name, a sub-grant issued and
revoked from the page, and bad input refused in Chinese with nothing stored changed."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import TOWN, VILLAGE
from tests.integration.webnode import Web, build_city, csrf_of, form, login, serve


def issued_rows(html: str) -> int:
    return len(re.findall(r'name="grant" value="[0-9a-f]+"', html))


def parent_of(html: str) -> str:
    found = re.search(r'name="parent" value="([0-9a-f]+)"', html)
    assert found, html[:500]
    return found[1]


def post(town: Web, path: str, data: dict[str, str | list[str]]) -> tuple[int, str]:
    status, _, body = town.request(
        "POST", path, data=form({**data, "csrf": csrf_of(town, "/admin/delegation")})
    )
    return status, body


def test_a_town_admin_delegates_and_revokes_by_name(tmp_path: Path) -> None:
    net = build_city(tmp_path)
    with serve(net.node_dir(TOWN)) as town:
        assert login(town, "guanli")[0] == 303
        status, _, page = town.request("GET", "/admin/delegation")
        assert status == 200
        assert "新阳村便民服务中心" in page  # the village by name, in the list and the picker
        before = issued_rows(page)
        parent = parent_of(page)

        # bad input: days that are not a number, a grant id that is not hex, a village not ours
        for bad in ({"valid_days": "三十"}, {"parent": "zz"}, {"village": "330481108201"}):
            data: dict[str, str | list[str]] = {
                "parent": parent, "items": ["GA-0001"], "village": VILLAGE, "valid_days": "10", **bad,
            }  # fmt: skip
            status, body = post(town, "/admin/delegation", data)
            assert status in (400, 403, 409, 422), (bad, status)
            shown = re.search(r'id="error">(.*?)<details', body, re.S)  # the English is one click away
            assert shown and re.search(r"E_[A-Z_]+", shown[1]), bad
            assert not re.search(r"[A-Za-z]{3,}", re.sub(r"</?code>|E_[A-Z_]+", "", shown[1])), shown[1]
        assert issued_rows(town.request("GET", "/admin/delegation")[2]) == before  # nothing stored

        status, _ = post(
            town,
            "/admin/delegation",
            {"parent": parent, "items": ["GA-0001"], "village": VILLAGE, "valid_days": "10"},
        )
        assert status == 303
        page = town.request("GET", "/admin/delegation")[2]
        assert issued_rows(page) == before + 1
        grant = re.findall(r'name="grant" value="([0-9a-f]+)"', page)[-1]

        status, body = post(town, "/admin/delegation/revoke", {"grant": grant, "reason": ""})
        assert status in (400, 422) and "E_FIELD_REQUIRED" in body  # a revocation says why
        status, _ = post(town, "/admin/delegation/revoke", {"grant": grant, "reason": "村中心撤并"})
        assert status == 303
        assert issued_rows(town.request("GET", "/admin/delegation")[2]) == before
