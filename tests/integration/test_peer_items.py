"""Another city's items at our windows (异地代收): Haining's central mirrors Qingpu's real
signed release, the mirror reaches a town and a village over real sync links, the village
takes a case of Qingpu's item in offline with a scanned page, and every refusal on the way."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from central import peer_items, peers, recheck
from central.authority import Central
from core.catalog import Mode
from core.clock import FixedClock
from core.errors import ErrorCode, TongbanError
from core.federation import ACCEPT, DAY, DECIDE, PROXY_INTAKE
from node import config
from node.desk import Desk, IntakeForm, Upload
from node.peer_window import peer_authority, peer_offers
from sync.projection.delegation import ItemAuthority
from sync.projection.peer_items import mirrored, mirrored_item, newest_mirror
from sync.record import kinds
from sync.record.envelope import Payload, seal
from sync.record.filestore import FileStore
from sync.record.keys import NodeKeys, load_key_file
from sync.record.log import decode_stored, envelopes_of_kind, stored_record
from sync.record.outcome import Status
from sync.record.trust import current_key
from tests.helpers import CITY, TOWN, VILLAGE, open_desk
from tests.integration.peercities import (
    QINGPU,
    QINGPU_NAME,
    THIRD,
    Cities,
    build,
    first_release,
    mirror_first,
    release_of,
)
from tests.integration.syncnet import GOOD_ID, City, next_record
from tests.scanfiles import jpeg
from tongban.cli import main


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Cities:
    """Both cities with Qingpu's release 1 mirrored at Haining and synced to its town and
    village; tests that change them build their own."""
    built = build(tmp_path_factory.mktemp("peer-items"))
    mirror_first(built)
    return built


def form_for(desk_items: list[ItemAuthority], key: str, **changes: Any) -> IntakeForm:
    auth = next(a for a in desk_items if a.key == key)
    form = IntakeForm(
        item=key, name="王秀英", doc_type="resident_id", doc_no=GOOD_ID, phone="13800138000",
        materials=tuple(m.code for m in auth.item.materials if m.required),
    )  # fmt: skip
    return dataclasses.replace(form, **changes)


def files_of(city: City, code: str) -> FileStore:
    return FileStore(config.load(city.home(code)).database_path.parent / "files")


def key_of(cities: Cities, n: int = 0) -> str:
    return f"{cities.items[n]}@{QINGPU}"


# -- the mirror, at central ---------------------------------------------------------------------


def test_the_mirror_holds_the_pinned_items_exactly_as_the_peer_released_them(cities: Cities) -> None:
    envelope, _ = first_release(cities)
    with cities.central() as central:
        held = newest_mirror(central.store.db, QINGPU)
        assert held is not None and held.cat == 1 and held.name == QINGPU_NAME
        foreign_items = stored_items(cities, envelope)
        assert [i.to_body() for i in held.items] == [foreign_items[c] for c in cities.items]
        # The newest release (version 2) is not taken: the scope pins version 1.
        assert peer_items.mirror(central, QINGPU, *release_of(cities, cities.qingpu)) is None
        # The same release again changes nothing.
        assert peer_items.mirror(central, QINGPU, *first_release(cities)) is None
        assert len(newest_mirror_records(central)) == 1


def stored_items(cities: Cities, envelope: bytes) -> dict[str, dict[str, Any]]:
    return {i["code"]: i for i in decode_stored(envelope).body["items"]}


def newest_mirror_records(central: Central) -> list[bytes]:
    return envelopes_of_kind(central.store.db, kinds.PEER_ITEMS)


def test_a_release_of_a_third_city_is_refused(cities: Cities) -> None:
    third_release = release_of(cities, cities.third)
    with cities.central() as central:
        with pytest.raises(TongbanError) as as_qingpu:
            peer_items.mirror(central, QINGPU, *third_release)
        assert as_qingpu.value.code is ErrorCode.PEER_CHAIN
        with pytest.raises(TongbanError) as unknown:
            peer_items.mirror(central, THIRD, *third_release)
        assert unknown.value.code is ErrorCode.PEER_UNKNOWN
        assert len(newest_mirror_records(central)) == 1


def test_a_release_not_signed_by_the_peer_catalog_key_is_refused(cities: Cities) -> None:
    envelope, chain = first_release(cities)
    with cities.central(cities.qingpu) as qingpu:
        heartbeat = current_key(qingpu.store.db, "heartbeat")
        assert heartbeat is not None
        named = stored_record(qingpu.store.db, heartbeat.record_id)
        assert named is not None
        body = dict(decode_stored(envelope).body)
        forged = forge(qingpu, kinds.CATALOG_RELEASE, body, qingpu.keys.for_role("heartbeat"))
        peers_key = current_key(qingpu.store.db, "peers")
        assert peers_key is not None
        certificate = stored_record(qingpu.store.db, peers_key.record_id)
        assert certificate is not None
        peer_cert = qingpu.store.log.get(
            bytes(qingpu.store.db.conn.execute("SELECT record_id FROM peer_certs").fetchone()[0])
        )
        assert peer_cert is not None
    with cities.central() as central:
        cases = [
            (forged, [named.envelope]),  # Qingpu's heartbeat key signed a release
            (envelope, []),  # the catalog key, but no chain naming it
            (peer_cert.envelope, [certificate.envelope]),  # a record of Qingpu, not a release
        ]
        for release, links in cases:
            with pytest.raises(TongbanError) as err:
                peer_items.mirror(central, QINGPU, release, links)
            assert err.value.code is ErrorCode.PEER_CHAIN, err.value
        tampered = bytearray(envelope)
        tampered[-5] ^= 1
        with pytest.raises(TongbanError) as bad:
            peer_items.mirror(central, QINGPU, bytes(tampered), chain)
        assert bad.value.code is ErrorCode.SIGNATURE_INVALID
        assert len(newest_mirror_records(central)) == 1


def forge(central: Central, kind: str, body: dict[str, Any], signer: NodeKeys) -> bytes:
    """Central's next record, signed with ``signer`` (a key of another role)."""
    log = central.store.log
    head, anchor = log.head(central.code), log.anchor()
    assert head is not None and anchor is not None
    payload = Payload(
        net=anchor.net, kind=kind, origin=central.code, kid=signer.kid, seq=head.seq + 1,
        prev=head.id, ts=log.clock.now(), body=body, actor="sys:test",
    )  # fmt: skip
    return seal(payload, signer).envelope


