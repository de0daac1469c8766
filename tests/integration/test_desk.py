"""The service desk on real SQLite stores, with time under the test's control.

Expired and revoked grants, sub-delegation that would widen, crossing steps of two offline
nodes, overdue flags, sessions and login backoff, device tokens, the sync status.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import FixedClock
from core.documents import mod11_2_check_char
from core.errors import AuthorityError, ErrorCode, InputError
from node.clerks import hash_password
from node.desk import Desk, IntakeForm
from tests.helpers import CITY, TOWN, VILLAGE, Network, delegate_demo_items, make_network, open_desk, relay
from tests.integration.syncnet import build_delegated_city, take_in

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
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        assert any(b.code == "E_GRANT_EXPIRED" for b in desk.banners())
        item, materials = proxy_item(desk)
        case = desk.intake(form(item, materials), actor="wangli")
        assert "E_GRANT_EXPIRED" in case.flags
        assert case.state == "forwarded"


def test_revoked_grant_refuses_and_stores_nothing(net: Network) -> None:
    with open_desk(net.node_dir(TOWN), net.clock) as town:
        delegation = town.delegation
        for grant, revoked in delegation.issued():
            if not revoked:
                delegation.revoke(grant.id, "村便民服务中心暂停代办", actor="guanli")
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        before = counts(desk)
        code = desk.db.conn.execute("SELECT items FROM grants WHERE aud = ? LIMIT 1", (VILLAGE,)).fetchone()[
            0
        ]
        item = code.split('"')[1]
        with pytest.raises(AuthorityError) as err:
            desk.intake(form(item, ()), actor="wangli")
        assert err.value.code is ErrorCode.GRANT_REVOKED
        assert counts(desk) == before


def test_sub_delegation_cannot_widen(net: Network) -> None:
    with open_desk(net.node_dir(TOWN), net.clock) as town:
        delegation = town.delegation
        parent = delegation.parents()[0]
        before = counts(town)
        with pytest.raises(AuthorityError) as err:
            delegation.delegate(VILLAGE, parent.id, [*parent.items, "ZZ-0001"], 10, actor="guanli")
        assert err.value.code is ErrorCode.GRANT_WIDENS
        with pytest.raises(AuthorityError) as err:
            delegation.delegate("330481105201", parent.id, list(parent.items), 10, actor="guanli")
        assert err.value.code is ErrorCode.GRANT_AUDIENCE
        assert counts(town) == before


def test_crossing_steps_of_two_offline_nodes_are_kept_and_shown(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as village:
        item, materials = proxy_item(village)
        case_no = village.intake(form(item, materials), actor="wangli").case_no
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    with open_desk(net.node_dir(TOWN), net.clock) as town:
        assert [c.case_no for c in town.queue()] == [case_no]
        with pytest.raises(InputError) as err:
            town.act(case_no, "reject", {"reason": ""}, actor="shenpi")
        # a rejection without its reason is the missing reason's fault, not the state's
        assert err.value.code is ErrorCode.FIELD_REQUIRED and err.value.field == "reason"
        town.act(case_no, "approve", {}, actor="shenpi")  # the town approves …
    with open_desk(net.node_dir(VILLAGE), net.clock) as village:
        with pytest.raises(AuthorityError) as err2:
            village.act(case_no, "approve", {}, actor="wangli")
        assert err2.value.code is ErrorCode.NOT_DECIDER
        village.act(
            case_no, "withdraw", {"reason": "申请人撤回"}, actor="wangli"
        )  # … while the village withdraws
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    states = []
    for code in (VILLAGE, TOWN):
        with open_desk(net.node_dir(code), net.clock) as desk:
            case = desk.case(case_no)
            events = desk.events(case_no)
            states.append((case.state, [(e.event, e.status, e.code) for e in events]))
    assert states[0] == states[1]  # both nodes agree
    state, events = states[0]
    assert state == "approved"  # the town's approval came first
    assert ("withdraw", "refused", "E_CASE_TRANSITION") in events


def test_overdue_is_computed_when_read(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        item, materials = proxy_item(desk)
        case = desk.intake(form(item, materials), actor="wangli")
        assert not case.overdue
        net.clock.advance(90 * DAY)
        assert desk.case(case.case_no).overdue
        assert desk.counts().overdue == 1


def test_sessions_expire_and_logins_back_off(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        clerks = desk.clerks
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
                clerks.check_login("wangli", "wrong password", "10.0.0.9")
        with pytest.raises(AuthorityError) as err:
            clerks.check_login("wangli", "correct horse battery", "10.0.0.9")
        assert err.value.code is ErrorCode.LOGIN_THROTTLED
        clerks.check_login("wangli", "correct horse battery", "10.0.0.7")  # her own window
        net.clock.advance(10)
        clerks.check_login("wangli", "correct horse battery", "10.0.0.9")
        clerks.set_active(desk.keys, "wangli", False, actor="admin")
        with pytest.raises(AuthorityError) as err:
            clerks.check_login("wangli", "correct horse battery", "10.0.0.7")
        assert err.value.code is ErrorCode.LOGIN_FAILED  # a disabled account never says so
        assert (
            desk.db.conn.execute(
                "SELECT actor FROM records WHERE kind = 'clerk.set' ORDER BY arrival DESC LIMIT 1"
            ).fetchone()[0]
            == "admin"
        )


def test_a_step_taken_after_seeing_another_sorts_after_it_on_a_lagging_clock(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as village:
        item, materials = proxy_item(village)
        case_no = village.intake(form(item, materials), actor="wangli").case_no
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    net.clock.advance(3600)  # the town's clock runs an hour ahead of the village's
    with open_desk(net.node_dir(TOWN), net.clock) as town:
        town.act(case_no, "approve", {}, actor="shenpi")
    net.clock.advance(-3600)
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    with open_desk(net.node_dir(VILLAGE), net.clock) as village:
        case = village.act(case_no, "deliver", {"delivery": "pickup"}, actor="wangli")
        assert case.state == "delivered"
        steps = [(e.event, e.status) for e in village.events(case_no)]
        assert steps[-2:] == [("approve", "applied"), ("deliver", "applied")], steps
        signed = village.db.conn.execute(
            "SELECT r.ts FROM case_events e JOIN records r ON r.id = e.record_id WHERE e.case_no = ?"
            " ORDER BY e.at, e.record_id",
            (case_no,),
        ).fetchall()
        assert [e.ts for e in village.events(case_no)] == [ts for (ts,) in signed]


def resident_id(n: int) -> str:
    body = f"33048119800101{n:03d}"
    return body + mod11_2_check_char(body)


def test_case_numbers_count_up_by_day_past_four_digits(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        item, materials = proxy_item(desk)
        first = desk.intake(form(item, materials, resident_id(1)), actor="wangli").case_no
        second = desk.intake(form(item, materials, resident_id(2)), actor="wangli").case_no
        day = first.rsplit("-", 1)[0]
        assert (first, second) == (f"{day}-0001", f"{day}-0002")
        # A number past 9999 sorts before 9999 as text: the next one still counts on from it.
        conn = desk.db.conn
        conn.execute("CREATE TEMP TABLE copied AS SELECT * FROM cases WHERE case_no = ?", (second,))
        for serial in ("9999", "10000"):
            conn.execute("UPDATE copied SET case_no = ?", (f"{day}-{serial}",))
            conn.execute("INSERT INTO cases SELECT * FROM copied")
        conn.commit()
        third = desk.intake(form(item, materials, resident_id(3)), actor="wangli").case_no
        assert third == f"{day}-10001"
        net.clock.advance(DAY)
        fourth = desk.intake(form(item, materials, resident_id(4)), actor="wangli").case_no
        assert fourth.endswith("-0001") and fourth.rsplit("-", 1)[0] != day


def test_device_tokens_keep_only_their_digest_and_stop_when_disabled(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        clerks = desk.clerks
        token = clerks.add_device("kiosk", ["clerk", "clerk"])
        principal = clerks.device(token)
        assert (principal.actor, principal.roles) == ("device:kiosk", frozenset({"clerk"}))
        with pytest.raises(InputError) as err:
            clerks.add_device("kiosk", ["auditor"])
        assert err.value.code is ErrorCode.ACCOUNT_EXISTS
        with pytest.raises(InputError) as err:
            clerks.add_device("printer", ["approver"])
        assert err.value.code is ErrorCode.FIELD_INVALID
        stored = desk.db.conn.execute("SELECT digest FROM device_tokens").fetchall()
        assert len(stored) == 1 and token.encode() not in bytes(stored[0][0])
        clerks.disable_device("kiosk")
        assert [(d.name, d.roles, d.active) for d in clerks.devices()] == [("kiosk", ("clerk",), False)]
        with pytest.raises(AuthorityError) as err2:
            clerks.device(token)
        assert err2.value.code is ErrorCode.TOKEN_INVALID
        with pytest.raises(InputError) as err:
            clerks.disable_device("nobody")
        assert err.value.code is ErrorCode.ACCOUNT_UNKNOWN


def test_a_new_password_ends_the_sessions_and_clears_the_backoff(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        clerks = desk.clerks
        clerks.add(desk.keys, "wangli", "王丽", ["clerk"], hash_password("correct horse battery"), actor="t")
        token, _ = clerks.start_session("wangli")
        for _ in range(4):
            with pytest.raises(AuthorityError):
                clerks.check_login("wangli", "wrong password", "10.0.0.9")
        clerks.set_password("wangli", hash_password("another long password"))
        with pytest.raises(AuthorityError) as err:
            clerks.session(token)
        assert err.value.code is ErrorCode.SESSION_EXPIRED
        clerks.check_login("wangli", "another long password", "10.0.0.9")  # not throttled any more


def test_the_sync_status_is_the_links_own(tmp_path: Path) -> None:
    city = build_delegated_city(tmp_path)  # the village synced last, after its grants were made
    with city.desk(VILLAGE) as desk:
        synced = desk.sync_status()
        assert synced.last_ok is not None and synced.last_attempt is not None
        assert (synced.last_error, synced.waiting_up, synced.waiting_down) == (None, 0, 0)
    take_in(city, VILLAGE)  # the intake and its forward wait to go up
    with city.desk(VILLAGE) as desk:
        assert desk.sync_status().waiting_up == 2
    assert not city.sync(VILLAGE).ok  # no parent serves now: the attempt fails and is noted
    with city.desk(VILLAGE) as desk:
        failed = desk.sync_status()
        assert failed.last_error and failed.waiting_up == 2 and failed.last_ok == synced.last_ok
