"""The service desk on real SQLite stores, with time under the test's control.

Expired and revoked grants, sub-delegation that would widen, crossing steps of two offline
nodes, overdue flags, sessions and login backoff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import FixedClock
from core.documents import mod11_2_check_char
from core.errors import AuthorityError, ErrorCode, InputError
from node.clerks import Clerks, hash_password
from node.desk import Delegation, Desk, IntakeForm
from tests.helpers import CITY, TOWN, VILLAGE, Network, delegate_demo_items, make_network, open_desk, relay

DAY = 86_400
GOOD_ID = "11010519491231002X"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    network = make_network(tmp_path, FixedClock(t=1_795_400_000, step=1))
    network.add_node(TOWN, "town", CITY)
    network.add_node(VILLAGE, "village", TOWN)
    delegate_demo_items(network, TOWN, [VILLAGE], valid_days=10)
    return network


def proxy_item(desk: Desk) -> tuple[str, tuple[str, ...]]:
    auth = next(
        a for a in desk.items() if a.mode is not None and a.mode.value == "proxy" and a.decider == TOWN
    )
    return auth.item.code, tuple(m.code for m in auth.item.materials if m.required)


def form(item: str, materials: tuple[str, ...], doc_no: str = GOOD_ID) -> IntakeForm:
    return IntakeForm(
        item=item,
        name="王秀英",
        doc_type="resident_id",
        doc_no=doc_no,
        phone="13800138000",
        materials=materials,
    )


def counts(desk: Desk) -> tuple[int, int]:
    return desk.store.log.count(), desk.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0]


def test_expired_grant_flags_the_case_but_takes_the_walk_in(net: Network) -> None:
    net.clock.advance(20 * DAY)  # the 10-day grants have expired; the village has not synced
    desk = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        assert any(b.code == "E_GRANT_EXPIRED" for b in desk.banners())
        item, materials = proxy_item(desk)
        case = desk.intake(form(item, materials), actor="wangli")
        assert "E_GRANT_EXPIRED" in case["flags"]
        assert case["state"] == "forwarded"
    finally:
        desk.store.close()


def test_revoked_grant_refuses_and_stores_nothing(net: Network) -> None:
    town = open_desk(net.node_dir(TOWN), net.clock)
    try:
        delegation = Delegation(town)
        for grant, revoked in delegation.issued():
            if not revoked:
                delegation.revoke(grant.id, "村便民服务中心暂停代办", actor="guanli")
    finally:
        town.store.close()
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    desk = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        before = counts(desk)
        code = desk.db.conn.execute("SELECT items FROM grants WHERE aud = ? LIMIT 1", (VILLAGE,)).fetchone()[
            0
        ]
        item = code.split('"')[1]
        with pytest.raises(AuthorityError) as err:
            desk.intake(form(item, ()), actor="wangli")
        assert err.value.code is ErrorCode.GRANT_REVOKED
        assert counts(desk) == before
    finally:
        desk.store.close()


def test_sub_delegation_cannot_widen(net: Network) -> None:
    town = open_desk(net.node_dir(TOWN), net.clock)
    try:
        delegation = Delegation(town)
        parent = delegation.parents()[0]
        before = counts(town)
        with pytest.raises(AuthorityError) as err:
            delegation.delegate(VILLAGE, parent.id, [*parent.items, "ZZ-0001"], 10, actor="guanli")
        assert err.value.code is ErrorCode.GRANT_WIDENS
        with pytest.raises(AuthorityError) as err:
            delegation.delegate("330481105201", parent.id, list(parent.items), 10, actor="guanli")
        assert err.value.code is ErrorCode.GRANT_AUDIENCE
        assert counts(town) == before
    finally:
        town.store.close()


def test_crossing_steps_of_two_offline_nodes_are_kept_and_shown(net: Network) -> None:
    village = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        item, materials = proxy_item(village)
        case_no = village.intake(form(item, materials), actor="wangli")["case_no"]
    finally:
        village.store.close()
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    town = open_desk(net.node_dir(TOWN), net.clock)
    try:
        assert [c["case_no"] for c in town.queue()] == [case_no]
        with pytest.raises(InputError) as err:
            town.act(case_no, "reject", {"reason": ""}, actor="shenpi")
        assert err.value.code is ErrorCode.CASE_TRANSITION
        town.act(case_no, "approve", {}, actor="shenpi")  # the town approves …
    finally:
        town.store.close()
    village = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        with pytest.raises(AuthorityError) as err2:
            village.act(case_no, "approve", {}, actor="wangli")
        assert err2.value.code is ErrorCode.NOT_DECIDER
        village.act(
            case_no, "withdraw", {"reason": "申请人撤回"}, actor="wangli"
        )  # … while the village withdraws
    finally:
        village.store.close()
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    states = []
    for code in (VILLAGE, TOWN):
        desk = open_desk(net.node_dir(code), net.clock)
        try:
            case = desk.case(case_no)
            events = desk.events(case_no)
            states.append((case["state"], [(e["event"], e["status"], e["code"]) for e in events]))
        finally:
            desk.store.close()
    assert states[0] == states[1]  # both nodes agree
    state, events = states[0]
    assert state == "approved"  # the town's approval came first
    assert ("withdraw", "refused", "E_CASE_TRANSITION") in events


def test_overdue_is_computed_when_read(net: Network) -> None:
    desk = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        item, materials = proxy_item(desk)
        case = desk.intake(form(item, materials), actor="wangli")
        assert not case["overdue"]
        net.clock.advance(90 * DAY)
        assert desk.case(case["case_no"])["overdue"]
        assert desk.counts()["overdue"] == 1
    finally:
        desk.store.close()


def test_sessions_expire_and_logins_back_off(net: Network) -> None:
    desk = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        clerks = Clerks(desk.db, desk.store.log, VILLAGE, net.clock)
        clerks.add(
            desk.keys, "wangli", "王丽", ["clerk"], hash_password("correct horse battery"), actor="sys:test"
        )
        token, csrf = clerks.start_session("wangli")
        assert clerks.session(token).csrf == csrf
        net.clock.advance(9 * 3600)
        with pytest.raises(AuthorityError) as err:
            clerks.session(token)
        assert err.value.code is ErrorCode.SESSION_EXPIRED
        for _ in range(3):
            with pytest.raises(AuthorityError):
                clerks.check_login("wangli", "wrong password")
        with pytest.raises(AuthorityError) as err:
            clerks.check_login("wangli", "correct horse battery")
        assert err.value.code is ErrorCode.LOGIN_THROTTLED
        net.clock.advance(10)
        clerks.check_login("wangli", "correct horse battery")
        clerks.set_active(desk.keys, "wangli", False, actor="admin")
        with pytest.raises(AuthorityError) as err:
            clerks.check_login("wangli", "correct horse battery")
        assert err.value.code is ErrorCode.ACCOUNT_DISABLED
        assert (
            desk.db.conn.execute(
                "SELECT actor FROM records WHERE kind = 'clerk.set' ORDER BY arrival DESC LIMIT 1"
            ).fetchone()[0]
            == "admin"
        )
    finally:
        desk.store.close()


def test_a_step_taken_after_seeing_another_sorts_after_it_on_a_lagging_clock(net: Network) -> None:
    village = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        item, materials = proxy_item(village)
        case_no = village.intake(form(item, materials), actor="wangli")["case_no"]
    finally:
        village.store.close()
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    net.clock.advance(3600)  # the town's clock runs an hour ahead of the village's
    town = open_desk(net.node_dir(TOWN), net.clock)
    try:
        town.act(case_no, "approve", {}, actor="shenpi")
    finally:
        town.store.close()
    net.clock.advance(-3600)
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    village = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        case = village.act(case_no, "deliver", {"delivery": "pickup"}, actor="wangli")
        assert case["state"] == "delivered"
        steps = [(e["event"], e["status"]) for e in village.events(case_no)]
        assert steps[-2:] == [("approve", "applied"), ("deliver", "applied")], steps
    finally:
        village.store.close()


def resident_id(n: int) -> str:
    body = f"33048119800101{n:03d}"
    return body + mod11_2_check_char(body)


def test_case_numbers_count_up_by_day_past_four_digits(net: Network) -> None:
    desk = open_desk(net.node_dir(VILLAGE), net.clock)
    try:
        item, materials = proxy_item(desk)
        first = desk.intake(form(item, materials, resident_id(1)), actor="wangli")["case_no"]
        second = desk.intake(form(item, materials, resident_id(2)), actor="wangli")["case_no"]
        day = first.rsplit("-", 1)[0]
        assert (first, second) == (f"{day}-0001", f"{day}-0002")
        # A number past 9999 sorts before 9999 as text: the next one still counts on from it.
        conn = desk.db.conn
        conn.execute("CREATE TEMP TABLE copied AS SELECT * FROM cases WHERE case_no = ?", (second,))
        for serial in ("9999", "10000"):
            conn.execute("UPDATE copied SET case_no = ?", (f"{day}-{serial}",))
            conn.execute("INSERT INTO cases SELECT * FROM copied")
        conn.commit()
        third = desk.intake(form(item, materials, resident_id(3)), actor="wangli")["case_no"]
        assert third == f"{day}-10001"
        net.clock.advance(DAY)
        fourth = desk.intake(form(item, materials, resident_id(4)), actor="wangli")["case_no"]
        assert fourth.endswith("-0001") and fourth.rsplit("-", 1)[0] != day
    finally:
        desk.store.close()
