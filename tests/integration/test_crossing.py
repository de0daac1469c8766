"""A case that crosses: taken in at a Haining village for Qingpu, accepted (受理) by Qingpu's
central and decided by a Qingpu town, its acceptance and decision back at the village, each
step a signed record checked along its chain; and the refusals of what a peer may not send.

Two real cities (two genesis records, two catalogs). The records move between the nodes of
each city as its sync would carry them (``relay``) and between the centrals as the link
between them hands over its messages (the outbox's messages, in order, to the peer's
``Crossing.deliver``) — the link's own tests run it over ZeroMQ."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from central import authority, peer_items, peer_link_store, peers
from central.crossing import Crossing
from central.crossing_store import IN, OUT, by_their_case, peer_case
from core.carried import Carried
from core.cases import CaseEvent, Event
from core.catalog import Mode
from core.clock import SystemClock
from core.errors import AuthorityError, ErrorCode, RecordError
from core.federation import ACCEPT, DECIDE, DELIVER, INTAKE, PROXY_INTAKE
from core.intake import Intake
from node.desk import IntakeForm
from sync.projection import case_queries
from sync.projection.catalog import current_catalog
from sync.record import codec, kinds
from sync.record.db import transaction
from sync.record.log import decode_stored
from tests.helpers import CITY, TOWN, VILLAGE, Network, relay, seeded_random
from tests.integration.syncnet import GOOD_ID, City, build_city
from tongban.demo import demo_file

HAINING = f"cn-{CITY}"
QP = "310118"
QINGPU = f"cn-{QP}"
QP_TOWN = f"{QP}101"


@dataclasses.dataclass
class Cities:
    haining: City
    qingpu: Network
    item: str
    cat: int

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.haining.clock


def _agree(central_dir: Path, peer: str, name: str, root_pk: bytes, items: list[tuple[str, int]],
           roles: list[str], clock: object) -> None:  # fmt: skip
    with authority.open_central(central_dir, clock) as central:  # type: ignore[arg-type]
        scope = peers.scope_of(items, [PROXY_INTAKE], roles)
        peers.propose(central, peer=peer, name=name, root_pk=root_pk, scope=scope)
        from sync.record.keys import fingerprint

        peers.confirm(central, peer, fingerprint(root_pk))


def _root(central_dir: Path, clock: object) -> bytes:
    with authority.open_central(central_dir, clock) as central:  # type: ignore[arg-type]
        return peers.own_root(central)


@pytest.fixture()
def cities(tmp_path: Path) -> Cities:
    haining = build_city(tmp_path / "haining")
    clock = haining.clock
    fp = authority.init(tmp_path / "qingpu" / "central", code=QP, name="上海市青浦区", net=None, clock=clock,
                        random=seeded_random("qingpu"))  # fmt: skip
    qingpu = Network(tmp_path / "qingpu", clock, fp)
    qingpu.add_node(QP_TOWN, "town", QP, name="赵巷镇便民服务中心")
    with authority.open_central(qingpu.central_dir, clock) as central:
        from core.catalog_data import items_from_data

        authority.publish_catalog(central, items_from_data(demo_file("catalog.yaml")["items"]))
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        item = next(
            i for i in catalog.items
            if i.time_limit_days > 0 and not i.fields
            and i.modes.get("town") in (Mode.DIRECT, Mode.SAME_POWER)
        )  # fmt: skip
        authority.grant(central, QP_TOWN, [item.code], item.modes["town"], valid_days=90)
        cat = catalog.version
    hn_root, qp_root = _root(haining.net.central_dir, clock), _root(qingpu.central_dir, clock)
    roles = [ACCEPT, DECIDE, DELIVER]
    _agree(haining.net.central_dir, QINGPU, "上海市青浦区", qp_root, [(item.code, cat)], roles, clock)
    _agree(qingpu.central_dir, HAINING, "海宁市", hn_root, [(item.code, cat)], [INTAKE], clock)
    with authority.open_central(qingpu.central_dir, clock) as central:
        release = peer_items.release_for_peers(central)
    assert release is not None
    with authority.open_central(haining.net.central_dir, clock) as central:
        assert peer_items.mirror(central, QINGPU, *release) is not None
    relay(haining.net.central_dir, haining.net.node_dir(TOWN), clock)
    relay(haining.net.node_dir(TOWN), haining.net.node_dir(VILLAGE), clock)
    relay(qingpu.central_dir, qingpu.node_dir(QP_TOWN), clock)
    return Cities(haining, qingpu, item.code, cat)


def take_in(c: Cities) -> str:
    """A walk-in at the Haining village for Qingpu's item, at the window (offline)."""
    with c.haining.desk(VILLAGE) as desk:
        key = f"{c.item}@{QINGPU}"
        auth = next(a for a in desk.peer_items() if a.key == key)
        form = IntakeForm(
            item=key, name="王秀英", doc_type="resident_id", doc_no=GOOD_ID, phone="13800138000",
            materials=tuple(m.code for m in auth.item.materials if m.required),
        )  # fmt: skip
        return desk.intake(form, actor="wangli").case_no


