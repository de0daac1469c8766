"""Central's role keys, their rotation, root rotation and the heartbeat, through real sync.

A village that was offline through every rotation catches up in one session and checks
each record against exactly the key that was valid at its place in central's chain; a
record signed with a retired key, with a key of the wrong role, or a root hand-over
without the new root's proof is refused wherever it arrives, and nothing stored changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central import authority, heartbeat
from central.keyring import CentralKeyring
from core.catalog_data import items_from_data
from core.errors import ErrorCode, RecordError
from sync.projection.heartbeat import latest_heartbeat
from sync.record import kinds
from sync.record.keys import NodeKeys, generate, load_key_file
from sync.record.outcome import Status
from sync.record.trust import all_keys, current_key, root_proof_message
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncnet import City, build_city, delegate, next_record, take_in
from tongban.demo import demo_file


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_city(tmp_path)


def _central(city: City) -> authority.Central:
    return authority.open_central(city.net.central_dir, city.clock)


def forge(city: City, key: NodeKeys, kind: str, body: dict[str, Any]) -> bytes:
    """A record of central at its next seq, signed with ``key`` (whatever its role)."""
    return next_record(city, CITY, key, kind, body)


def key_file(city: City, role: str, kid: bytes) -> NodeKeys:
    with _central(city) as central:
        return load_key_file(central.keys.path_for(role, kid))


def refused_at(city: City, code: str, envelope: bytes) -> ErrorCode | None:
    """Ingest ``envelope`` at ``code``'s store; the refusal code; asserts nothing else changed."""
    opened = city.open(code)
    try:
        before = opened.log.count(), _keys_of(opened.log.db)
        outcome = opened.log.ingest(envelope, "test")
        assert outcome.status is Status.REJECTED, outcome
        assert (opened.log.count(), _keys_of(opened.log.db)) == before
        return outcome.code
    finally:
        opened.close()


def _keys_of(db: Any) -> list[Any]:
    return [(k.kid, k.role, k.until_seq) for k in all_keys(db)]


def _release_body(city: City, version: int) -> dict[str, Any]:
    from core.catalog import CatalogRelease

    items = items_from_data(demo_file("catalog.yaml")["items"])
    now = city.clock.now()
    return CatalogRelease(version=version, issued_at=now, expires_at=now + 86_400 * 30, items=items).to_body()


def test_init_names_a_key_for_every_role_and_each_signs_only_its_kinds(city: City) -> None:
    with _central(city) as central:
        roles = {k.role for k in all_keys(central.store.db) if k.until_seq is None}
        assert roles == {"root", "certs", "catalog", "grants", "heartbeat", "peers"}
        rows = central.store.db.conn.execute(
            "SELECT r.kind, k.role FROM records r JOIN central_keys k ON k.kid = r.kid WHERE r.origin = ?",
            (CITY,),
        ).fetchall()
        by_kind = {kind: role for kind, role in rows}
        assert by_kind[kinds.NODE_CERT] == "certs"
        assert by_kind[kinds.CATALOG_RELEASE] == "catalog"
        assert by_kind[kinds.GRANT_ISSUE] == "grants"
        assert by_kind[kinds.KEY_ROLE] == "root"
        root = current_key(central.store.db, "root")
        certs = current_key(central.store.db, "certs")
        assert root is not None and certs is not None
    root_keys = key_file(city, "root", root.kid)
    certs_keys = key_file(city, "certs", certs.kid)
    # The root may not sign a release once the catalog role has a key; nor may the certs key.
    assert refused_at(city, CITY, forge(city, root_keys, kinds.CATALOG_RELEASE, _release_body(city, 2))) is (
        ErrorCode.KEY_ROLE
    )
    assert refused_at(city, CITY, forge(city, certs_keys, kinds.CATALOG_RELEASE, _release_body(city, 2))) is (
        ErrorCode.KEY_ROLE
    )


def test_rotations_reach_a_village_that_was_offline_throughout(city: City) -> None:
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok
        assert delegate(city, VILLAGE) > 0
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
        with _central(city) as central:
            old_catalog = current_key(central.store.db, "catalog")
            old_root = current_key(central.store.db, "root")
            authority.rotate_key(central, "catalog")
            authority.rotate_key(central, "certs")
            authority.rotate_root_key(central)
            authority.rotate_key(central, "catalog")  # named by the new root
            authority.rotate_key(central, "heartbeat")
            record, release = authority.publish_catalog(
                central, items_from_data(demo_file("catalog.yaml")["items"])
            )
            heartbeat.publish(central)
            expected = _keys_of(central.store.db)
        assert city.sync(TOWN).ok  # the village stays offline while the town catches up
        result = city.sync(VILLAGE)
        assert result.ok and not result.summary.rejected
    village = city.open(VILLAGE)
    try:
        assert _keys_of(village.log.db) == expected
        assert village.log.has(record.id)
        held = village.log.db.conn.execute("SELECT max(version) FROM catalog_releases").fetchone()[0]
        assert held == release.version
        beat = latest_heartbeat(village.log.db)
        assert beat is not None and beat.heads["catalog"] == release.version
    finally:
        village.close()
    city.verify_all()
    assert old_catalog is not None and old_root is not None
    # Whoever still holds a retired key can sign nothing the village accepts.
    stale_catalog = key_file(city, "catalog", old_catalog.kid)
    forged = forge(city, stale_catalog, kinds.CATALOG_RELEASE, _release_body(city, 3))
    assert refused_at(city, VILLAGE, forged) is ErrorCode.KEY_RETIRED
    stale_root = key_file(city, "root", old_root.kid)
    body = {"role": "catalog", "sign_pk": generate().sign_public}
    assert refused_at(city, VILLAGE, forge(city, stale_root, kinds.KEY_ROLE, body)) is ErrorCode.KEY_RETIRED
    # Cases go on with the new keys in place.
    take_in(city, VILLAGE)