# -- at the window --------------------------------------------------------------------------------


def test_the_town_and_the_village_offer_the_mirrored_items_and_the_city_hall_none(cities: Cities) -> None:
    for code in (TOWN, VILLAGE):
        with cities.haining.desk(code) as desk:
            offered = desk.peer_items()
            assert [a.key for a in offered] == [key_of(cities, 0), key_of(cities, 1)]
            assert all(a.owner_name == QINGPU_NAME and a.decider == CITY and a.grant is None for a in offered)
            keys = desk.holdings.finder_keys()
            assert "上海市青浦区" in keys[key_of(cities)].words and "qingpu" in keys[key_of(cities)].words
            # The same code of our own catalog is a different item.
            assert cities.items[0] in keys
    opened = cities.haining.open(TOWN)
    try:
        db, now = opened.log.db, cities.clock.now()
        rows = mirrored(db)
        # The same store read as a city hall's window: it takes in no other city's item.
        assert peer_offers(db, CITY, "city", now) == []
        with pytest.raises(TongbanError) as err:
            peer_authority(db, CITY, "city", key_of(cities), now)
        assert peer_authority(db, CITY, "town", key_of(cities), now).owner == QINGPU
    finally:
        opened.close()
    assert err.value.code is ErrorCode.PEER_SCOPE and "村" in err.value.text("zh")
    assert {(m.peer, m.item.code, m.cat) for m in rows} == {(QINGPU, c, 1) for c in cities.items}


