"""A replaced node continues its code's chain from central's copy (central.authority.bundle_for).

The stores are carried between in process (tests.helpers.relay), exactly the records sync
would carry; the playbooks that do this over real links are in test_provisioning.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from central import authority
from core.errors import EnrollmentError, ErrorCode
from node import identity
from node.store import NodeStore
from tests.helpers import CITY, TOWN, VILLAGE, relay, seeded_random
from tests.integration.syncnet import City, build_city, delegate, take_in
from tests.integration.webnode import ID_2


@pytest.fixture
def city(tmp_path: Path) -> City:
    city = build_city(tmp_path)
    net = city.net
    relay(net.central_dir, net.node_dir(TOWN), net.clock)
    delegate(city, VILLAGE)
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    relay(net.central_dir, net.node_dir(VILLAGE), net.clock)
    return city


def up(city: City, village: Path) -> None:
    net = city.net
    relay(net.central_dir, net.node_dir(TOWN), net.clock)  # the new certificate first
    relay(village, net.node_dir(TOWN), net.clock, up=True)
    relay(net.node_dir(TOWN), net.central_dir, net.clock, up=True)


def replace(city: City, *, last_good_seq: int | None = None) -> Path:
    """Revoke the village at central and enroll a new machine for it; its directory."""
    net = city.net
    new = net.root / "new-village"
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.revoke_node(central, VILLAGE, reason="machine lost", last_good_seq=last_good_seq)
        token, _ = authority.issue_enroll_token(central, VILLAGE)
        result = identity.init(
            new,
            tier="village",
            code=VILLAGE,
            name="新阳村",
            parent=TOWN,
            clock=net.clock,
            random=seeded_random("x"),
            token=token,
        )
        _, bundle = authority.enroll(central, result.request_path.read_bytes())
    identity.enroll(new, bundle, clock=net.clock, anchor_fingerprint=net.fingerprint)
    return new


def test_a_replacement_goes_on_after_the_records_central_holds(city: City) -> None:
    net = city.net
    cases = [take_in(city, VILLAGE), take_in(city, VILLAGE, ID_2)]
    up(city, net.node_dir(VILLAGE))
    held = city.count(VILLAGE, "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE)
    new = replace(city)
    with NodeStore.open(new / "node.db", net.clock) as store:
        assert store.log.head(VILLAGE).seq == held + 1  # type: ignore[union-attr]  # node.enrolled
        assert [r[0] for r in store.db.conn.execute("SELECT case_no FROM cases ORDER BY case_no")] == cases
    up(city, new)
    for code in (CITY, TOWN):
        assert city.count(code, "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE) == held + 1
        assert city.count(code, "SELECT count(*) FROM forks") == 0


def test_a_replacement_after_an_earlier_cut_off_is_refused_at_enrollment(city: City) -> None:
    take_in(city, VILLAGE)
    up(city, city.net.node_dir(VILLAGE))
    with pytest.raises(EnrollmentError) as refused:
        replace(city, last_good_seq=1)
    assert refused.value.code is ErrorCode.ENROLL_BUNDLE