def up(c: Cities) -> None:
    relay(c.haining.net.node_dir(VILLAGE), c.haining.net.node_dir(TOWN), c.clock, up=True)
    relay(c.haining.net.node_dir(TOWN), c.haining.net.central_dir, c.clock, up=True)


def down(c: Cities) -> None:
    relay(c.haining.net.central_dir, c.haining.net.node_dir(TOWN), c.clock)
    relay(c.haining.net.node_dir(TOWN), c.haining.net.node_dir(VILLAGE), c.clock)


def messages(central_dir: Path, peer: str, clock: object, after: int = 0, *, every: bool = False
             ) -> list[tuple[int, bytes]]:  # fmt: skip
    """The messages ``central_dir`` owes ``peer`` after ``after`` (the case steps; ``every``:
    its catalog releases too)."""
    with authority.open_central(central_dir, clock) as central:  # type: ignore[arg-type]
        waiting = peer_link_store.waiting(central.store.db, peer, after, 1000)
    return [
        (item.seq, item.data) for item in waiting
        if item.data is not None and (every or codec.decode(item.data)["t"] not in ("catalog", "void"))
    ]  # fmt: skip


def deliver(central_dir: Path, peer: str, data: bytes, clock: object) -> None:
    with authority.open_central(central_dir, clock) as central, transaction(central.store.db):  # type: ignore[arg-type]
        Crossing(central).deliver(central.store.db, peer, data)


def cross(c: Cities, src: Path, dst: Path, from_net: str, to_net: str, after: int = 0) -> int:
    """Hand every message ``src`` owes ``to_net`` after ``after`` to ``dst``; the last seq."""
    last = after
    for seq, data in messages(src, to_net, c.clock, after, every=True):
        deliver(dst, from_net, data, c.clock)
        last = seq
    return last


def case_at(home: Path, case_no: str, clock: object, central: bool = False) -> case_queries.CaseRow:
    if central:
        with authority.open_central(home, clock) as opened:  # type: ignore[arg-type]
            row = case_queries.case(opened.store.db, case_no)
    else:
        from node.desk import Desk

        with Desk.open(home, clock) as desk:  # type: ignore[arg-type]
            row = case_queries.case(desk.db, case_no)
    assert row is not None
    return row