def test_a_root_hand_over_without_the_new_roots_proof_is_refused(city: City) -> None:
    with _central(city) as central:
        root = current_key(central.store.db, "root")
        assert root is not None
        net = central.config.central.net
    root_keys = key_file(city, "root", root.kid)
    new, impostor = generate(), generate()
    bad_proof = impostor.sign(root_proof_message(net, root.kid, new.sign_public))
    forged = forge(city, root_keys, kinds.ROOT_ROTATE, {"sign_pk": new.sign_public, "proof": bad_proof})
    assert refused_at(city, CITY, forged) is ErrorCode.ROOT_PROOF
    wrong_net = new.sign(root_proof_message("cn-999999", root.kid, new.sign_public))
    forged = forge(city, root_keys, kinds.ROOT_ROTATE, {"sign_pk": new.sign_public, "proof": wrong_net})
    assert refused_at(city, CITY, forged) is ErrorCode.ROOT_PROOF


def test_a_key_is_never_named_twice(city: City) -> None:
    with _central(city) as central:
        catalog = current_key(central.store.db, "catalog")
        assert catalog is not None
        with pytest.raises(RecordError) as caught:
            central.append(kinds.KEY_ROLE, {"role": "grants", "sign_pk": catalog.sign_pk}, actor="sys:keys")
        assert caught.value.code is ErrorCode.KEY_ROLE
        with pytest.raises(RecordError) as caught:
            central.append(kinds.KEY_ROLE, {"role": "root", "sign_pk": generate().sign_public}, actor="x")
        assert caught.value.code is ErrorCode.KEY_ROLE


def test_a_missing_role_key_file_is_named(city: City) -> None:
    with _central(city) as central:
        current = current_key(central.store.db, "grants")
        assert current is not None
        path = central.keys.path_for("grants", current.kid)
        path.rename(path.with_suffix(".away"))
        with pytest.raises(Exception) as caught:
            CentralKeyring(central.config.key_path, central.store.db).for_role("grants")
        assert getattr(caught.value, "code", None) is ErrorCode.KEY_FILE_MISSING
        assert path.name in str(caught.value)


def test_heartbeat_warns_of_staleness_and_a_clock_behind_but_intake_goes_on(city: City) -> None:
    with _central(city) as central:
        assert latest_heartbeat(central.store.db) is None
        assert heartbeat.due(None, city.clock.now())
        beat = heartbeat.publish(central, validity=3600)
        assert not heartbeat.due(latest_heartbeat(central.store.db), city.clock.now())
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok
        assert delegate(city, VILLAGE) > 0
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
    desk = city.desk(VILLAGE)
    try:
        assert not [b for b in desk.banners() if "HEARTBEAT" in b.code or "CLOCK" in b.code]
        city.clock.set(beat.body["exp"] + 60)  # central is not heard from for over an hour
        assert ErrorCode.HEARTBEAT_STALE.value in [b.code for b in desk.banners()]
        city.clock.set(beat.body["time"] - 3600)  # the village's clock is an hour slow
        banners = {b.code: b.level for b in desk.banners()}
        assert banners[ErrorCode.CLOCK_BEHIND.value] == "error"
    finally:
        desk.store.close()
    case_no = take_in(city, VILLAGE)
    desk = city.desk(VILLAGE)
    try:
        assert ErrorCode.CLOCK_BEHIND.value in desk.case(case_no).flags
    finally:
        desk.store.close()


def test_a_store_from_before_key_roles_learns_its_root_from_the_genesis(tmp_path: Path) -> None:
    """A node store made before ``central_keys`` existed still checks central's records."""
    import sqlite3

    from tests.helpers import make_network

    net = make_network(tmp_path)
    net.add_node(TOWN, "town", CITY)
    db_path = net.node_dir(TOWN) / "node.db"
    with sqlite3.connect(db_path) as conn:
        expected = conn.execute("SELECT kid, role, since_seq FROM central_keys ORDER BY since_seq").fetchall()
        conn.execute("DROP TABLE central_keys")
        conn.execute("DROP TABLE heartbeat")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0007_central_keys'")
    opened = City(net, {}).open(TOWN)  # the migration runs again, as after an upgrade
    try:
        rows = opened.log.db.conn.execute(
            "SELECT kid, role, since_seq FROM central_keys ORDER BY since_seq"
        ).fetchall()
        assert rows == expected and len(rows) == 6
    finally:
        opened.close()
