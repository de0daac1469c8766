"""Two federated cities for the mirrored items' tests: Haining (central, a town, villages,
syncing over real links) and Qingpu (a central with two catalog releases), agreed both ways;
Haining's scope names two of Qingpu's items at version 1 for 代收代办."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from central import authority, peer_items, peers
from central.authority import Central
from core.catalog import CatalogRelease, Item
from core.catalog_data import items_from_data
from core.clock import FixedClock
from core.federation import ACCEPT, DECIDE, INTAKE, PROXY_INTAKE
from sync.record.keys import fingerprint
from sync.record.log import stored_record
from tests.helpers import CITY, TOWN, VILLAGE, seeded_random
from tests.integration.syncnet import City, build_city
from tongban.demo import demo_file

QINGPU_CODE = "310118"
QINGPU = f"cn-{QINGPU_CODE}"
QINGPU_NAME = "上海市青浦区"
HAINING = f"cn-{CITY}"
THIRD_CODE = "320509"
THIRD = f"cn-{THIRD_CODE}"


@dataclass
class Cities:
    haining: City
    qingpu: Path
    third: Path
    items: tuple[str, str]  # the two items of Qingpu's that Haining's windows take in

    @property
    def clock(self) -> FixedClock:
        return self.haining.clock

    def central(self, home: Path | None = None) -> Central:
        return authority.open_central(home or self.haining.net.central_dir, self.clock)


def init_central(home: Path, code: str, name: str, clock: FixedClock) -> None:
    authority.init(home, code=code, name=name, net=None, clock=clock, random=seeded_random(code))


def agree(
    home: Path,
    clock: FixedClock,
    peer_home: Path,
    peer: str,
    name: str,
    items: list[tuple[str, int]],
    roles: list[str],
) -> None:
    """``home``'s operator proposes an agreement with the city at ``peer_home`` and confirms
    it with the fingerprint that city's operator reads out."""
    with authority.open_central(peer_home, clock) as other:
        root = peers.own_root(other)
    with authority.open_central(home, clock) as central:
        scope = peers.scope_of(items, [PROXY_INTAKE], roles)
        peers.propose(central, peer=peer, name=name, root_pk=root, scope=scope)
        peers.confirm(central, peer, fingerprint(root))


def publish(home: Path, clock: FixedClock, items: Sequence[Item]) -> CatalogRelease:
    with authority.open_central(home, clock) as central:
        return authority.publish_catalog(central, items)[1]


def build(root: Path) -> Cities:
    """Both cities, agreed both ways, nothing mirrored yet; Haining's town and village synced."""
    haining = build_city(root / "haining")
    clock = haining.clock
    qingpu, third = root / "qingpu", root / "third"
    init_central(qingpu, QINGPU_CODE, QINGPU_NAME, clock)
    init_central(third, THIRD_CODE, "苏州市吴江区", clock)
    demo = items_from_data(demo_file("catalog.yaml")["items"])
    first = publish(qingpu, clock, demo)
    publish(qingpu, clock, demo)  # version 2: the scope pins version 1
    publish(third, clock, demo)
    # Two items of Qingpu's whose codes Haining's own catalog uses too.
    chosen = tuple(i.code for i in first.items if i.materials)[:2]
    assert len(chosen) == 2
    # Haining's windows take them in, Qingpu accepts and decides; Qingpu's side says the same
    # of its own items (role intake: its items, taken in by Haining).
    items = [(c, 1) for c in chosen]
    agree(haining.net.central_dir, clock, qingpu, QINGPU, QINGPU_NAME, items, [ACCEPT, DECIDE])
    agree(qingpu, clock, haining.net.central_dir, HAINING, "海宁市", items, [INTAKE])
    with haining.serving(CITY, TOWN):
        assert haining.sync(TOWN).ok and haining.sync(VILLAGE).ok
    return Cities(haining, qingpu, third, (chosen[0], chosen[1]))


def release_of(cities: Cities, home: Path) -> tuple[bytes, list[bytes]]:
    with cities.central(home) as central:
        found = peer_items.release_for_peers(central)
    assert found is not None
    return found


def first_release(cities: Cities) -> tuple[bytes, list[bytes]]:
    """Qingpu's release 1 (its newest is 2), with its chain."""
    _, chain = release_of(cities, cities.qingpu)
    with cities.central(cities.qingpu) as central:
        row = central.store.db.conn.execute(
            "SELECT record_id FROM catalog_releases WHERE version = 1"
        ).fetchone()
        record = stored_record(central.store.db, bytes(row[0]))
    assert record is not None
    return record.envelope, chain


def mirror_first(cities: Cities) -> None:
    with cities.central() as central:
        record = peer_items.mirror(central, QINGPU, *first_release(cities))
    assert record is not None and [i["code"] for i in record.body["items"]] == list(cities.items)
    with cities.haining.serving(CITY, TOWN):
        assert cities.haining.sync(TOWN).ok and cities.haining.sync(VILLAGE).ok
