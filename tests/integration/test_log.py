"""The record log on a real SQLite file: every ingest rule and what it keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2  # the attacker's encoder in one test: ours refuses what it sends
import pytest

from core.clock import FixedClock
from core.errors import ErrorCode, RecordError, StoreError
from sync.record import codec, kinds
from sync.record.db import open_database
from sync.record.envelope import ZERO_ID, Payload, seal, split
from sync.record.keys import NodeKeys
from sync.record.log import RecordLog
from sync.record.outcome import Status
from sync.schema import log_migrations
from tests.helpers import CITY, TOWN, VILLAGE, fixed_keys

NET = "cn-330481"


def genesis_for(central: NodeKeys, clock: FixedClock) -> bytes:
    payload = Payload(
        net=NET,
        kind=kinds.NET_GENESIS,
        origin=CITY,
        kid=central.kid,
        seq=1,
        prev=ZERO_ID,
        ts=clock.now(),
        body={
            "net": NET,
            "code": CITY,
            "name": "海宁市",
            "sign_pk": central.sign_public,
            "curve_pk": central.curve_public,
        },
    )
    return seal(payload, central).envelope


def cert_body(node: NodeKeys, code: str, tier: str, parent: str) -> dict[str, object]:
    return {
        "node": code,
        "tier": tier,
        "parent": parent,
        "name": f"节点{code}",
        "sign_pk": node.sign_public,
        "curve_pk": node.curve_public,
        "nbf": 0,
        "exp": 2**40,
        "request": b"",
    }


class World:
    """Central's log (the author of certs) and a second, receiving log."""

    def __init__(self, tmp: Path) -> None:
        self.clock = FixedClock(step=1)
        self.central_keys = fixed_keys("central")
        self.town_keys = fixed_keys("town")
        self.central = RecordLog(open_database(tmp / "central.db", [log_migrations]), self.clock)
        self.receiver = RecordLog(open_database(tmp / "receiver.db", [log_migrations]), self.clock)
        genesis = genesis_for(self.central_keys, self.clock)
        self.central.install_anchor(genesis)
        self.receiver.install_anchor(genesis)
        self.town_cert = self.central.append_local(
            self.central_keys, CITY, kinds.NODE_CERT, cert_body(self.town_keys, TOWN, "town", CITY)
        )

    def town_payload(self, seq: int = 1, prev: bytes | None = None, **changes: Any) -> Payload:
        """A town record's payload (its first, by default); ``changes`` replace fields."""
        fields: dict[str, Any] = {
            "net": NET,
            "kind": kinds.NODE_ENROLLED,
            "origin": TOWN,
            "kid": self.town_keys.kid,
            "seq": seq,
            "prev": self.town_cert.id if prev is None else prev,
            "ts": self.clock.now(),
            "body": {"cert": self.town_cert.id, "software": "t"},
        }
        return Payload(**{**fields, **changes})

    def town_record(self, seq: int, prev: bytes, software: str = "t") -> bytes:
        body = {"cert": self.town_cert.id, "software": software}
        return seal(self.town_payload(seq, prev, body=body), self.town_keys).envelope


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_records_arrive_once_by_any_path(world: World) -> None:
    first = world.receiver.ingest(world.town_cert.envelope, "central")
    again = world.receiver.ingest(world.town_cert.envelope, "other-path")
    assert (first.status, again.status) == (Status.APPENDED, Status.DUPLICATE)
    assert world.receiver.count() == 2


def test_unknown_key_is_held_then_released(world: World) -> None:
    own = world.town_record(1, world.town_cert.id)
    held = world.receiver.ingest(own, TOWN)
    assert (held.status, held.code) == (Status.HELD, ErrorCode.KEY_UNKNOWN)
    appended = world.receiver.ingest(world.town_cert.envelope, "central")
    assert appended.released == 1
    assert world.receiver.count("held") == 0
    assert world.receiver.head(TOWN) is not None