def test_a_case_crosses_to_the_owning_city_and_its_decision_comes_back(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    number = take_in(c)
    assert "传送中" in page(c.haining.net.node_dir(VILLAGE), "wangli", number)
    up(c)
    out = peer_case_at(hn, number, c.clock)
    assert out.direction == OUT and out.peer == QINGPU and out.their_case is None
    assert len(messages(hn, QINGPU, c.clock)) == 1  # the intake, with the village's chain
    cross(c, hn, qp, HAINING, QINGPU)
    with authority.open_central(qp, c.clock) as central:
        accepted = by_their_case(central.store.db, HAINING, number, IN)
        assert accepted is not None
        theirs = case_queries.case(central.store.db, accepted.case_no)
        assert theirs is not None and theirs.decider == QP_TOWN and theirs.state == "forwarded"
        assert theirs.name == "王秀英" and theirs.doc_no == GOOD_ID
    # Qingpu's acceptance goes back: the village sees who accepted it, when, with which deadline.
    last = cross(c, qp, hn, QINGPU, HAINING)
    down(c)
    at_village = case_at(c.haining.net.node_dir(VILLAGE), number, c.clock)
    assert at_village.state == "forwarded"
    out = peer_case_at(hn, number, c.clock)
    assert out.their_case == accepted.case_no and out.their_deadline and out.accepted_at
    shown = page(c.haining.net.node_dir(VILLAGE), "wangli", number)
    assert "上海市青浦区已于" in shown and accepted.case_no in shown and out.their_deadline in shown
    # The Qingpu town decides; its decision crosses back and reaches the Haining village.
    relay(qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    from node.desk import Desk

    with Desk.open(c.qingpu.node_dir(QP_TOWN), c.clock) as desk:
        assert [r.case_no for r in desk.queue()] == [accepted.case_no]
    assert f"本件由海宁市窗口代收（对方编号 {number}" in page(
        c.qingpu.node_dir(QP_TOWN), "shenpi", accepted.case_no
    )
    with Desk.open(c.qingpu.node_dir(QP_TOWN), c.clock) as desk:
        desk.act(accepted.case_no, "approve", {}, "shenpi")
    relay(c.qingpu.node_dir(QP_TOWN), qp, c.clock, up=True)
    cross(c, qp, hn, QINGPU, HAINING, last)
    down(c)
    assert case_at(c.haining.net.node_dir(VILLAGE), number, c.clock).state == "approved"
    assert case_at(qp, accepted.case_no, c.clock, central=True).state == "approved"


def page(home: Path, user: str, case_no: str) -> str:
    """The case page of ``case_no`` at ``home``'s clerk web service, as ``user`` sees it."""
    from node.desk import Desk
    from tests.integration.webnode import PASSWORD, login, serve
    from web.accounts import hash_password

    with Desk.open(home, SystemClock()) as desk:
        if desk.clerks.get(user) is None:
            desk.clerks.add(
                desk.keys, user, user, ["clerk", "approver"], hash_password(PASSWORD), actor="sys:test"
            )
    with serve(home) as web:
        assert login(web, user)[0] in (200, 303)
        status, _, html = web.request("GET", f"/cases/{case_no}")
    assert status == 200, html[:400]
    return html


def peer_case_at(home: Path, number: str, clock: object):  # type: ignore[no-untyped-def]
    with authority.open_central(home, clock) as central:  # type: ignore[arg-type]
        found = peer_case(central.store.db, number)
    assert found is not None
    return found


def refused(c: Cities, dst: Path, from_net: str, data: bytes) -> str:
    with pytest.raises((AuthorityError, RecordError)) as caught:
        deliver(dst, from_net, data, c.clock)
    return caught.value.code.value


def test_what_a_peer_may_not_send_is_refused_and_nothing_is_written(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    number = take_in(c)
    up(c)
    [(_, intake_msg)] = messages(hn, QINGPU, c.clock)
    # Sent on by a third city: the carrier is not the city whose record it is.
    assert refused(c, qp, "cn-320509", intake_msg) == ErrorCode.PEER_UNKNOWN.value
    # A record whose bytes a relay changed no longer verifies along its chain.
    msg = codec.decode(intake_msg)
    tampered = bytearray(msg["env"])
    tampered[-1] ^= 1
    bad = codec.encode({**msg, "env": bytes(tampered)})
    assert refused(c, qp, HAINING, bad) == ErrorCode.SIGNATURE_INVALID.value
    # Without the chain the village's key leads nowhere.
    assert refused(c, qp, HAINING, codec.encode({**msg, "chain": []})) == ErrorCode.PEER_CHAIN.value
    cross(c, hn, qp, HAINING, QINGPU)
    # The same intake again: a replay.
    assert refused(c, qp, HAINING, intake_msg) == ErrorCode.PEER_REPLAY.value
    with authority.open_central(qp, c.clock) as central:
        assert len(case_queries.search(central.store.db, "王秀英")) == 1
    # Qingpu's acceptance, handed to Haining as if Haining decided Qingpu's... it names a case
    # Haining sent: fine once; a step naming a case Haining never sent is E_PEER_CASE.
    [(_, accept_msg)] = messages(qp, HAINING, c.clock)
    deliver(hn, QINGPU, accept_msg, c.clock)
    assert refused(c, hn, QINGPU, accept_msg) == ErrorCode.PEER_REPLAY.value
    assert number


def test_a_step_that_says_other_than_the_record_it_carries_is_refused_at_every_store(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    number = take_in(c)
    up(c)
    cross(c, hn, qp, HAINING, QINGPU)
    [(_, accept_msg)] = messages(qp, HAINING, c.clock)
    msg = codec.decode(accept_msg)
    theirs = Intake.from_body(decode_stored(msg["env"]).body)
    carried = Carried(QINGPU, msg["env"], tuple(msg["chain"]))
    lied = CaseEvent(Event.PEER_ACCEPT, c.clock.now(), carried=carried, peer_case=theirs.case,
                     peer_deadline="2099-01-01")  # fmt: skip
    with authority.open_central(hn, c.clock) as central:
        with pytest.raises(AuthorityError) as caught:
            central.append(kinds.CASE_EVENT, {"case": number, **lied.to_body()}, "sys:peers")
        assert caught.value.code is ErrorCode.PEER_CASE
        assert [e.event for e in case_queries.events(central.store.db, number)] == ["forward"]


def test_an_agreement_revoked_by_one_city_is_ended_by_the_other(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    take_in(c)
    up(c)
    [(_, early)] = messages(hn, QINGPU, c.clock)  # a case on its way when the agreement ends
    with authority.open_central(hn, c.clock) as central:
        peers.revoke(central, QINGPU, "协议到期不再续签")
    # What was still owed is withdrawn; the notice of the revocation is what goes.
    [(_, notice)] = messages(hn, QINGPU, c.clock)
    assert codec.decode(notice)["t"] == "revoke"
    deliver(qp, HAINING, notice, c.clock)
    with authority.open_central(qp, c.clock) as central:
        held = peers.peer_state(central.store.db, HAINING)
        assert held is not None and held.revocations
        assert held.revocations[-1].reason.startswith("对方城市已撤销协议：协议到期不再续签")
    # Qingpu's town hears of it with central's chain, like any revocation.
    relay(qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    from node.desk import Desk

    with Desk.open(c.qingpu.node_dir(QP_TOWN), c.clock) as desk:
        town = peers.peer_state(desk.db, HAINING)
        assert town is not None and len(town.revocations) == 1
    # Qingpu refuses at its door what Haining had sent before; Haining sends nothing new.
    assert refused(c, qp, HAINING, early) == ErrorCode.PEER_REVOKED.value
    with authority.open_central(hn, c.clock) as central:
        before = peer_link_store.last_seq(central.store.db, QINGPU)
    relay(hn, c.haining.net.node_dir(TOWN), c.clock)
    relay(c.haining.net.node_dir(TOWN), c.haining.net.node_dir(VILLAGE), c.clock)
    with c.haining.desk(VILLAGE) as desk:  # the window no longer offers Qingpu's items
        assert not [a for a in desk.peer_items() if a.key == f"{c.item}@{QINGPU}"]
    with authority.open_central(hn, c.clock) as central:
        assert peer_link_store.last_seq(central.store.db, QINGPU) == before
