"""What a peer city may not do to a case that crosses, each refused at the receiving central's
door with its stable code and nothing written: outside its scope, a third city's record
passed on, a case sent to another city than it names, a new case under an expired
agreement (while a case begun in time finishes), a record under a root not agreed."""

from __future__ import annotations

from pathlib import Path

from central import authority, peers
from core.errors import ErrorCode
from core.federation import INTAKE, PROXY_INTAKE
from sync.projection import case_queries
from sync.record import codec
from sync.record.foreign import chain_of
from sync.record.keys import fingerprint
from tests.helpers import VILLAGE, relay
from tests.integration.crossnet import (
    HAINING,
    QINGPU,
    QP_TOWN,
    Cities,
    _agree,
    _root,
    case_at,
    cross,
    deliver,
    down,
    messages,
    refused,
    take_in,
    up,
)  # fmt: skip
from tests.integration.crossnet import cities as cities  # the fixture

DAY = 86_400
WUJIANG = "cn-320509"


def third_city(root: Path, c: Cities) -> Path:
    """苏州市吴江区, agreed with Haining (it takes none of Qingpu's items)."""
    home = root / "wujiang" / "central"
    authority.init(home, code="320509", name="苏州市吴江区", net=None, clock=c.clock)
    root_pk = _root(c.haining.net.central_dir, c.clock)
    _agree(home, HAINING, "海宁市", root_pk, [("WJRS-0001", 1)], [PROXY_INTAKE], [INTAKE], c.clock)
    return home


def cases_at(central_dir: Path, c: Cities) -> int:
    with authority.open_central(central_dir, c.clock) as central:
        return len(case_queries.search(central.store.db, "王秀英"))


def test_an_item_outside_the_scope_is_refused(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    take_in(c)
    up(c)
    # Qingpu narrows what Haining may take in for it before the case arrives.
    with authority.open_central(qp, c.clock) as central:
        peers.renew(central, HAINING, scope=peers.scope_of([("QPZZ-0001", c.cat)], [PROXY_INTAKE], [INTAKE]))
    [(_, intake)] = messages(hn, QINGPU, c.clock)
    assert refused(c, qp, HAINING, intake) == ErrorCode.PEER_SCOPE.value
    assert cases_at(qp, c) == 0


def test_a_third_city_s_record_passed_on_by_a_peer_is_refused(cities: Cities, tmp_path: Path) -> None:
    c = cities
    wujiang = third_city(tmp_path, c)
    with authority.open_central(wujiang, c.clock) as central:
        genesis = next(iter(central.store.log.envelopes()))[1]
    passed_on = codec.encode({"t": "step", "env": genesis, "chain": []})
    assert refused(c, c.haining.net.central_dir, QINGPU, passed_on) == ErrorCode.PEER_TRANSITIVE.value


def test_a_case_sent_to_another_city_than_it_names_is_refused(cities: Cities, tmp_path: Path) -> None:
    c = cities
    hn = c.haining.net.central_dir
    wujiang = third_city(tmp_path, c)
    take_in(c)
    up(c)
    [(_, intake)] = messages(hn, QINGPU, c.clock)  # taken in for Qingpu, handed to Wujiang
    assert refused(c, wujiang, HAINING, intake) == ErrorCode.PEER_MISADDRESSED.value
    assert cases_at(wujiang, c) == 0


def test_an_expired_agreement_refuses_new_cases_and_lets_begun_ones_finish(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    begun = take_in(c)
    up(c)
    last_in = cross(c, hn, qp, HAINING, QINGPU)
    back = cross(c, qp, hn, QINGPU, HAINING)
    late = take_in(c)  # taken in while the agreement held, still at Haining when it expires
    up(c)
    c.clock.t += 31 * DAY  # no renewal ran: both cities' cross-certifications expire
    [(_, new_case)] = messages(hn, QINGPU, c.clock, last_in)
    assert refused(c, qp, HAINING, new_case) == ErrorCode.PEER_EXPIRED.value
    relay(qp, c.qingpu.node_dir(QP_TOWN), c.clock)
    from node.desk import Desk

    with Desk.open(c.qingpu.node_dir(QP_TOWN), c.clock) as desk:
        [theirs] = [r.case_no for r in desk.queue()]
        desk.act(theirs, "approve", {}, "shenpi")
    relay(c.qingpu.node_dir(QP_TOWN), qp, c.clock, up=True)
    cross(c, qp, hn, QINGPU, HAINING, back)  # the case begun in time finishes
    down(c)
    assert case_at(c.haining.net.node_dir(VILLAGE), begun, c.clock).state == "approved"
    assert case_at(c.haining.net.node_dir(VILLAGE), late, c.clock).state == "forwarded"


def test_a_record_under_a_root_not_agreed_is_refused(cities: Cities) -> None:
    c = cities
    hn, qp = c.haining.net.central_dir, c.qingpu.central_dir
    take_in(c)
    up(c)
    cross(c, hn, qp, HAINING, QINGPU)
    [(_, accepted)] = messages(qp, HAINING, c.clock)
    # Qingpu hands its root over and names a new key for its cross-city records under it,
    # without a new agreement: what it signs with that key leads to a root Haining never compared.
    with authority.open_central(qp, c.clock) as central:
        old = fingerprint(peers.own_root(central))
        authority.rotate_root_key(central)
        authority.rotate_key(central, "peers")
        assert fingerprint(peers.own_root(central)) != old
        signed = peers.renew(central, HAINING)  # any record of the new key will do
        chain = chain_of(central.store.db, signed)
    forged = codec.encode({"t": "step", "env": signed.envelope, "chain": chain})
    assert refused(c, hn, QINGPU, forged) == ErrorCode.PEER_ROOT_CHANGED.value
    deliver(hn, QINGPU, accepted, c.clock)  # what was signed under the agreed root still counts
