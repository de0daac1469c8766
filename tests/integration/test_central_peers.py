"""The peer cities page of central's operator web service, on the real nameko http service.

The delegation administrator proposes an agreement with another city, compares the root
fingerprint the page shows, confirms it by typing the fingerprint back, renews it with a
narrower scope, and revokes it after a confirmation step. Every refusal shows its code and
its Chinese text, and changes nothing stored (the log, the projections, the proposals); an
auditor reads the page without a form, and the other roles may not see it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from central import peers
from central.authority import open_central
from core.clock import FixedClock, SystemClock
from core.federation import DAY
from sync.record.keys import fingerprint
from tests.integration.webcentral import build_central, login, post, snapshot
from tests.integration.webnode import Web, serve

pytestmark = pytest.mark.slow

QINGPU = "cn-310118"
ITEMS = "QP-HJ-001:7\nQP-HJ-002:7\n"


def root_of(name: str) -> bytes:
    """A peer city's root key (any 32 bytes: only its fingerprint is compared here)."""
    return hashlib.sha256(name.encode()).digest()


LAPSED = "cn-320581"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Central with its operators, and one agreement confirmed 40 days ago, lapsed since."""
    home = build_central(tmp_path_factory.mktemp("central-peers")).central_dir
    with open_central(home, FixedClock(t=SystemClock().now() - 40 * DAY)) as central:
        scope = peers.scope_of([("CS-0001", 2)], ["joint_part"], ["decide"])
        peers.propose(central, peer=LAPSED, name="常熟市", root_pk=root_of(LAPSED), scope=scope)
        peers.confirm(central, LAPSED, fingerprint(root_of(LAPSED)))
    return home


@pytest.fixture(scope="module")
def web(home: Path) -> Iterator[Web]:
    with serve(home, probe="/login") as running:
        yield running


def stored(home: Path) -> tuple[object, ...]:
    """What a refusal must leave as it was: the web tests' snapshot, the agreements, the proposals."""
    conn = sqlite3.connect(home / "central.db")
    try:
        peer_tables = tuple(
            conn.execute(sql).fetchone()[0]
            for sql in (
                "SELECT count(*) FROM peer_certs",
                "SELECT count(*) FROM peer_revocations",
                "SELECT group_concat(peer || valid_days || scope)"
                " FROM (SELECT * FROM peer_proposals ORDER BY peer)",
            )
        )
    finally:
        conn.close()
    return snapshot(home) + peer_tables


def page(web: Web, path: str = "/peers") -> str:
    status, _, html = web.request("GET", path)
    assert status == 200, html[:500]
    return html


def row(html: str, net: str, kind: str = "peer") -> str:
    """The table row of ``net`` (a peer or a proposal)."""
    found = re.search(rf'<tr class="{kind}[^"]*" data-net="{re.escape(net)}">(.*?)</tr>', html, re.S)
    assert found, f"no {kind} row for {net}"
    return found[1]


def scope_in(row_html: str) -> str:
    """The scope cell of a row (its forms have every mode and role as a box to tick)."""
    found = re.search(r'<ul class="scope">(.*?)</ul>', row_html, re.S)
    assert found
    return found[1]


def proposal(net: str, name: str) -> dict[str, str | list[str]]:
    """The propose form as an operator fills it in for ``net``."""
    return {
        "net": net, "name": name, "root_pk": root_of(net).hex(), "items": ITEMS,
        "modes": ["proxy_intake"], "roles": ["accept", "decide"], "valid_days": "30",
    }  # fmt: skip


def propose(web: Web, net: str, name: str) -> tuple[int, str]:
    return post(web, "/peers/propose", proposal(net, name), csrf=csrf(web))


def csrf(web: Web) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page(web))
    assert found
    return found[1]


def agree(web: Web, net: str, name: str) -> None:
    assert propose(web, net, name)[0] == 303
    status, _ = post(web, "/peers/confirm", {"net": net, "fingerprint": fingerprint(root_of(net))}, csrf(web))
    assert status == 303


