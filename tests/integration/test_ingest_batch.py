"""Batched ingest and partial replication: one transaction per batch, sparse origins."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ErrorCode
from sync.projection import standard
from sync.record import codec, kinds
from sync.record.db import open_database
from sync.record.envelope import seal
from sync.record.inspect import verify_store
from sync.record.log import RecordLog, all_dense, decode_stored, dense_for, dense_policy_of
from sync.record.outcome import Status
from sync.record.verify import CHUNK, ThreadVerifier
from sync.schema import log_migrations
from tests.helpers import CITY, TOWN, VILLAGE, fixed_keys
from tests.integration.test_log import World


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def town_chain(world: World, n: int) -> list[bytes]:
    """``n`` town records, held by the authoring central log too (so ids chain)."""
    envelopes = []
    prev = world.town_cert.id
    for seq in range(1, n + 1):
        envelope = world.town_record(seq, prev, software=f"s{seq}")
        outcome = world.central.ingest(envelope, TOWN)
        assert outcome.status is Status.APPENDED
        prev = outcome.record_id or b""
        envelopes.append(envelope)
    return envelopes


def test_a_batch_gives_what_one_by_one_gives(world: World, tmp_path: Path) -> None:
    chain = town_chain(world, 6)
    forged = codec.encode([codec.decode(chain[2])[0], bytes(64)])
    batch = [chain[0], chain[0], forged, chain[2], chain[1], b"\x00", chain[3], chain[5]]
    other = RecordLog(open_database(tmp_path / "other.db", [log_migrations]), world.clock)
    other.install_anchor(world.receiver.db.conn.execute("SELECT envelope FROM records").fetchone()[0])
    for log in (world.receiver, other):
        log.ingest(world.town_cert.envelope, "central")
    one_by_one = [world.receiver.ingest(e, TOWN) for e in batch]
    batched = other.ingest_many(batch, TOWN, verifier=ThreadVerifier(2))
    assert [(o.status, o.code, o.released) for o in batched] == [
        (o.status, o.code, o.released) for o in one_by_one
    ]
    assert [o.status for o in batched] == [
        Status.APPENDED,
        Status.DUPLICATE,
        Status.REJECTED,
        Status.HELD,
        Status.APPENDED,
        Status.REJECTED,
        Status.APPENDED,
        Status.HELD,
    ]
    assert batched[4].released == 1  # #2 let the held #3 in
    assert other.count() == world.receiver.count() == 2 + 4


def test_a_batch_across_verification_jobs_gives_what_one_by_one_gives(world: World, tmp_path: Path) -> None:
    """Three verification jobs' worth: a forged signature, a duplicate and out-of-order
    records in later jobs come out as they do one by one."""
    chain = town_chain(world, 70)
    forged = codec.encode([codec.decode(chain[40])[0], bytes(64)])
    batch = [*chain[:30], chain[3], *chain[31:40], forged, *chain[41:70], chain[30], chain[40]]
    assert len(batch) > 2 * CHUNK
    other = RecordLog(open_database(tmp_path / "other.db", [log_migrations]), world.clock)
    other.install_anchor(world.receiver.db.conn.execute("SELECT envelope FROM records").fetchone()[0])
    for log in (world.receiver, other):
        log.ingest(world.town_cert.envelope, "central")
    one_by_one = [world.receiver.ingest(e, TOWN) for e in batch]
    verifier = ThreadVerifier(2)
    try:
        batched = other.ingest_many(batch, TOWN, verifier=verifier)
    finally:
        verifier.close()
    assert [(o.status, o.code, o.released) for o in batched] == [
        (o.status, o.code, o.released) for o in one_by_one
    ]
    assert batched[30].status is Status.DUPLICATE and batched[40].code is ErrorCode.SIGNATURE_INVALID
    assert batched[-2].released > 0  # #31 let the records held behind it in
    assert other.count() == world.receiver.count() == 2 + 70


def test_a_refused_record_does_not_undo_the_rest_of_its_batch(world: World) -> None:
    chain = town_chain(world, 3)
    world.receiver.ingest(world.town_cert.envelope, "central")
    bad = world.town_record(2, bytes(32))  # wrong prev
    outcomes = world.receiver.ingest_many([chain[0], bad, chain[1], chain[2]], TOWN)
    appended, rejected = Status.APPENDED, Status.REJECTED
    assert [o.status for o in outcomes] == [appended, rejected, appended, appended]
    assert outcomes[1].code is ErrorCode.CHAIN_PREV
    head = world.receiver.head(TOWN)
    assert head is not None and head.seq == 3


def test_a_certificate_earlier_in_the_batch_vouches_for_later_records(world: World) -> None:
    chain = town_chain(world, 2)
    outcomes = world.receiver.ingest_many([world.town_cert.envelope, *chain], "central")
    assert [o.status for o in outcomes] == [Status.APPENDED] * 3


def sparse_receiver(world: World, tmp_path: Path) -> RecordLog:
    """A village's log: the town is a sparse origin there."""
    log = RecordLog(
        open_database(tmp_path / "village.db", [log_migrations]), world.clock, dense=dense_for(VILLAGE, CITY)
    )
    genesis = world.central.db.conn.execute("SELECT envelope FROM records WHERE seq = 1").fetchone()[0]
    log.install_anchor(genesis)
    log.ingest(world.town_cert.envelope, "central")
    return log


