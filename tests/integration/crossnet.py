"""Two real cities for the tests of cases that cross: Haining (central, a town, villages) and
Qingpu (a central, a town that decides its items), agreed both ways, Qingpu's release
mirrored at Haining and synced down to its village.

The records move between the nodes of each city as its sync would carry them (``relay``)
and between the centrals as the link between them hands over its messages (the outbox's
messages, in order, to the peer's ``Crossing.deliver``); the link's own tests run it over
ZeroMQ, and the demo's test runs all of it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

import pytest

from central import authority, peer_items, peer_link_store, peers
from central.crossing import Crossing
from central.crossing_store import peer_case
from core.catalog import Mode
from core.clock import FixedClock, SystemClock
from core.errors import AuthorityError, RecordError
from core.federation import ACCEPT, DECIDE, DELIVER, INTAKE, PROXY_INTAKE
from node.desk import IntakeForm
from sync.projection import case_queries
from sync.projection.catalog import current_catalog
from sync.record import codec
from sync.record.db import transaction
from sync.record.keys import fingerprint
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
           modes: list[str], roles: list[str], clock: FixedClock) -> None:  # fmt: skip
    """``central_dir`` proposes and confirms an agreement with ``peer`` (the fingerprint typed back)."""
    with authority.open_central(central_dir, clock) as central:
        scope = peers.scope_of(items, modes, roles)
        peers.propose(central, peer=peer, name=name, root_pk=root_pk, scope=scope)
        peers.confirm(central, peer, fingerprint(root_pk))


class Clocked(Protocol):
    """Two cities sharing one clock (this module's :class:`Cities`, or the joint tests')."""

    @property
    def clock(self) -> FixedClock: ...


def _root(central_dir: Path, clock: object) -> bytes:
    with authority.open_central(central_dir, clock) as central:  # type: ignore[arg-type]
        return peers.own_root(central)


def qingpu_city(root: Path, clock: FixedClock) -> Network:
    """Qingpu: a central of its own (its genesis, the demo catalog published) and a town."""
    from core.catalog_data import items_from_data

    fp = authority.init(root / "qingpu" / "central", code=QP, name="上海市青浦区", net=None, clock=clock,
                        random=seeded_random("qingpu"))  # fmt: skip
    qingpu = Network(root / "qingpu", clock, fp)
    qingpu.add_node(QP_TOWN, "town", QP, name="赵巷镇便民服务中心")
    with authority.open_central(qingpu.central_dir, clock) as central:
        authority.publish_catalog(central, items_from_data(demo_file("catalog.yaml")["items"]))
    return qingpu


@pytest.fixture()
def cities(tmp_path: Path) -> Cities:
    haining = build_city(tmp_path / "haining")
    clock = haining.clock
    qingpu = qingpu_city(tmp_path, clock)
    with authority.open_central(qingpu.central_dir, clock) as central:
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
    scope, modes = [(item.code, cat)], [PROXY_INTAKE]
    _agree(
        haining.net.central_dir,
        QINGPU,
        "上海市青浦区",
        qp_root,
        scope,
        modes,
        [ACCEPT, DECIDE, DELIVER],
        clock,
    )
    _agree(qingpu.central_dir, HAINING, "海宁市", hn_root, scope, modes, [INTAKE], clock)
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


def cross(c: Clocked, src: Path, dst: Path, from_net: str, to_net: str, after: int = 0) -> int:
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


def refused(c: Clocked, dst: Path, from_net: str, data: bytes) -> str:
    with pytest.raises((AuthorityError, RecordError)) as caught:
        deliver(dst, from_net, data, c.clock)
    return caught.value.code.value