def test_an_operator_proposes_compares_the_fingerprint_and_confirms(web: Web, home: Path) -> None:
    login(web, "shouquan")
    html = page(web)
    assert 'id="nav-peers"' in html and "跨市协作" in html
    with open_central(home, SystemClock()) as central:
        own = peers.own_root(central)
    assert fingerprint(own) in html and own.hex() in html  # what this city's operator reads out

    before = stored(home)
    status, headers, _ = web.request(
        "POST",
        "/peers/propose",
        data=(
            f"csrf={csrf(web)}&net={QINGPU}&name=%E4%B8%8A%E6%B5%B7%E5%B8%82%E9%9D%92%E6%B5%A6%E5%8C%BA"
            f"&root_pk={root_of(QINGPU).hex()}&items=QP-HJ-001%3A7%0D%0AQP-HJ-002%3A7"
            "&modes=proxy_intake&roles=accept&roles=decide&valid_days=30"
        ).encode(),
    )
    assert status == 303 and headers["Location"] == f"/peers?proposed={QINGPU}"
    html = page(web, headers["Location"])
    compare = re.search(r'<section class="card compare" id="compare">(.*?)</section>', html, re.S)
    assert compare and fingerprint(root_of(QINGPU)) in compare[1] and "上海市青浦区" in compare[1]
    assert "请核对上海市青浦区的根密钥指纹" in compare[1]
    assert "QP-HJ-002" in row(html, QINGPU, "proposal")
    assert stored(home)[:2] == before[:2]  # a proposal is no record: nothing is signed

    # A fingerprint misheard: refused in Chinese, nothing signed, the proposal still waits.
    waiting = stored(home)
    status, body = post(web, "/peers/confirm", {"net": QINGPU, "fingerprint": "0000:1111:2222:3333:4444"})
    assert status == 403 and "E_PEER_FINGERPRINT" in body
    assert "输入的指纹与对方根密钥的指纹不符" in body
    assert stored(home) == waiting

    typed = fingerprint(root_of(QINGPU)).upper().replace(":", " ")  # as an operator may type it
    status, headers, _ = web.request(
        "POST", "/peers/confirm", data=f"csrf={csrf(web)}&net={QINGPU}&fingerprint={typed}".encode()
    )
    assert status == 303
    html = page(web, headers["Location"])
    assert "已确认与上海市青浦区的协议，签发第1号互认证书" in html
    peer = row(html, QINGPU)
    assert peer.index("上海市青浦区") < peer.index(QINGPU)  # the name first, the net second
    assert fingerprint(root_of(QINGPU)) in peer and "#1" in peer and "在效" in peer
    scope = scope_in(peer)
    assert "代收代办" in scope and "受理、审批" in scope and "对方清单第7版" in scope and "自动续期" in peer
    assert f'data-net="{QINGPU}"' not in html.split('id="proposals"')[1]  # no longer a proposal


def test_renewal_narrows_the_scope_and_revocation_needs_its_confirmation(web: Web, home: Path) -> None:
    net, name = "cn-320509", "苏州市吴江区"
    login(web, "shouquan")
    agree(web, net, name)
    narrower = {
        "net": net,
        "items": "QP-HJ-001:8",
        "modes": ["joint_part"],
        "roles": ["deliver"],
        "valid_days": "20",
    }
    status, _ = post(web, "/peers/renew", narrower)
    assert status == 303
    peer = row(page(web), net)
    scope = scope_in(peer)
    assert "#2" in peer and "QP-HJ-002" not in scope and "对方清单第8版" in scope
    assert "多地联办" in scope and "送达" in scope and "代收代办" not in scope and "受理" not in scope
    status, _ = post(web, "/peers/renew", {"net": net, "items": "", "valid_days": "30"})  # the scope kept
    assert status == 303
    peer = row(page(web), net)
    assert "#3" in peer and scope_in(peer) == scope

    assert f'<tr class="manage" data-net="{net}">' in page(web)
    before = stored(home)
    status, body = post(web, "/peers/revoke", {"net": net, "reason": "协议到期不再续签"})  # no box ticked
    assert status == 400 and "E_FIELD_REQUIRED" in body and "请勾选确认" in body
    status, body = post(web, "/peers/revoke", {"net": net, "reason": " ", "confirm": "yes"})
    assert status == 400 and "E_FIELD_REQUIRED" in body and "请填写撤销原因" in body
    assert stored(home) == before

    status, headers, _ = web.request(
        "POST",
        "/peers/revoke",
        data=f"csrf={csrf(web)}&net={net}&reason=%E5%8D%8F%E8%AE%AE%E7%BB%88%E6%AD%A2&confirm=yes".encode(),
    )
    assert status == 303
    html = page(web, headers["Location"])
    assert "与苏州市吴江区的协议已撤销" in html
    peer = row(html, net)
    assert "已撤销" in peer and "协议终止" in peer and "自动续期" not in peer
    assert f'<tr class="manage" data-net="{net}">' not in html  # its renew and revoke forms are gone

    before = stored(home)
    status, body = post(web, "/peers/renew", {"net": net, "valid_days": "30"})
    assert status == 403 and "E_PEER_REVOKED" in body and "须重新提出并确认新的协议" in body
    status, body = post(web, "/peers/revoke", {"net": net, "reason": "again", "confirm": "yes"})
    assert status == 403 and "E_PEER_REVOKED" in body
    assert stored(home) == before


