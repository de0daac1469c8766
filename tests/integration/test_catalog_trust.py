"""A node refuses a catalog rollback, a gap and a forged release; it warns on an expired one.

Each refusal is made by the village's own store, offline, with its code, and leaves the
store as it was; an expired release only warns: the walk-in is still taken in, flagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central import authority
from core.catalog import CatalogRelease
from core.catalog_data import items_from_data
from core.errors import ErrorCode
from sync.record import codec, kinds
from sync.record.keys import NodeKeys, load_key_file
from sync.record.outcome import Status
from sync.record.trust import current_key
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncnet import City, build_delegated_city, next_record, take_in
from tongban.demo import demo_file

DAY = 86_400


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_delegated_city(tmp_path)


def _release(city: City, version: int) -> dict[str, Any]:
    now = city.clock.now()
    items = items_from_data(demo_file("catalog.yaml")["items"])
    return CatalogRelease(version=version, issued_at=now, expires_at=now + 30 * DAY, items=items).to_body()


def _catalog_key(city: City) -> NodeKeys:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        key = current_key(central.store.db, "catalog")
        assert key is not None
        return load_key_file(central.keys.path_for("catalog", key.kid))


def _refused_at_village(city: City, envelope: bytes) -> ErrorCode | None:
    village = city.open(VILLAGE)
    try:
        db = village.log.db
        before = (village.log.count(), db.conn.execute("SELECT * FROM catalog_releases").fetchall())
        outcome = village.log.ingest(envelope, "relay")
        assert outcome.status is Status.REJECTED, outcome
        after = (village.log.count(), db.conn.execute("SELECT * FROM catalog_releases").fetchall())
        assert after == before
        return outcome.code
    finally:
        village.close()


def _held_version(city: City) -> int:
    return int(city.count(VILLAGE, "SELECT max(version) FROM catalog_releases"))


def test_a_rollback_and_a_gap_are_refused(city: City) -> None:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        authority.publish_catalog(central, items_from_data(demo_file("catalog.yaml")["items"]))
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
    current = _held_version(city)
    assert current == 2
    key = _catalog_key(city)
    rollback = next_record(city, CITY, key, kinds.CATALOG_RELEASE, _release(city, current))
    assert _refused_at_village(city, rollback) is ErrorCode.CATALOG_ROLLBACK
    older = next_record(city, CITY, key, kinds.CATALOG_RELEASE, _release(city, current - 1))
    assert _refused_at_village(city, older) is ErrorCode.CATALOG_ROLLBACK
    gap = next_record(city, CITY, key, kinds.CATALOG_RELEASE, _release(city, current + 2))
    assert _refused_at_village(city, gap) is ErrorCode.CATALOG_VERSION_GAP
    assert _held_version(city) == current


def test_a_forged_release_is_refused(city: City) -> None:
    current = _held_version(city)
    town_keys = load_key_file(city.net.node_dir(TOWN) / "keys" / "node.key")
    by_town = next_record(city, TOWN, town_keys, kinds.CATALOG_RELEASE, _release(city, current + 1))
    assert _refused_at_village(city, by_town) is ErrorCode.AUTHORITY
    genuine = next_record(city, CITY, _catalog_key(city), kinds.CATALOG_RELEASE, _release(city, current + 1))
    payload_bytes, sig = codec.decode(genuine)
    tampered = codec.encode([payload_bytes, bytes([sig[0] ^ 1]) + sig[1:]])
    assert _refused_at_village(city, tampered) is ErrorCode.SIGNATURE_INVALID
    assert _held_version(city) == current


def test_an_expired_release_warns_and_flags_but_intake_goes_on(city: City) -> None:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        authority.publish_catalog(central, items_from_data(demo_file("catalog.yaml")["items"]), valid_days=1)
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
    city.clock.advance(2 * DAY)
    desk = city.desk(VILLAGE)
    try:
        assert "E_CATALOG_EXPIRED" in {b.code for b in desk.banners() if b.level == "warn"}
    finally:
        desk.store.close()
    case_no = take_in(city, VILLAGE)
    desk = city.desk(VILLAGE)
    try:
        assert "E_CATALOG_EXPIRED" in desk.case(case_no).flags
    finally:
        desk.store.close()