def test_a_sparse_origin_accepts_gaps_and_fills_them_from_both_sides(world: World, tmp_path: Path) -> None:
    chain = town_chain(world, 5)
    village = sparse_receiver(world, tmp_path)
    assert village.ingest(chain[3], TOWN).status is Status.APPENDED  # #4 alone
    assert village.ingest(chain[1], TOWN).status is Status.APPENDED  # #2 alone
    # A #3 that does not link to the held #2 is refused outright.
    assert village.ingest(world.town_record(3, bytes(32)), TOWN).code is ErrorCode.CHAIN_PREV
    assert village.ingest(chain[2], TOWN).status is Status.APPENDED  # the genuine #3 fits both
    assert village.ingest(chain[4], TOWN).status is Status.APPENDED
    assert village.count("held") == 0
    assert village.count("forks") == 0


def test_a_sparse_origin_still_catches_a_fork_and_freezes_the_origin(world: World, tmp_path: Path) -> None:
    chain = town_chain(world, 5)
    village = sparse_receiver(world, tmp_path)
    assert village.ingest(chain[3], TOWN).status is Status.APPENDED  # #4 alone
    assert village.ingest(chain[1], TOWN).status is Status.APPENDED  # #2 alone
    # Another #3 whose successor (#4, held) links elsewhere: the town signed two #3.
    other_3 = world.town_record(3, record_id_of(chain[1]), software="other")
    assert village.ingest(other_3, TOWN).status is Status.FORK
    assert village.count("forks") == 1
    # From #3 on the town is frozen: not even the genuine #3 is taken, nor anything after.
    before = village.count()
    for envelope in (chain[2], chain[4], world.town_record(3, bytes(32))):
        outcome = village.ingest(envelope, TOWN)
        assert (outcome.status, outcome.code) == (Status.REJECTED, ErrorCode.CHAIN_FORK)
    assert village.count() == before
    assert village.count("rejected") == 3
    # What came before the fork is not frozen.
    assert village.ingest(chain[0], TOWN).status is Status.APPENDED


def record_id_of(envelope: bytes) -> bytes:
    return decode_stored(envelope).id


def test_the_same_records_are_held_at_a_dense_receiver(world: World) -> None:
    chain = town_chain(world, 4)
    world.receiver.ingest(world.town_cert.envelope, "central")
    assert world.receiver.ingest(chain[3], TOWN).code is ErrorCode.CHAIN_GAP


def test_verify_follows_the_store_policy(world: World, tmp_path: Path) -> None:
    chain = town_chain(world, 4)
    village = sparse_receiver(world, tmp_path)
    village_keys = fixed_keys("village")
    cert = world.central.append_local(
        world.central_keys,
        CITY,
        kinds.NODE_CERT,
        {
            "node": VILLAGE,
            "tier": "village",
            "parent": TOWN,
            "name": "村",
            "sign_pk": village_keys.sign_public,
            "curve_pk": village_keys.curve_public,
            "nbf": 0,
            "exp": 2**40,
            "request": b"",
        },
    )
    village.ingest(cert.envelope, "central")
    village.append_local(village_keys, VILLAGE, kinds.NODE_ENROLLED, {"cert": cert.id, "software": "t"})
    village.ingest(chain[1], TOWN)
    village.ingest(chain[3], TOWN)
    assert dense_policy_of(village.db)(TOWN) is False
    assert dense_policy_of(world.central.db) is all_dense
    report = verify_store(tmp_path / "village.db", [log_migrations], world.clock, standard())
    assert report.ok, report.faults


def test_seal_and_ingest_many_agree_on_a_local_record(world: World) -> None:
    payload = world.town_payload()
    envelope = seal(payload, world.town_keys).envelope
    world.receiver.ingest(world.town_cert.envelope, "central")
    assert world.receiver.ingest_many([envelope, envelope], TOWN)[1].status is Status.DUPLICATE
