"""多地联办: a household registration moved from Qingpu to Haining, one application at a
Haining village window whose two parts two cities decide — Haining's town the arriving
city's part (购房户口迁入, the case itself), Qingpu's town the leaving city's part (its
市内户口迁移, sent as a part) — tracked as one case with the state of each part; the window
delivers only once both are decided; and the refusals of parts and part steps that may not
be.

Two real cities (two genesis records, two catalogs). The records move between the nodes of
each city as its sync would carry them (``relay``) and between the centrals as the link
between them hands over its messages (the outbox's messages, in order, to the peer's
``Crossing.deliver``), as in test_crossing.py."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from central import authority, peer_link_store
from central.crossing_store import IN, OUT, by_their_case, counts, message, peer_cases_of
from core.clock import local_date
from core.errors import AuthorityError, ErrorCode, InputError
from core.federation import JOINT_PART
from core.files import PART_SUPPLEMENT_MATERIAL
from core.intake import Intake
from core.parts import Part, PartStatus
from node.clerks import hash_password
from node.desk import Desk
from node.files import Upload
from node.intake import IntakeForm
from sync.projection import case_queries
from sync.record import foreign, kinds
from sync.record.db import transaction
from sync.record.envelope import Payload, seal
from sync.record.log import stored_record
from tests.helpers import TOWN, VILLAGE, relay
from tests.integration.jointcities import (
    ARRIVE,
    HAINING,
    LEAVE,
    OTHER,
    QINGPU,
    QP_TOWN,
    Cities,
    build,
    cross,
    deliver,
    desk,
    down,
    form,
    leaving,
    messages,
    parts_at,
    refused,
    up,
)
from tests.integration.webnode import GOOD_ID, PASSWORD, csrf_of, device_token, login, serve
from tests.integration.webnode import form as form_data
from tests.scanfiles import jpeg


@pytest.fixture()
def cities(tmp_path: Path) -> Cities:
    return build(tmp_path)


def test_one_application_two_cities_each_part_decided_and_delivered_when_both_are(cities: Cities) -> None:
    c = cities
    with desk(c, VILLAGE) as d:
        case = d.intake(form((leaving(c),)), actor="wangli")
        number = case.case_no
        assert case.decider == TOWN and case.state.value == "forwarded"
        assert d.intake_of(number).parts == (leaving(c),)  # type: ignore[union-attr]
    assert parts_at(c, VILLAGE, number) == [(QINGPU, PartStatus.SENT, "")]
    up(c)
    with authority.open_central(c.hn, c.clock) as central:
        [row] = peer_cases_of(central.store.db, number)
        assert (row.peer, row.direction, row.mode) == (QINGPU, OUT, JOINT_PART)
        assert (row.item, row.cat) == (LEAVE, c.cat)
    assert len(messages(c.hn, QINGPU, c.clock)) == 1  # the part: the intake, with the village's chain
    cross(c, c.hn, c.qp, HAINING, QINGPU)
    with authority.open_central(c.qp, c.clock) as central:
        theirs = by_their_case(central.store.db, HAINING, number, IN)
        assert theirs is not None and theirs.mode == JOINT_PART
        row_qp = case_queries.case(central.store.db, theirs.case_no)
        assert row_qp is not None and row_qp.item == LEAVE and row_qp.decider == QP_TOWN
        assert row_qp.state.value == "forwarded" and row_qp.name == "王秀英"
    # Qingpu's acceptance comes back as a part step; the case's own state does not move.
    last = cross(c, c.qp, c.hn, QINGPU, HAINING)
    down(c)
    assert parts_at(c, VILLAGE, number) == [(QINGPU, PartStatus.ACCEPTED, theirs.case_no)]
    with desk(c, VILLAGE) as d:
        assert d.case(number).state.value == "forwarded"
        assert [e.event for e in d.events(number)] == ["forward", "part_accept"]
    # Haining's town decides our part; the window may not deliver while Qingpu's is open.
    with desk(c, TOWN) as d:
        assert d.act(number, "approve", {}, "shenpi").state.value == "approved"
    relay(c.haining.node_dir(TOWN), c.haining.node_dir(VILLAGE), c.clock)
    relay(c.haining.node_dir(TOWN), c.hn, c.clock, up=True)
    with desk(c, VILLAGE) as d:
        with pytest.raises(InputError) as caught:
            d.act(number, "deliver", {"delivery": "pickup"}, "wangli")
        assert caught.value.code is ErrorCode.PART_OPEN and "市内户口迁移" in caught.value.text("zh")
        assert [e.event for e in d.events(number)][-1] == "approve"
    # On the clerk's screen: the code and why, in Chinese, the case as it was.
    with serve(c.haining.node_dir(VILLAGE), probe="/login") as web:
        login(web, "wangli")
        data = {"csrf": csrf_of(web, f"/cases/{number}"), "event": "deliver", "delivery": "pickup"}
        status, _, html = web.request("POST", f"/cases/{number}/step", data=form_data(data))
    assert status == 400 and ErrorCode.PART_OPEN.value in html
    assert "多地联办的各部分尚未全部办结，不能送达" in html
    assert "尚未办结的部分：市内户口迁移（户口迁出）" in html
    with desk(c, VILLAGE) as d:
        assert d.case(number).state.value == "approved"
    # Central's figures per peer count the part as open while Qingpu has not decided it.
    today = local_date(c.clock.now()).isoformat()
    with authority.open_central(c.hn, c.clock) as central:
        figures = counts(central.store.db, today)[QINGPU]
        assert (figures.out_total, figures.out_open) == (1, 1)
    # Qingpu's town decides its part; it comes back; now the window delivers.
    relay(c.qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    # Qingpu's town sees whose application its part belongs to, and decides it.
    with desk(c, QP_TOWN) as d:
        assert [r.case_no for r in d.queue()] == [theirs.case_no]
        roles = ["approver", "clerk"]
        d.clerks.add(d.keys, "shenpi", "沈批", roles, hash_password(PASSWORD), actor="sys:test")
    with serve(c.qingpu.node_dir(QP_TOWN), probe="/login") as web:
        login(web, "shenpi")
        status, _, html = web.request("GET", f"/cases/{theirs.case_no}")
    assert status == 200 and 'id="crossing"' in html and 'id="parts"' not in html
    assert (
        f"本件为海宁市多地联办申请（对方编号 {number}，收件时间" in html
        and "对方部分：购房户口迁入）中本市的部分" in html
    )
    assert 'id="step-peer_accept"' not in html and 'id="step-approve"' in html  # no hand for carried steps
    with desk(c, QP_TOWN) as d:
        d.act(theirs.case_no, "approve", {}, "shenpi")
    relay(c.qingpu.node_dir(QP_TOWN), c.qp, c.clock, up=True)
    cross(c, c.qp, c.hn, QINGPU, HAINING, last)
    down(c)
    assert parts_at(c, VILLAGE, number) == [(QINGPU, PartStatus.APPROVED, theirs.case_no)]
    assert parts_at(c, TOWN, number) == [(QINGPU, PartStatus.APPROVED, theirs.case_no)]
    with authority.open_central(c.hn, c.clock) as central:
        assert counts(central.store.db, today)[QINGPU].out_open == 0
    with desk(c, VILLAGE) as d:
        assert d.case(number).state.value == "approved"
    # The village's case page: one case, the state of each part, names not codes.
    with serve(c.haining.node_dir(VILLAGE), probe="/login") as web:
        login(web, "wangli")
        status, _, html = web.request("GET", f"/cases/{number}")
    assert status == 200 and 'id="parts"' in html
    assert "本市部分：购房户口迁入（海宁市） 办结（准予）" in html
    assert "上海市青浦区部分：市内户口迁移（户口迁出） 已办结（准予）" in html and theirs.case_no in html
    with desk(c, VILLAGE) as d:
        assert d.act(number, "deliver", {"delivery": "pickup"}, "wangli").state.value == "delivered"
    # The parts are a function of the log: a rebuild gives them again and queues nothing twice.
    queued = messages(c.hn, QINGPU, c.clock)
    with authority.open_central(c.hn, c.clock) as central:
        before = case_queries.parts_of(central.store.db, number)
        central.store.log.rebuild()
        assert case_queries.parts_of(central.store.db, number) == before and before[0].decided
    assert messages(c.hn, QINGPU, c.clock) == queued
    with desk(c, VILLAGE) as d:
        d.store.log.rebuild()
    assert parts_at(c, VILLAGE, number) == [(QINGPU, PartStatus.APPROVED, theirs.case_no)]


def _intake_count(d: Desk) -> int:
    found = d.db.conn.execute("SELECT count(*) FROM records WHERE kind = ?", (kinds.CASE_INTAKE,)).fetchone()
    return int(found[0])


@pytest.mark.parametrize(
    ("which", "detail"),
    [("outside the scope", OTHER), ("another catalog version", LEAVE), ("a city not agreed", "cn-320509")],
)
def test_a_part_not_agreed_is_refused_at_the_window_and_at_ingest_nothing_written(
    cities: Cities, which: str, detail: str
) -> None:
    c = cities
    part = {
        "outside the scope": leaving(c, OTHER),
        "another catalog version": leaving(c, cat=c.cat + 1),
        "a city not agreed": leaving(c, city="cn-320509"),
    }[which]
    with desk(c, VILLAGE) as d:
        before = _intake_count(d)
        with pytest.raises(AuthorityError) as caught:
            d.intake(form((part,)), actor="wangli")
        assert caught.value.code is ErrorCode.PEER_SCOPE and detail in caught.value.detail
        # The same intake signed past the desk's check: the store's door refuses it.
        good = d.intake(form((leaving(c),), doc_no="330481199001010014"), actor="wangli")
        signed = Intake.from_body(stored_record(d.db, _intake_id(d, good.case_no)).body)  # type: ignore[union-attr]
        forged = dataclasses.replace(signed, case=signed.case[:-4] + "0099", parts=(part,))
        with pytest.raises(AuthorityError) as caught, transaction(d.db):
            d.store.log.append_local(d.keys, VILLAGE, kinds.CASE_INTAKE, forged.to_body(), actor="wangli")
        assert caught.value.code is ErrorCode.PEER_SCOPE
        assert _intake_count(d) == before + 1 and case_queries.case(d.db, forged.case) is None
        # Signed by the village all the same, it reaches the town: refused there too.
        head = d.store.log.head(VILLAGE)
        assert head is not None
        payload = Payload(net=HAINING, kind=kinds.CASE_INTAKE, origin=VILLAGE, kid=d.keys.kid,
                          seq=head.seq + 1, prev=head.id, ts=c.clock.now(), body=forged.to_body(),
                          actor="wangli")  # fmt: skip
        envelope = seal(payload, d.keys).envelope
    up(c)
    with desk(c, TOWN) as town:
        outcome = town.store.log.ingest(envelope, VILLAGE)
        assert outcome.code is ErrorCode.PEER_SCOPE and case_queries.case(town.db, forged.case) is None
        assert case_queries.case(town.db, good.case_no) is not None


def _intake_id(d: Desk, number: str) -> bytes:
    return bytes(d.db.conn.execute("SELECT intake_id FROM cases WHERE case_no = ?", (number,)).fetchone()[0])


def test_what_a_peer_may_not_send_of_a_joint_application_is_refused(cities: Cities) -> None:
    c = cities
    with desk(c, VILLAGE) as d:
        number = d.intake(form((leaving(c),)), actor="wangli").case_no
    up(c)
    [(_, part_msg)] = messages(c.hn, QINGPU, c.clock)
    cross(c, c.hn, c.qp, HAINING, QINGPU)
    assert refused(c, c.qp, HAINING, part_msg) == ErrorCode.PEER_REPLAY.value
    # A step of a Qingpu case Haining never sent a part of: Qingpu's town's own walk-in.
    with desk(c, QP_TOWN) as d:
        materials = ("hukou_book", "id_card", "property_cert")
        walk_in = IntakeForm(item=LEAVE, name="李四", doc_type="resident_id", doc_no=GOOD_ID,
                             phone="13900139000", materials=materials)  # fmt: skip
        local = d.intake(walk_in, actor="shenpi", decide=True)
        [approve_id] = d.db.conn.execute(
            "SELECT record_id FROM case_events WHERE case_no = ? AND event = 'approve'", (local.case_no,)
        ).fetchone()
    relay(c.qingpu.node_dir(QP_TOWN), c.qp, c.clock, up=True)
    with authority.open_central(c.qp, c.clock) as central:
        record = stored_record(central.store.db, bytes(approve_id))
        assert record is not None
        step = message("step", record.envelope, foreign.chain_of(central.store.db, record))
    assert refused(c, c.hn, QINGPU, step) == ErrorCode.PEER_CASE.value
    with authority.open_central(c.hn, c.clock) as central:
        assert [e.event for e in case_queries.events(central.store.db, number)] == ["forward"]
    with authority.open_central(c.qp, c.clock) as central:
        assert len(case_queries.search(central.store.db, "王秀英")) == 1


def test_the_applicant_withdraws_and_every_part_is_withdrawn_in_its_city(cities: Cities) -> None:
    c = cities
    with desk(c, VILLAGE) as d:
        number = d.intake(form((leaving(c),)), actor="wangli").case_no
    up(c)
    cross(c, c.hn, c.qp, HAINING, QINGPU)
    sent = len(messages(c.hn, QINGPU, c.clock))
    cross(c, c.qp, c.hn, QINGPU, HAINING)
    down(c)
    with desk(c, VILLAGE) as d:
        assert d.act(number, "withdraw", {"reason": "申请人撤回"}, "wangli").state.value == "withdrawn"
    up(c)
    # The withdrawal goes to Qingpu, nothing else of our own part did (the town's steps stay home).
    [(_, withdrawal)] = messages(c.hn, QINGPU, c.clock)[sent:]
    deliver(c.qp, HAINING, withdrawal, c.clock)
    with authority.open_central(c.qp, c.clock) as central:
        theirs = by_their_case(central.store.db, HAINING, number, IN)
        assert theirs is not None
        row = case_queries.case(central.store.db, theirs.case_no)
        assert row is not None and row.state.value == "withdrawn"
    relay(c.qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    with desk(c, QP_TOWN) as d:
        assert d.case(theirs.case_no).state.value == "withdrawn"
        with pytest.raises(InputError) as caught:
            d.act(theirs.case_no, "approve", {}, "shenpi")
        assert caught.value.code is ErrorCode.CASE_TRANSITION


def test_the_windows_form_posts_its_parts_and_a_part_not_agreed_is_refused_on_screen(cities: Cities) -> None:
    c = cities
    home = c.haining.node_dir(VILLAGE)
    fields = {"item": ARRIVE, "name": "王秀英", "doc_type": "resident_id", "doc_no": GOOD_ID,
              "phone": "13800138000", "notes": "", "materials": ["property_cert", "id_card", "hukou_book"],
              "action": "accept"}  # fmt: skip
    with serve(home, probe="/login") as web:
        login(web, "wangli")
        # The form of our item offers the part Qingpu decides, by the city's and the item's names.
        _, _, shown = web.request("GET", f"/intake?item={ARRIVE}")
        offered = re.search(r'<fieldset id="parts">(.*?)</fieldset>', shown, re.S)
        assert (
            offered and f'value="{QINGPU}|{LEAVE}|{c.cat}|' in offered[1] and "上海市青浦区 · " in offered[1]
        )
        bad = f"{QINGPU}|{OTHER}|{c.cat}|投靠亲属户口迁入"
        status, _, html = web.request(
            "POST", "/intake", data=form_data({**fields, "csrf": csrf_of(web, "/intake"), "parts": [bad]})
        )
        assert status == 403 and ErrorCode.PEER_SCOPE.value in html and "不在多地联办的互认范围内" in html
        with desk(c, VILLAGE) as d:
            assert case_queries.search(d.db, "王秀英") == []
        good = f"{QINGPU}|{LEAVE}|{c.cat}|市内户口迁移"
        status, headers, _ = web.request(
            "POST", "/intake", data=form_data({**fields, "csrf": csrf_of(web, "/intake"), "parts": [good]})
        )
        assert status == 303, headers
    with desk(c, VILLAGE) as d:
        [row] = case_queries.search(d.db, "王秀英")
        intake = d.intake_of(row.case_no)
        assert intake is not None and intake.parts == (Part(QINGPU, LEAVE, c.cat, "市内户口迁移"),)


def test_a_part_asks_for_a_supplement_our_window_takes_it_in_and_the_part_is_then_rejected(
    cities: Cities,
) -> None:
    c = cities
    with desk(c, VILLAGE) as d:
        number = d.intake(form((leaving(c),)), actor="wangli").case_no
    up(c)
    cross(c, c.hn, c.qp, HAINING, QINGPU)
    sent = cross(c, c.qp, c.hn, QINGPU, HAINING)
    down(c)
    with authority.open_central(c.qp, c.clock) as central:
        theirs = by_their_case(central.store.db, HAINING, number, IN)
        assert theirs is not None
    with desk(c, VILLAGE) as d:  # nothing asked yet: no supplement to a part to take in
        assert "part_supply" not in d.steps(d.case(number))
        with pytest.raises(InputError) as caught:
            d.act(number, "part_supply", {"part": theirs.case_no}, "wangli")
        assert caught.value.code is ErrorCode.CASE_TRANSITION
    # Qingpu's town asks; the village sees what its part needs, the case's own state unmoved.
    relay(c.qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    with desk(c, QP_TOWN) as d:
        d.act(theirs.case_no, "request_supplement", {"missing": "迁出地户口簿"}, "shenpi")
    relay(c.qingpu.node_dir(QP_TOWN), c.qp, c.clock, up=True)
    sent = cross(c, c.qp, c.hn, QINGPU, HAINING, sent)
    down(c)
    with desk(c, VILLAGE) as d:
        [part] = case_queries.parts_of(d.db, number)
        assert (part.status, part.missing) == (PartStatus.SUPPLEMENT, ("迁出地户口簿",))
        assert d.case(number).state.value == "forwarded" and "part_supply" in d.steps(d.case(number))
    with serve(c.haining.node_dir(VILLAGE), probe="/login") as web:
        login(web, "wangli")
        _, _, html = web.request("GET", f"/cases/{number}")
    assert "上海市青浦区部分：市内户口迁移（户口迁出） 补正中" in html and "需补正：迁出地户口簿" in html
    assert 'id="step-part_supply"' in html and f'<option value="{theirs.case_no}">' in html
    # The window takes the supplement in, its page scanned; it goes to Qingpu as its central's
    # supply, the page owed to Qingpu with it.
    page = Upload(PART_SUPPLEMENT_MATERIAL, "hukou.jpg", jpeg())
    with desk(c, VILLAGE) as d:
        fields = {"part": theirs.case_no, "reason": "户口簿已补交"}
        d.act(number, "part_supply", fields, "wangli", uploads=(page,))
        assert case_queries.parts_of(d.db, number)[0].status is PartStatus.ACCEPTED
        [scan] = [f.ref for f in d.files_of(number) if f.ref.material == PART_SUPPLEMENT_MATERIAL]
    up(c)
    [_, (_, supplied)] = messages(c.hn, QINGPU, c.clock)  # the part, then the supplement to it
    with authority.open_central(c.hn, c.clock) as central:
        waiting = peer_link_store.waiting(central.store.db, QINGPU, 0, 1000)
        owed = [(item.sha, item.size) for item in waiting if item.data is None]
    assert owed == [(scan.hex, scan.size)]
    deliver(c.qp, HAINING, supplied, c.clock)
    with authority.open_central(c.qp, c.clock) as central:
        assert (scan.hex, scan.size) in peer_link_store.expected(central.store.db, HAINING, 1000)
    relay(c.qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    with desk(c, QP_TOWN) as d:
        assert d.case(theirs.case_no).state.value == "forwarded"
        assert [e.event for e in d.events(theirs.case_no)][-1] == "supply"
        d.act(theirs.case_no, "reject", {"reason": "迁出地不符合迁移条件"}, "shenpi")
    relay(c.qingpu.node_dir(QP_TOWN), c.qp, c.clock, up=True)
    cross(c, c.qp, c.hn, QINGPU, HAINING, sent)
    down(c)
    with desk(c, VILLAGE) as d:
        [part] = case_queries.parts_of(d.db, number)
        assert (part.status, part.reason) == (PartStatus.REJECTED, "迁出地不符合迁移条件")
        assert d.case(number).state.value == "forwarded"  # our own part is still our town's to decide
        events = [e.event for e in d.events(number)]
        assert events == ["forward", "part_accept", "part_supplement", "part_supply", "part_reject"]


def test_the_json_api_offers_the_parts_takes_them_in_and_shows_where_each_stands(cities: Cities) -> None:
    c = cities
    home = c.haining.node_dir(VILLAGE)
    token = device_token(home)
    body = {"item": ARRIVE, "name": "王秀英", "doc_type": "resident_id", "doc_no": GOOD_ID,
            "phone": "13800138000", "materials": ["property_cert", "id_card", "hukou_book"]}  # fmt: skip
    good = {"city": QINGPU, "item": LEAVE, "cat": c.cat, "name": "市内户口迁移"}
    with serve(home, probe="/login") as web:
        status, items = web.api("GET", "/api/v1/items", token)
        assert status == 200
        [offer] = items["part_offers"]  # the item's name where the fixture mirrored no release: its code
        shown_offer = (offer["city"], offer["city_name"], offer["item"], offer["cat"])
        assert shown_offer == (QINGPU, "上海市青浦区", LEAVE, c.cat)
        # Refused with a code each, nothing taken in: a malformed part, one not agreed.
        for part, code, http_status in (
            ({**good, "extra": "x"}, ErrorCode.FIELD_INVALID, 400),
            ({**good, "cat": "1"}, ErrorCode.FIELD_INVALID, 400),
            ({**good, "item": OTHER}, ErrorCode.PEER_SCOPE, 403),
        ):
            status, answer = web.api("POST", "/api/v1/cases", token, {**body, "parts": [part]})
            assert (status, answer["error"]["code"]) == (http_status, code.value), answer
        with desk(c, VILLAGE) as d:
            assert case_queries.search(d.db, "王秀英") == []
        status, answer = web.api("POST", "/api/v1/cases", token, {**body, "parts": [good]})
        assert status == 201, answer
        number = answer["case"]["case_no"]
        status, shown = web.api("GET", f"/api/v1/cases/{number}", token)
    assert status == 200
    [part] = shown["parts"]
    assert {k: part[k] for k in good} == good
    assert (part["status"], part["status_zh"], part["their_case"]) == ("sent", "已送出，待对方受理", None)
    with desk(c, VILLAGE) as d:
        assert d.intake_of(number).parts == (Part(QINGPU, LEAVE, c.cat, "市内户口迁移"),)  # type: ignore[union-attr]