def test_gap_is_held_until_filled(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    r1 = world.town_record(1, world.town_cert.id)
    r1_id = world.central.ingest(r1, TOWN).record_id
    assert r1_id is not None
    r2 = world.town_record(2, r1_id)
    assert world.receiver.ingest(r2, TOWN).code is ErrorCode.CHAIN_GAP
    assert world.receiver.ingest(r1, TOWN).released == 1
    head = world.receiver.head(TOWN)
    assert head is not None and head.seq == 2


def test_fork_is_kept_as_evidence(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    a = world.town_record(1, world.town_cert.id, software="a")
    b = world.town_record(1, world.town_cert.id, software="b")
    assert world.receiver.ingest(a, TOWN).status is Status.APPENDED
    fork = world.receiver.ingest(b, "elsewhere")
    assert (fork.status, fork.code) == (Status.FORK, ErrorCode.CHAIN_FORK)
    row = world.receiver.db.conn.execute("SELECT origin, seq, other_envelope FROM forks").fetchone()
    assert row == (TOWN, 1, b)


def test_wrong_prev_is_rejected_and_kept(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    bad = world.town_record(1, bytes(32))
    outcome = world.receiver.ingest(bad, TOWN)
    assert (outcome.status, outcome.code) == (Status.REJECTED, ErrorCode.CHAIN_PREV)
    row = world.receiver.db.conn.execute("SELECT code, origin, seq, envelope, times FROM rejected").fetchone()
    assert row == (ErrorCode.CHAIN_PREV.value, TOWN, 1, bad, 1)
    world.receiver.ingest(bad, TOWN)
    assert world.receiver.db.conn.execute("SELECT times FROM rejected").fetchone() == (2,)


def test_forged_signature_is_rejected(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    forger = fixed_keys("forger")
    payload = world.town_payload()
    payload_bytes = codec.encode(payload.to_map())
    forged = codec.encode([payload_bytes, forger.sign(b"tongban/rec/v1\x00" + payload_bytes)])
    assert world.receiver.ingest(forged, TOWN).code is ErrorCode.SIGNATURE_INVALID
    assert world.receiver.head(TOWN) is None


def test_root_kinds_only_from_central(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    rogue = fixed_keys("rogue")
    payload = world.town_payload(kind=kinds.NODE_CERT, body=cert_body(rogue, VILLAGE, "village", TOWN))
    outcome = world.receiver.ingest(seal(payload, world.town_keys).envelope, TOWN)
    assert outcome.code is ErrorCode.AUTHORITY


def test_revoked_key_is_refused_after_its_cut_off(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    r1 = world.town_record(1, world.town_cert.id)
    r1_id = world.receiver.ingest(r1, TOWN).record_id
    assert r1_id is not None
    revoke = world.central.append_local(
        world.central_keys,
        CITY,
        kinds.CERT_REVOKE,
        {"node": TOWN, "cert": world.town_cert.id, "last_good_seq": 1, "effective": 5, "reason": "stolen"},
    )
    world.receiver.ingest(revoke.envelope, "central")
    outcome = world.receiver.ingest(world.town_record(2, r1_id), TOWN)
    assert outcome.code is ErrorCode.CERT_REVOKED


def test_other_network_is_refused(world: World) -> None:
    payload = world.town_payload(net="cn-110101")
    outcome = world.receiver.ingest(seal(payload, world.town_keys).envelope, TOWN)
    assert outcome.code is ErrorCode.NET_MISMATCH


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: {**b, "extra": 1}, ErrorCode.SCHEMA),
        (lambda b: {k: v for k, v in b.items() if k != "software"}, ErrorCode.SCHEMA),
        (lambda b: {**b, "cert": b"short"}, ErrorCode.SCHEMA),
    ],
)
def test_body_schema_is_enforced(world: World, mutate: object, code: ErrorCode) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    body = {"cert": world.town_cert.id, "software": "x"}
    payload = world.town_payload(body=mutate(body))  # type: ignore[operator]
    assert world.receiver.ingest(seal(payload, world.town_keys).envelope, TOWN).code is code


def test_unknown_kind_is_rejected(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    payload = world.town_payload(kind="case.mystery", body={})
    assert world.receiver.ingest(seal(payload, world.town_keys).envelope, TOWN).code is ErrorCode.KIND_UNKNOWN


def test_garbage_is_rejected_and_counted(world: World) -> None:
    before = world.receiver.count()
    for data in (b"", b"\x00", b"\x82\x40\x40", codec.encode([b"x", b"y" * 64]), b"\xff" * 300_000):
        assert world.receiver.ingest(data, "fuzz").status is Status.REJECTED
    assert world.receiver.count() == before
    codes = {row[0] for row in world.receiver.db.conn.execute("SELECT code FROM rejected")}
    assert ErrorCode.RECORD_TOO_LARGE.value in codes


def test_records_cannot_be_updated_or_deleted(world: World) -> None:
    conn = world.central.db.conn
    with pytest.raises(StoreError) as updated:
        conn.execute("UPDATE records SET seq = 9 WHERE seq = 1")
    with pytest.raises(StoreError) as deleted:
        conn.execute("DELETE FROM records")
    assert updated.value.code is deleted.value.code is ErrorCode.STORE_APPEND_ONLY
    assert world.central.count() == 2


def test_rebuild_reproduces_projections(world: World) -> None:
    def snapshot() -> list[tuple[object, ...]]:
        return world.central.db.conn.execute("SELECT * FROM certs ORDER BY cert_id").fetchall()

    before = snapshot()
    world.central.rebuild()
    assert snapshot() == before and len(before) == 2


def test_local_append_refuses_without_anchor(tmp_path: Path) -> None:
    log = RecordLog(open_database(tmp_path / "x.db", [log_migrations]), FixedClock())
    with pytest.raises(RecordError) as info:
        log.append_local(fixed_keys("k"), TOWN, kinds.NODE_ENROLLED, {"cert": bytes(32), "software": "x"})
    assert info.value.code is ErrorCode.KEY_UNKNOWN


def test_database_from_newer_software_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = open_database(path, [log_migrations])
    db.conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('log', '0099_future', 'x')"
    )
    db.close()
    with pytest.raises(StoreError) as info:
        open_database(path, [log_migrations])
    assert info.value.code is ErrorCode.STORE_TOO_NEW


def test_wal_is_on(tmp_path: Path) -> None:
    db = open_database(tmp_path / "wal.db", [log_migrations])
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_huge_integers_are_refused_not_crashed(world: World) -> None:
    for field in ("seq", "ts"):
        payload = world.town_payload().to_map()
        payload[field] = 2**63
        payload_bytes = cbor2.dumps(payload, canonical=True)
        data = cbor2.dumps([payload_bytes, world.town_keys.sign(b"tongban/rec/v1\x00" + payload_bytes)])
        outcome = world.receiver.ingest(data, "attacker")
        assert outcome.status is Status.REJECTED and outcome.code is ErrorCode.CBOR_FORBIDDEN_TYPE


def test_a_forged_copy_cannot_displace_a_held_record(world: World) -> None:
    genuine = world.town_record(1, world.town_cert.id)
    payload_bytes, _ = split(genuine)
    forged = codec.encode([payload_bytes, bytes(64)])
    assert world.receiver.ingest(forged, "relay").status is Status.HELD
    assert world.receiver.ingest(genuine, "town").status is Status.HELD
    appended = world.receiver.ingest(world.town_cert.envelope, "central")
    assert appended.released == 1
    head = world.receiver.head(TOWN)
    assert head is not None and head.seq == 1
    assert world.receiver.count("held") == 0
    codes = [row[0] for row in world.receiver.db.conn.execute("SELECT code FROM rejected")]
    assert codes == [ErrorCode.SIGNATURE_INVALID.value]


def test_stricter_revocation_wins_and_late_records_are_quarantined(world: World) -> None:
    world.receiver.ingest(world.town_cert.envelope, "central")
    prev = world.town_cert.id
    for seq in (1, 2, 3):
        prev = world.receiver.ingest(world.town_record(seq, prev), TOWN).record_id or b""
    for last_good in (2, 1):
        revoke = world.central.append_local(
            world.central_keys,
            CITY,
            kinds.CERT_REVOKE,
            {
                "node": TOWN,
                "cert": world.town_cert.id,
                "last_good_seq": last_good,
                "effective": 9,
                "reason": "x",
            },
        )
        world.receiver.ingest(revoke.envelope, "central")
    conn = world.receiver.db.conn
    assert conn.execute("SELECT last_good_seq FROM revocations").fetchone() == (1,)
    assert [row[0] for row in conn.execute("SELECT seq FROM quarantined ORDER BY seq")] == [2, 3]


def test_a_second_certificate_for_the_same_curve_key_is_refused(world: World) -> None:
    other = fixed_keys("other-town")
    body = cert_body(other, "330481105", "town", CITY)
    body["curve_pk"] = world.town_keys.curve_public
    with pytest.raises(RecordError) as info:
        world.central.append_local(world.central_keys, CITY, kinds.NODE_CERT, body)
    assert info.value.code is ErrorCode.SCHEMA