def test_an_expired_agreement_offers_nothing_and_refuses_the_intake(cities: Cities) -> None:
    later = FixedClock(t=cities.clock.now() + 31 * DAY, step=1)
    with open_desk(cities.haining.net.node_dir(VILLAGE), later) as desk:
        assert desk.peer_items() == []
        before = case_count(desk)
        with pytest.raises(TongbanError) as err:
            desk.intake(form_for_key(cities, key_of(cities)), actor="wangli")
        assert err.value.code is ErrorCode.PEER_EXPIRED
        assert "过期" in err.value.text("zh")
        assert case_count(desk) == before


def form_for_key(cities: Cities, key: str) -> IntakeForm:
    with cities.central() as central:  # as the first mirror (version 1) listed it
        item = mirrored_item(central.store.db, QINGPU, key.split("@")[0], 1)
    assert item is not None
    return IntakeForm(
        item=key, name="王秀英", doc_type="resident_id", doc_no=GOOD_ID, phone="13800138000",
        materials=tuple(m.code for m in item.materials if m.required),
    )  # fmt: skip


def case_count(desk: Desk) -> int:
    return len(envelopes_of_kind(desk.db, kinds.CASE_INTAKE))


# -- the whole way: the village offline, then up; revoked ---------------------------------------------


def test_the_village_takes_a_case_in_offline_it_goes_up_and_a_revocation_stops_new_ones(
    tmp_path: Path,
) -> None:
    cities = build(tmp_path)
    mirror_first(cities)
    city = cities.haining
    key = key_of(cities, 0)
    with city.desk(VILLAGE) as desk:  # no server runs: the village is offline
        auth = next(a for a in desk.peer_items() if a.key == key)
        material = auth.item.materials[0].code
        form = dataclasses.replace(
            form_for(desk.peer_items(), key), uploads=(Upload(material, "IMG_0001.jpg", jpeg()),)
        )
        case = desk.intake(form, actor="wangli")
        intake = desk.intake_of(case.case_no)
        assert intake is not None
        assert (intake.owner, intake.mode, intake.decider, intake.grant) == (QINGPU, Mode.PROXY, CITY, None)
        assert (intake.item, intake.cat, intake.limit) == (auth.item.code, 1, auth.item.time_limit_days)
        assert len(intake.files) == 1 and intake.files[0].material == material
        assert [e.event for e in desk.events(case.case_no)] == ["forward"]
        assert case.state == "forwarded"
    with city.serving(CITY, TOWN):
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok
    assert city.count(CITY, "SELECT state FROM cases WHERE case_no = ?", case.case_no) == "forwarded"
    assert city.count(TOWN, "SELECT count(*) FROM cases WHERE case_no = ?", case.case_no) == 1
    page = intake.files[0].hex
    assert all(files_of(city, code).has(page) for code in (VILLAGE, TOWN))  # the scan went up too
    city.verify_all()  # every store's projections, peer_items among them, rebuilt from the log agree
    with cities.central() as central:  # no grant named, none needed: the agreement held then
        assert recheck.recheck(central.store, CITY) >= 1
        assert case.case_no not in {c.case_no for c in recheck.flagged(central.store)}
        assert recheck.counts(central.store).get("ok", 0) >= 1

    # A renewal pins the second item to Qingpu's version 2: mirroring that release offers it
    # from there, and the first item still from version 1.
    with cities.central() as central:
        pins = [(cities.items[0], 1), (cities.items[1], 2)]
        peers.renew(central, QINGPU, scope=peers.scope_of(pins, [PROXY_INTAKE], [ACCEPT, DECIDE]))
        record = peer_items.mirror(central, QINGPU, *release_of(cities, cities.qingpu))
        assert record is not None and record.body["cat"] == 2
        assert [i["code"] for i in record.body["items"]] == [cities.items[1]]
        # Release 1 again: its item the scope still pins there is mirrored already.
        assert peer_items.mirror(central, QINGPU, *first_release(cities)) is None
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
    with city.desk(VILLAGE) as desk:
        assert {(a.key, a.owner_cat) for a in desk.peer_items()} == {(key, 1), (key_of(cities, 1), 2)}
        assert desk.check_intake(form_for_key(cities, key)).authority.owner_cat == 1

    with cities.central() as central:
        peers.revoke(central, QINGPU, "协议终止")
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
    with city.desk(VILLAGE) as desk:
        assert desk.peer_items() == []
        before = case_count(desk)
        with pytest.raises(TongbanError) as err:
            desk.intake(form_for_key(cities, key), actor="wangli")
        assert err.value.code is ErrorCode.PEER_REVOKED
        assert case_count(desk) == before


