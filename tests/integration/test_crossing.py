"""A case that crosses: taken in at a Haining village for Qingpu, accepted (受理) by Qingpu's
central and decided by a Qingpu town, its acceptance and decision back at the village, each
step a signed record checked along its chain; and the refusals of what a peer may not send.

Two real cities (two genesis records, two catalogs). The records move between the nodes of
each city as its sync would carry them (``relay``) and between the centrals as the link
between them hands over its messages (the outbox's messages, in order, to the peer's
``Crossing.deliver``) — the link's own tests run it over ZeroMQ."""

from __future__ import annotations

import pytest

from central import authority, peer_link_store, peers
from central.crossing_store import IN, OUT, by_their_case
from central.department.store import DepartmentStore
from core.carried import Carried
from core.cases import CaseEvent, Event
from core.errors import AuthorityError, ErrorCode
from core.intake import Intake
from sync.projection import case_queries
from sync.projection.catalog import current_catalog
from sync.record import codec, keys, kinds
from sync.record.log import decode_stored
from tests.helpers import TOWN, VILLAGE, add_department, relay
from tests.integration.crossnet import (
    HAINING,
    QINGPU,
    QP_TOWN,
    Cities,
    case_at,
    cross,
    deliver,
    down,
    messages,
    page,
    peer_case_at,
    refused,
    take_in,
    up,
)  # fmt: skip
from tests.integration.syncnet import GOOD_ID

__all__ = ["cities"]
from tests.integration.crossnet import cities


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


def test_a_decision_signed_by_a_node_its_city_revoked_is_refused(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    number = take_in(c)
    up(c)
    cross(c, hn, qp, HAINING, QINGPU)
    last = cross(c, qp, hn, QINGPU, HAINING)
    relay(qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    from node.desk import Desk

    with Desk.open(c.qingpu.node_dir(QP_TOWN), c.clock) as desk:
        [theirs] = [r.case_no for r in desk.queue()]
    # Qingpu revokes its town (a stolen key, say) before the town's decision reaches its central.
    with authority.open_central(qp, c.clock) as central:
        authority.revoke_node(central, QP_TOWN, reason="密钥遗失")
    with Desk.open(c.qingpu.node_dir(QP_TOWN), c.clock) as desk:  # offline: it does not know yet
        desk.act(theirs, "approve", {}, "shenpi")
        decision = [e for e in desk.store.log.envelopes()][-1][1]
    # The revocation crosses to Haining; a Qingpu central that carried the decision anyway
    # would be refused at Haining's door.
    cross(c, qp, hn, QINGPU, HAINING, last)
    with Desk.open(c.qingpu.node_dir(QP_TOWN), c.clock) as desk:
        from sync.record.foreign import chain_of

        record = decode_stored(decision)
        links = chain_of(desk.db, record)
    forged = codec.encode({"t": "step", "env": decision, "chain": links})
    assert refused(c, hn, QINGPU, forged) == ErrorCode.PEER_NODE_REVOKED.value
    assert case_at(c.haining.net.node_dir(VILLAGE), number, c.clock).state == "forwarded"


def test_a_department_of_the_owning_city_decides_and_its_decision_comes_back(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    with authority.open_central(qp, c.clock) as central:
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        department = catalog.item(c.item).department
    dept = add_department(c.qingpu, "310118MZ", (c.item,), department, name="青浦区民政局审批科")
    number = take_in(c)
    up(c)
    cross(c, hn, qp, HAINING, QINGPU)
    with authority.open_central(qp, c.clock) as central:
        accepted = by_their_case(central.store.db, HAINING, number, IN)
        assert accepted is not None
        row = case_queries.case(central.store.db, accepted.case_no)
        assert row is not None and row.decider == "310118MZ"  # the department that lists the item
        held = [e for _, e in central.store.log.envelopes()]
    with DepartmentStore.open(dept / "department.db", c.clock) as store:
        for envelope in held:  # what central's outbox would publish to it
            store.log.ingest(envelope, "central")
        own = keys.load_key_file(dept / "keys" / "department.key")
        body = {"case": accepted.case_no, **CaseEvent(Event.APPROVE, c.clock.now(), reason="准予").to_body()}
        decision = store.log.append_local(own, "310118MZ", kinds.CASE_EVENT, body, actor="huzheng")
        mine = [e for _, e in store.log.envelopes() if decode_stored(e).origin == "310118MZ"]
    with authority.open_central(qp, c.clock) as central:
        for envelope in mine:  # what the department's link hands central over RPC
            central.store.log.ingest(envelope, "310118MZ")
        assert case_queries.case(central.store.db, accepted.case_no).state == "approved"  # type: ignore[union-attr]
    cross(c, qp, hn, QINGPU, HAINING)
    down(c)
    shown = case_at(c.haining.net.node_dir(VILLAGE), number, c.clock)
    assert shown.state == "approved"
    assert decision.id  # the department's own record, carried inside Haining central's step
