"""A small city for sync tests: central, a town, two villages; sync endpoints on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central import authority
from core.catalog import Mode
from core.catalog_data import items_from_data
from core.clock import FixedClock, SystemClock
from node.desk import Desk, IntakeForm
from sync.link.endpoint import ParentServer
from sync.link.transport import LinkSettings, SyncResult, sync_once
from sync.projection import standard
from sync.projection.catalog import current_catalog
from sync.projection.delegation import split_by_mode
from sync.record.envelope import Payload, seal
from sync.record.inspect import verify_store
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2, Network, make_network, open_desk
from tongban.demo import demo_file
from tongban.homes import OpenedHome, open_home, upstreams

GOOD_ID = "11010519491231002X"


@dataclass
class City:
    net: Network
    endpoints: dict[str, str]

    @property
    def clock(self) -> FixedClock:
        return self.net.clock

    def home(self, code: str) -> Path:
        return self.net.central_dir if code == CITY else self.net.node_dir(code)

    def open(self, code: str) -> OpenedHome:
        opened = open_home(self.home(code), self.clock)
        parent = opened.parent
        if code == VILLAGE_2:  # configured to sync straight to central
            opened.settings = LinkSettings(fallback=self.endpoints.get(CITY, ""), direct_to_central=True)
        elif parent:
            opened.settings = LinkSettings(
                parent=self.endpoints.get(parent, "tcp://127.0.0.1:9"), fallback=self.endpoints.get(CITY, "")
            )
        return opened

    def sync(self, code: str, **options: Any) -> SyncResult:
        opened = self.open(code)
        try:
            return sync_once(opened, upstreams(opened), **options)
        finally:
            opened.close()

    @contextlib.contextmanager
    def serving(self, *codes: str) -> Iterator[dict[str, ParentServer]]:
        servers: dict[str, ParentServer] = {}
        try:
            for code in codes:
                servers[code] = ParentServer(lambda c=code: self.open(c), "tcp://127.0.0.1:*").start()
                self.endpoints[code] = servers[code].endpoint
            yield servers
        finally:
            for server in servers.values():
                server.stop()

    def desk(self, code: str) -> Desk:
        return open_desk(self.net.node_dir(code), self.clock)

    def verify_all(self) -> None:
        from central.store import MIGRATION_SETS as CENTRAL_SETS
        from node.store import MIGRATION_SETS as NODE_SETS

        for code in (CITY, TOWN, VILLAGE, VILLAGE_2):
            sets = CENTRAL_SETS if code == CITY else NODE_SETS
            db = "central.db" if code == CITY else "node.db"
            report = verify_store(self.home(code) / db, sets, self.clock, standard())
            assert report.ok, (code, report.faults)

    def count(self, code: str, sql: str, *params: Any) -> Any:
        opened = open_home(self.home(code), self.clock)
        try:
            return opened.log.db.conn.execute(sql, params).fetchone()[0]
        finally:
            opened.close()


def build_city(root: Path, proxy: tuple[str, ...] = ()) -> City:
    """Enrolled nodes with the demo catalog and the town's root grants, nothing synced yet;
    the town takes in the items of ``proxy`` only (a department decides them)."""
    net = make_network(root, FixedClock(t=SystemClock().now() - 3600, step=1))
    net.add_node(TOWN, "town", CITY, name="许村镇便民服务中心")
    net.add_node(VILLAGE, "village", TOWN, name="新阳村便民服务中心")
    net.add_node(VILLAGE_2, "village", TOWN, name="李家村便民服务中心")
    with authority.open_central(net.central_dir, net.clock) as central:
        if current_catalog(central.store.db) is None:
            authority.publish_catalog(central, items_from_data(demo_file("catalog.yaml")["items"]))
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        codes = [i.code for i in catalog.items if i.code not in proxy]
        for mode, part in split_by_mode(catalog, "town", codes, Mode.SAME_POWER).items():
            authority.grant(central, TOWN, part, mode, valid_days=90)
        if proxy:
            authority.grant(central, TOWN, list(proxy), Mode.PROXY, valid_days=90)
    return City(net, {})


def delegate(city: City, village: str) -> int:
    """The town passes its grants down to ``village``; how many grants it signed."""
    made = 0
    with city.desk(TOWN) as desk:
        delegation = desk.delegation
        for parent in delegation.parents():
            with contextlib.suppress(Exception):
                made += len(delegation.delegate(village, parent.id, list(parent.items), 30, actor="guanli"))
    return made


def proxy_form(desk: Desk, decider: str = TOWN, doc_no: str = GOOD_ID) -> IntakeForm:
    """A complete walk-in for a proxy item ``desk`` may take in and ``decider`` decides."""
    auth = next(a for a in desk.items() if a.mode is Mode.PROXY and a.decider == decider)
    return IntakeForm(
        item=auth.item.code,
        name="王秀英",
        doc_type="resident_id",
        doc_no=doc_no,
        phone="13800138000",
        materials=tuple(m.code for m in auth.item.materials if m.required),
    )


def take_in(city: City, village: str, doc_no: str = GOOD_ID) -> str:
    """A proxy case decided by the town, taken in at ``village``; its number."""
    with city.desk(village) as desk:
        return desk.intake(proxy_form(desk, TOWN, doc_no), actor="wangli").case_no


def build_delegated_city(root: Path) -> City:
    """:func:`build_city`, synced once, with the town's grants passed down to ``VILLAGE``."""
    city = build_city(root)
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok
        assert delegate(city, VILLAGE) > 0
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
    return city


def next_record(city: City, origin: str, key: Any, kind: str, body: dict[str, Any]) -> bytes:
    """``origin``'s next record as it stands at its own store, signed with ``key`` —
    a forgery or a record of a retired or wrong-role key, for refusal tests."""
    source = city.open(origin)
    try:
        head = source.log.head(origin)
        anchor = source.log.anchor()
        assert head is not None and anchor is not None
        payload = Payload(
            net=anchor.net,
            kind=kind,
            origin=origin,
            kid=key.kid,
            seq=head.seq + 1,
            prev=head.id,
            ts=city.clock.now(),
            body=body,
            actor="sys:test",
        )
        return seal(payload, key).envelope
    finally:
        source.close()