def test_each_refusal_shows_its_code_in_chinese_and_changes_nothing(web: Web, home: Path) -> None:
    login(web, "shouquan")
    before = stored(home)
    cases = [
        ({"root_pk": "abcd"}, "E_FIELD_INVALID", "根密钥应为64位十六进制数"),
        ({"items": "QP-HJ-001"}, "E_FIELD_INVALID", "每个事项应写成“事项编码:清单版本”"),
        ({"items": ""}, "E_FIELD_INVALID", "请至少填写一个事项"),
        ({"modes": []}, "E_FIELD_INVALID", "请选择办理方式：代收代办或多地联办"),
        ({"roles": []}, "E_FIELD_INVALID", "请选择环节：受理、审批或送达"),
        ({"valid_days": "31"}, "E_FIELD_INVALID", "有效天数应为1至30天"),
        ({"valid_days": "a month"}, "E_FIELD_INVALID", "有效天数应为数字"),
        ({"net": "cn-330481"}, "E_FIELD_INVALID", "不能与本市自身签订互认协议"),
        ({"modes": ["every_mode"]}, "E_FIELD_INVALID", "请选择办理方式：代收代办或多地联办"),
    ]
    for changes, code, text in cases:
        status, body = post(web, "/peers/propose", {**proposal("cn-340100", "合肥市"), **changes})
        assert status == 400 and code in body and text in body, (changes, body[:2000])
        assert 'value="合肥市"' in body  # what the operator typed is still in the form
    status, body = post(web, "/peers/confirm", {"net": "cn-999999", "fingerprint": "0000"})
    assert status == 403 and "E_PEER_UNKNOWN" in body and "本市与该城市没有互认协议" in body
    status, body = post(web, "/peers/renew", {"net": "cn-999999", "valid_days": "30"})
    assert status == 403 and "E_PEER_UNKNOWN" in body
    status, body = post(web, "/peers/revoke", {"net": "cn-999999", "reason": "x", "confirm": "yes"})
    assert status == 403 and "E_PEER_UNKNOWN" in body
    assert stored(home) == before


def test_only_the_delegation_administrator_manages_agreements(web: Web, home: Path) -> None:
    net = "cn-330100"
    login(web, "shouquan")
    agree(web, net, "杭州市")
    assert propose(web, "cn-330200", "宁波市")[0] == 303  # a proposal waiting
    forged = stored(home)
    status, body = post(web, "/peers/revoke", {"net": net, "reason": "x", "confirm": "yes"}, csrf="forged")
    assert status == 403 and "E_CSRF" in body
    assert stored(home) == forged

    login(web, "shenji")  # the auditor reads, without a form
    html = page(web)
    assert "杭州市" in html and "宁波市" in html and 'id="nav-peers"' in html
    assert 'id="propose-form"' not in html and "renew-peer" not in html and "confirm-peer" not in html
    before = stored(home)
    for path, data in (
        ("/peers/propose", {"net": "cn-330300", "name": "温州市", "root_pk": root_of("x").hex()}),
        ("/peers/confirm", {"net": "cn-330200", "fingerprint": fingerprint(root_of("cn-330200"))}),
        ("/peers/renew", {"net": net, "valid_days": "30"}),
        ("/peers/revoke", {"net": net, "reason": "x", "confirm": "yes"}),
    ):
        status, body = post(web, path, data, csrf=csrf(web))
        assert status == 403 and "E_ROLE" in body, path
    for user in ("shixiang", "chakan"):  # the catalog administrator and the viewer
        login(web, user)
        status, _, body = web.request("GET", "/peers")
        assert status == 403 and "E_ROLE" in body
        status, _, body = web.request("GET", "/catalog")
        assert 'href="/peers"' not in body
    assert stored(home) == before


def test_the_page_in_english(web: Web) -> None:
    login(web, "shouquan")
    agree(web, "cn-310000", "上海市")
    html = page(web, "/peers?lang=en")
    assert "Peer cities" in html and "Proposals waiting for confirmation" in html
    peer = row(html, "cn-310000")
    scope = scope_in(peer)
    assert "in force" in peer and "proxy intake" in scope and "acceptance, decision" in scope
    assert "peer catalog v7" in scope
    page(web, "/peers?lang=zh")


def test_an_agreement_shows_as_expiring_in_its_last_week_and_as_expired_after(web: Web) -> None:
    login(web, "shouquan")
    html = page(web)
    lapsed = row(html, LAPSED)
    assert "已过期" in lapsed and "自动续期" not in lapsed  # central's timer leaves it to an operator
    assert f'<tr class="manage" data-net="{LAPSED}">' in html  # renewed by hand here
    net = "cn-330500"
    assert post(web, "/peers/propose", {**proposal(net, "湖州市"), "valid_days": "5"})[0] == 303
    assert post(web, "/peers/confirm", {"net": net, "fingerprint": fingerprint(root_of(net))})[0] == 303
    assert "即将到期" in row(page(web), net)
    assert post(web, "/peers/renew", {"net": LAPSED, "valid_days": "30"})[0] == 303
    assert "在效" in row(page(web), LAPSED) and "#2" in row(page(web), LAPSED)