# -- at ingest, every node -----------------------------------------------------------------------------


def test_an_intake_of_another_city_item_not_mirrored_is_refused_at_ingest(cities: Cities) -> None:
    city = cities.haining
    with city.desk(VILLAGE) as desk:
        good = form_for(desk.peer_items(), key_of(cities))
        checked = desk.check_intake(good)
        assert checked.authority.owner == QINGPU
    keys = load_key_file(city.home(VILLAGE) / "keys" / "node.key")
    base = {
        "case": f"{VILLAGE}-20261207-9001", "item": cities.items[0], "item_name": "x", "cat": 1,
        "mode": "proxy", "decider": CITY, "applicant": {"name": "王秀英", "doc_type": "resident_id",
        "doc_no": GOOD_ID, "phone": "13800138000"}, "materials": [], "notes": "", "limit": 5,
        "deadline": "2026-12-14", "flags": [], "owner": QINGPU,
    }  # fmt: skip
    wrong = [
        {**base, "cat": 2},  # not mirrored at that version
        {**base, "owner": "cn-999999"},  # a city never mirrored
        {**base, "decider": TOWN},  # not carried by our central
        {**base, "mode": "direct"},  # not a proxy case
    ]
    for body in wrong:
        envelope = next_record(city, VILLAGE, keys, kinds.CASE_INTAKE, body)
        opened = city.open(TOWN)
        try:
            outcome = opened.log.ingest(envelope, "test")
        finally:
            opened.close()
        assert outcome.status is Status.REJECTED and outcome.code is ErrorCode.PEER_SCOPE, (body, outcome)
    assert city.count(TOWN, "SELECT count(*) FROM cases WHERE case_no = ?", base["case"]) == 0
    # The same intake, mirrored at its version and carried by our central, is taken.
    opened = city.open(TOWN)
    try:
        outcome = opened.log.ingest(next_record(city, VILLAGE, keys, kinds.CASE_INTAKE, base), "test")
    finally:
        opened.close()
    assert outcome.status is Status.APPENDED, outcome
    assert city.count(TOWN, "SELECT count(*) FROM cases WHERE case_no = ?", base["case"]) == 1


def test_the_release_travels_by_hand_export_release_then_peer_items(cities: Cities, tmp_path: Path) -> None:
    out = tmp_path / "qingpu-release.cbor"
    runner = CliRunner()
    exported = runner.invoke(main, ["central", "peer", "export-release", str(cities.qingpu), str(out)])
    assert exported.exit_code == 0, exported.output
    envelope, chain = peer_items.read_release_file(out.read_bytes())
    assert (envelope, chain) == release_of(cities, cities.qingpu)
    imported = runner.invoke(
        main,
        [
            "central",
            "peer",
            "items",
            str(cities.haining.net.central_dir),
            "--net",
            QINGPU,
            "--release",
            str(out),
        ],
    )
    assert imported.exit_code == 0, imported.output
    assert "nothing new to mirror" in imported.output  # version 2: the scope pins version 1
    listed = runner.invoke(main, ["central", "peer", "list", str(cities.haining.net.central_dir)])
    assert f"mirrored from its catalog version 1: {' '.join(cities.items)}" in listed.output
    unknown = runner.invoke(
        main,
        [
            "central",
            "peer",
            "items",
            str(cities.haining.net.central_dir),
            "--net",
            THIRD,
            "--release",
            str(out),
        ],
    )
    assert unknown.exit_code != 0 and ErrorCode.PEER_UNKNOWN.value in unknown.output + (unknown.stderr or "")
