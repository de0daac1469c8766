"""The window's working day through the real web service: the papers a resident takes home,
numbered and kept; an agent and an item's extra fields; the applicant read from the card;
a 即办 item in one step; what came back shown on the village's home page and told by SMS;
what falls due per clerk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FixedClock, SystemClock, local_date
from tests.helpers import TOWN, VILLAGE, open_desk, relay
from tests.integration.webnode import Web, build_city, csrf_of, device_token, form, login, serve

pytestmark = pytest.mark.slow

LOW_INCOME = "MZ-0001"  # 最低生活保障: extra fields household_size, monthly_income
AGENT_ID = "330481199001010014"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_city(tmp_path_factory.mktemp("day")).root
    with (root / VILLAGE / "node.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[reader]\nkind = "simulated"\n\n[sms]\ngateway = "log"\n')
    return root


@pytest.fixture(scope="module")
def village(city: Path) -> Iterator[Web]:
    with serve(city / VILLAGE) as web:
        yield web


@pytest.fixture(scope="module")
def token(city: Path) -> str:
    return device_token(city / VILLAGE)


def item_of(web: Web, token: str, code: str) -> dict[str, object]:
    _, items = web.api("GET", "/api/v1/items", token)
    return next(i for i in items["items"] if i["code"] == code)


def post(web: Web, code: str, **fields: str | list[str]) -> tuple[int, dict[str, str], str]:
    data: dict[str, str | list[str]] = {
        "csrf": csrf_of(web, f"/intake?item={code}"),
        "item": code,
        "name": "王秀英",
        "doc_type": "resident_id",
        "doc_no": "11010519491231002X",
        "phone": "13800138000",
        "notes": "",
        "materials": [],
        "action": "accept",
        **fields,
    }
    return web.request("POST", "/intake", data=form(data))


def required_of(item: dict[str, object]) -> list[str]:
    return [str(m["code"]) for m in item["materials"] if m["required"]]  # type: ignore[attr-defined]


def test_the_one_time_notice_and_the_refusal_are_numbered_and_kept(village: Web, token: str) -> None:
    assert login(village, "wangli")[0] == 303
    status, _, html = post(village, LOW_INCOME, action="notice")
    assert status == 200
    number = re.search(r'id="paper-number">([^<]+)<', html)
    assert number and re.fullmatch(VILLAGE + r"-GZ-\d{4}-\d{4}", number[1])
    assert "新阳村便民服务中心" in html and "经办人签字" in html  # the center and a signature line
    _, _, again = village.request("GET", f"/papers/{number[1]}")
    assert "一次性告知书" in again and number[1] in again and "家庭收入和财产状况申报表" in again

    status, _, html = post(village, LOW_INCOME, action="refuse", refuse_reason=" ")
    assert status == 400 and "E_FIELD_REQUIRED" in html
    status, headers, _ = post(village, LOW_INCOME, action="refuse", refuse_reason="申请人户籍不在本镇")
    assert status == 303 and re.search(r"/papers/" + VILLAGE + r"-BSL-\d{4}-0001$", headers["Location"])
    _, _, html = village.request("GET", headers["Location"])
    assert "不予受理通知书" in html and "申请人户籍不在本镇" in html and "行政复议" in html


def test_an_agent_and_the_extra_fields_are_taken_in_and_printed(village: Web, token: str) -> None:
    assert login(village, "wangli")[0] == 303
    item = item_of(village, token, LOW_INCOME)
    materials = [*required_of(item), "agent_authorization"]
    agent = {"agent": "yes", "agent_name": "李代办", "agent_doc_type": "resident_id"}
    status, _, html = post(
        village,
        LOW_INCOME,
        materials=materials,
        **agent,
        agent_doc_no=AGENT_ID,
        agent_phone="13900139000",
        extra_household_size="三口",
    )
    assert status == 400 and "共同生活家庭成员人数应为整数" in html  # an extra field checked by its kind
    assert re.search(r'name="extra_household_size"[^>]*aria-invalid="true"', html)
    assert 'value="李代办"' in html  # what was typed is kept
    status, headers, _ = post(
        village,
        LOW_INCOME,
        materials=materials,
        **agent,
        agent_doc_no=AGENT_ID,
        agent_phone="13900139000",
        extra_household_size="３",  # full-width digits, as an IME types them
        extra_monthly_income="1200",
    )
    assert status == 303, headers
    _, _, receipt = village.request("GET", headers["Location"])
    assert "受理通知书" in receipt and "李代办" in receipt and "王丽" in receipt  # a name, not wangli
    assert "共同生活家庭成员人数" in receipt and ">3<" in receipt
    assert "代办人授权委托书" in receipt or "授权委托书" in receipt
    case_no = headers["Location"].split("/")[2]
    _, case = village.api("GET", f"/api/v1/cases/{case_no}", token)
    assert case["case"]["item"] == LOW_INCOME


def test_the_applicant_is_filled_from_the_card_on_the_reader(city: Path, village: Web) -> None:
    assert login(village, "wangli")[0] == 303
    status, _, html = post(village, LOW_INCOME, action="card", name="", doc_no="")
    assert status == 400 and "E_READER_EMPTY" in html and "读卡器上没有证件" in html
    card = {
        "name": "陈晓梅",
        "number": "330481198803150022",
        "sex": "女",
        "address": "浙江省海宁市许村镇新阳村",
    }
    (city / VILLAGE / "reader-card.json").write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    try:
        status, _, html = post(village, LOW_INCOME, action="card", name="", doc_no="")
    finally:
        (city / VILLAGE / "reader-card.json").unlink()
    assert status == 200 and 'id="card-read"' in html
    assert 'name="name" value="陈晓梅"' in html and 'value="330481198803150022"' in html


def test_a_direct_item_without_a_time_limit_is_decided_in_one_step(city: Path) -> None:
    with serve(city / TOWN) as town:
        assert login(town, "shenpi")[0] == 303
        token = device_token(city / TOWN, "town-kiosk")
        _, items = town.api("GET", "/api/v1/items", token)
        birth = next(i for i in items["items"] if i["code"] == "GA-0001")
        assert [f["code"] for f in birth["fields"]] == ["child_name", "child_birth"]  # for a kiosk
        item = next(
            i
            for i in items["items"]
            if i["mode"] == "direct" and i["time_limit_days"] == 0 and not i["fields"]
        )
        _, _, page = town.request("GET", f"/intake?item={item['code']}")
        assert 'id="accept-decide"' in page
        status, headers, _ = post(
            town, str(item["code"]), materials=required_of(item), action="accept_decide"
        )
        assert status == 303
        case_no = headers["Location"].split("/")[2]
        _, case = town.api("GET", f"/api/v1/cases/{case_no}", token)
        assert case["case"]["state"] == "approved"
        _, _, html = town.request("GET", f"/cases/{case_no}/papers/decision")
        assert "准予决定通知书" in html and f"{case_no}-JD" in html and "经办人签字" in html
        # a proxy item is not decided in one step
        proxy = next(i for i in items["items"] if i["time_limit_days"] > 0)
        _, _, page = town.request("GET", f"/intake?item={proxy['code']}")
        assert 'id="accept-decide"' not in page


def test_what_came_back_is_on_the_home_page_and_told_by_sms(city: Path, village: Web, token: str) -> None:
    assert login(village, "wangli")[0] == 303
    village.request("GET", "/")  # the clerk looks: nothing new after this
    with open_desk(city / VILLAGE, FixedClock(t=SystemClock().now())) as desk:
        assert desk.tell_residents() == 0  # the outbox begins here
    item = next(
        i
        for i in village.api("GET", "/api/v1/items", token)[1]["items"]
        if i["mode"] == "proxy" and i["decider"] == TOWN and i["code"] != LOW_INCOME
    )
    body = {"item": item["code"], "name": "冯十二", "doc_type": "resident_id", "doc_no": "330481197001010015"}
    status, answer = village.api(
        "POST", "/api/v1/cases", token, {**body, "phone": "13700137000", "materials": required_of(item)}
    )
    assert status == 201
    case_no = answer["case"]["case_no"]
    relay(city / VILLAGE, city / TOWN, SystemClock(), up=True)  # type: ignore[arg-type]
    with serve(city / TOWN) as town:
        assert login(town, "shenpi")[0] == 303
        csrf = csrf_of(town, f"/cases/{case_no}")
        data = form({"csrf": csrf, "event": "request_supplement", "missing": "收入证明", "reason": ""})
        assert town.request("POST", f"/cases/{case_no}/step", data=data)[0] == 303
    relay(city / TOWN, city / VILLAGE, SystemClock())  # type: ignore[arg-type]

    _, _, home = village.request("GET", "/")
    news = home[home.index('id="news"') :]
    assert case_no in news and "要求补正" in news and "许村镇便民服务中心" in news
    _, _, home = village.request("GET", "/")
    assert 'id="news"' not in home  # seen: not new any more

    with open_desk(city / VILLAGE, FixedClock(t=SystemClock().now())) as desk:
        assert desk.tell_residents() == 1
        assert desk.tell_residents() == 0  # one message per step, never twice
    line = (city / VILLAGE / "sms.log").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert "\t13700137000\t【新阳村便民服务中心】" in line and case_no in line and "补正" in line
    _, _, page = village.request("GET", f"/cases/{case_no}")
    assert 'id="sms"' in page and "已发送" in page
    _, _, paper = village.request("GET", f"/cases/{case_no}/papers/supplement")
    assert "补正材料告知书" in paper and f"{case_no}-BZ1" in paper and "<li>收入证明</li>" in paper


def test_what_falls_due_is_listed_per_clerk(city: Path, village: Web, token: str) -> None:
    item = next(
        i
        for i in village.api("GET", "/api/v1/items", token)[1]["items"]
        if i["mode"] == "proxy" and i["time_limit_days"] >= 5
    )
    body = {"item": item["code"], "name": "褚十三", "doc_type": "resident_id", "doc_no": "330481196901010016"}
    status, answer = village.api(
        "POST", "/api/v1/cases", token, {**body, "phone": "13700137000", "materials": required_of(item)}
    )
    assert status == 201
    case_no, deadline = answer["case"]["case_no"], answer["case"]["deadline"]
    with open_desk(city / VILLAGE, FixedClock(t=SystemClock().now())) as desk:
        actor = desk.case(case_no).actor
        now_due, soon = desk.due(actor, deciding=False)
        assert case_no not in [c.case_no for c in now_due + soon]  # weeks ahead
        assert desk.due("someone-else", deciding=False) == ([], [])  # only what she took in
    start = SystemClock().now()
    day = 86_400
    for offset in range(0, 80):  # the day before the deadline: about to fall due
        at = start + offset * day
        if local_date(at + day).isoformat() == deadline:
            break
    with open_desk(city / VILLAGE, FixedClock(t=at)) as desk:
        now_due, soon = desk.due(actor, deciding=False)
        assert case_no in [c.case_no for c in soon] and case_no not in [c.case_no for c in now_due]
    with open_desk(city / VILLAGE, FixedClock(t=at + 3 * day)) as desk:
        now_due, _ = desk.due(actor, deciding=False)
        late = next(c for c in now_due if c.case_no == case_no)
        assert late.overdue


def test_cases_are_found_by_phone_part_of_the_id_date_and_state(village: Web, token: str) -> None:
    item = next(
        i
        for i in village.api("GET", "/api/v1/items", token)[1]["items"]
        if i["mode"] == "proxy" and not i["fields"]
    )
    body = {"item": item["code"], "name": "蒋十四", "doc_type": "resident_id", "doc_no": "330481196501010359"}
    status, answer = village.api(
        "POST", "/api/v1/cases", token, {**body, "phone": "13612345678", "materials": required_of(item)}
    )
    assert status == 201, answer
    case_no = answer["case"]["case_no"]
    today = local_date(SystemClock().now()).isoformat()
    assert login(village, "wangli")[0] == 303
    for query in (
        "q=5678",
        "q=13612345678",
        "q=19650101",
        f"q=0359&state=forwarded&since={today}&until={today}",
    ):
        _, _, html = village.request("GET", "/cases?" + query)
        assert case_no in html, query
    for query in ("q=5678&state=approved", "q=0359&since=2000-01-01&until=2000-01-02"):
        _, _, html = village.request("GET", "/cases?" + query)
        assert case_no not in html, query
    _, _, html = village.request("GET", f"/cases?state=forwarded&since={today}")
    assert case_no in html  # no text: every case in that state taken in since then
    status, _, html = village.request("GET", "/cases?since=2026-13-01")
    assert (
        status == 400 and "日期格式应为" in html and re.search(r'name="since"[^>]*aria-invalid="true"', html)
    )
    _, found = village.api("GET", "/api/v1/cases?q=5678&state=forwarded", token)
    assert [c["case_no"] for c in found["cases"]] == [case_no]


def test_english_mode_names_the_item_its_materials_states_and_steps(village: Web, token: str) -> None:
    # defect 11: English mode left item names, materials, states and actions in Chinese or raw
    item = item_of(village, token, LOW_INCOME)
    body = {"item": LOW_INCOME, "name": "韩十五", "doc_type": "resident_id", "doc_no": "330481196501010367"}
    status, answer = village.api(
        "POST", "/api/v1/cases", token, {**body, "phone": "13612345679", "materials": required_of(item)}
    )
    assert status == 201, answer
    case_no = answer["case"]["case_no"]
    assert login(village, "wangli")[0] == 303
    _, _, html = village.request("GET", f"/cases/{case_no}?lang=en")
    assert str(item["name_en"]) in html and "最低生活保障申请" not in html
    assert "Household register" in html and "居民户口簿" not in html  # a material with its English name
    assert "taken in, waiting to go up" in html and "已受理" not in html
    _, _, html = village.request("GET", f"/intake?item={LOW_INCOME}&lang=en")
    assert "Guide" in html and "Read ID card" in html and "办事指南" not in html
    _, _, html = village.request("GET", "/catalog?lang=en")
    assert (
        "Authorization to check the household&#39;s finances" in html
        or "Authorization to check the household's finances" in html
    )
