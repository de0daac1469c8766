"""One enrolled key floods central with garbage over a real CURVE session.

The flooder is a raw DEALER holding the town's real keys, so it passes ZAP and central's
endpoint takes its up batches as it would take the town's. Whatever it sends, central's
store grows by less than the bound kept per source (``sync.record.ingest``), the session
is ended with ``E_SYNC_FLOOD``, every refusal is still counted per source and code, a
legitimate child syncs as before afterwards, and central's dashboard names the node.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from central.admins import admins
from central.authority import open_central
from central.dashboard import REFUSED_ALARM, snapshot
from core.errors import ErrorCode
from sync.link.protocol import Message, Type, encode
from sync.record import codec, kinds
from sync.record.envelope import Payload, seal, split
from sync.record.ingest import MAX_HELD_SOURCE_BYTES
from sync.record.keys import NodeKeys
from sync.record.log import envelopes_of
from sync.record.outcome import Status
from sync.record.refused import KEPT_PREFIX, MAX_REJECTED_BYTES, MAX_REJECTED_ROWS
from tests.helpers import CITY, TOWN, VILLAGE_2
from tests.integration.syncnet import City, build_city, next_record
from tests.integration.test_sync_endpoint import RawChild, hello, open_session
from tests.integration.webcentral import login
from tests.integration.webnode import PASSWORD, serve
from web.accounts import hash_password

MB = 1024 * 1024


class Central:
    """Central serving sync, and what the test reads of its store."""

    def __init__(self, city: City, endpoint: str) -> None:
        self.city = city
        self.endpoint = endpoint
        self.db = city.home(CITY) / "central.db"
        opened = city.open(CITY)
        try:
            self.server_key = opened.keys.curve_public
        finally:
            opened.close()

    def child(self, code: str) -> RawChild:
        opened = self.city.open(code)
        try:
            keys = opened.keys
        finally:
            opened.close()
        return RawChild(self.endpoint, self.server_key, keys.curve_secret, keys.curve_public)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def size(self) -> int:
        """The database's bytes on disk, with everything the write-ahead log holds in it."""
        conn = sqlite3.connect(self.db)
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0
        finally:
            conn.close()
        return self.db.stat().st_size

    def kept(self, source: str) -> tuple[int, int]:
        """Rows and bytes of ``rejected`` kept for ``source``."""
        rows = self.query(
            "SELECT count(*), coalesce(sum(length(envelope)), 0) FROM rejected WHERE source = ?", source
        )
        return int(rows[0][0]), int(rows[0][1])

    def counted(self, peer: str) -> int:
        rows = self.query("SELECT coalesce(sum(times), 0) FROM link_rejections WHERE peer = ?", peer)
        return int(rows[0][0])

    def unchanged(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table but what a refusal may write: the rejected rows, the counters, and
        when a checkpoint was last confirmed (a batch of garbage confirms where it stands)."""
        names = [r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {"link_checkpoints": "peer, cert, direction, arrival"}
        return {
            name: sorted(self.query(f'SELECT {columns.get(name, "*")} FROM "{name}"'), key=repr)
            for name in sorted(names)
            if name not in ("rejected", "link_rejections", "sqlite_sequence")
        }


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    city = build_city(tmp_path)
    with city.serving(CITY) as servers:
        assert city.sync(TOWN).ok
        yield Central(city, servers[CITY].endpoint)


def root_heads(city: City) -> dict[str, Any]:
    """The heads a child that holds central's whole chain names in its HELLO."""
    opened = city.open(CITY)
    try:
        head = opened.log.head(CITY)
        assert head is not None
        return {CITY: [head.seq, head.id]}
    finally:
        opened.close()


def garbage(n: int, size: int) -> list[bytes]:
    """Bytes that do not decode as an envelope."""
    return [b"\xff" + os.urandom(size - 1) for _ in range(n)]


def held(city: City) -> list[bytes]:
    """The town's first record, which central holds: a duplicate, never a refusal."""
    opened = city.open(TOWN)
    try:
        return [envelopes_of(opened.log.db, TOWN)[0]]
    finally:
        opened.close()


def key_alone(keys: NodeKeys) -> NodeKeys:
    """The town's key as a thief holds it: without the store's watermark (a closed store's)."""
    return NodeKeys(keys.sign_seed, keys.curve_secret)


def forged(city: City, n: int, size: int) -> list[bytes]:
    """The town's next record, padded to ``size``, under ``n`` different bad signatures:
    envelopes that decode, whose signatures do not verify."""
    opened = city.open(TOWN)
    try:
        keys = key_alone(opened.keys)
    finally:
        opened.close()
    envelope = next_record(city, TOWN, keys, kinds.NODE_STATUS, _status_body(size))
    payload, _ = split(envelope)
    return [codec.encode([payload, os.urandom(64)]) for _ in range(n)]


def _status_body(size: int) -> dict[str, Any]:
    # Not a valid status body once padded: the signature check comes first and refuses it.
    return {"catalog": 1, "calendar": 0, "held": 0, "rejected": 0, "backlog": 0, "at": 0, "pad": "x" * size}


def flood(child: RawChild, city: City, batches: list[list[bytes]]) -> Message | None:
    """One session of ``batches``; the ERROR that ended it, if one did."""
    assert open_session(child, hello(city, TOWN, root_heads(city))) is None
    for n, records in enumerate(batches, start=1):
        body = {"phase": "up", "n": n, "acked": n - 1, "records": records, "upto": 0}
        assert child.send(encode(Message(Type.BATCH, body)))
        for reply in child.replies(timeout=30):
            if reply.type is Type.ERROR:
                return reply
            assert reply.type is Type.ACK, reply
    return None


def test_one_enrolled_key_cannot_fill_centrals_disk(central: Central) -> None:
    city = central.city
    child = central.child(TOWN)
    assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
    before, size_before = central.unchanged(), central.size()
    sent = 0
    try:
        # Garbage among records central holds already: past 256 refusals the session ends.
        mixed = [held(city) * 200 + garbage(56, 1024) for _ in range(6)]
        ended = flood(child, city, mixed)
        assert ended is not None and ended.body["code"] == ErrorCode.SYNC_FLOOD.value
        assert "280" in ended.body["detail"]  # at the fifth batch
        sent += 280
        # Large pieces, a batch after another: more refused than taken past the first batch.
        for _ in range(12):
            ended = flood(child, city, [garbage(30, 48 * 1024)] * 3)
            assert ended is not None and ended.body["code"] == ErrorCode.SYNC_FLOOD.value
            sent += 60
        # Envelopes that decode (kept whole, up to their cap) until the source's bytes run out.
        for _ in range(6):
            ended = flood(child, city, [forged(city, 12, 200 * 1024)] * 3)
            assert ended is not None and ended.body["code"] == ErrorCode.SYNC_FLOOD.value
            sent += 24
    finally:
        child.close()
    rows, kept = central.kept(TOWN)
    assert rows <= MAX_REJECTED_ROWS and kept <= MAX_REJECTED_BYTES
    assert central.size() - size_before < MAX_REJECTED_BYTES + 4 * MB
    undecodable = central.query(
        "SELECT max(length(envelope)), min(size) FROM rejected WHERE source = ? AND origin IS NULL", TOWN
    )
    assert undecodable[0][0] <= KEPT_PREFIX and undecodable[0][1] >= 1024  # a prefix, the true size
    assert central.counted(TOWN) >= sent  # every refusal counted, each session's end too
    codes = dict(central.query("SELECT code, times FROM link_rejections WHERE peer = ?", TOWN))
    assert codes[ErrorCode.SYNC_FLOOD.value] == 19
    assert central.unchanged() == before  # nothing but the rejected rows and the counters

    # The town itself and a village straight to central sync as before.
    assert city.sync(TOWN).ok and city.sync(VILLAGE_2).ok
    assert central.query("SELECT count(*) FROM records WHERE origin = ?", VILLAGE_2)[0][0] >= 1

    with open_central(city.home(CITY), city.clock) as opened:
        board = snapshot(opened.store.db, now=city.clock.now())
    alarm = next(a for a in board.alarms if a.code == TOWN)
    assert alarm.refused >= sent and alarm.refused >= REFUSED_ALARM
    assert alarm.top_codes[0][0] in {c.value for c in ErrorCode}
    row = next(n for n in board.nodes if n.code == TOWN)
    assert row.refused == alarm.refused and row.alarm
    assert not next(n for n in board.nodes if n.code == VILLAGE_2).alarm
    _dashboard_shows_the_alarm(central, alarm.refused, alarm.top_codes[0][0])


def _dashboard_shows_the_alarm(central: Central, refused: int, top: str) -> None:
    with open_central(central.city.home(CITY), central.city.clock) as opened:
        digest = hash_password(PASSWORD)
        admins(opened).add(opened, "chakan", "车查看", ["viewer"], digest, actor="sys:test")
    with serve(central.city.home(CITY), probe="/login") as web:
        login(web, "chakan")
        status, _, html = web.request("GET", "/")
    assert status == 200
    assert 'id="flood-alarm"' in html and TOWN in html and str(refused) in html and top in html
    cell = re.search(rf'<td id="refused-{TOWN}" class="bad" title="([^"]+)">(\d+)</td>', html)
    assert cell and int(cell[2]) == refused and top in cell[1]  # the town's row in the node table


def test_a_child_sending_again_what_was_refused_is_not_ended(central: Central) -> None:
    """A town holds records central refuses for good (a revoked village's, signed past its
    cut-off; a kind central does not know yet): it sends them again at every session, as
    the heads say central lacks them. That is no flood: nothing new is kept of them."""
    city = central.city
    child = central.child(TOWN)
    assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
    refused = forged(city, 200, 1024)
    try:
        assert flood(child, city, [refused]) is None  # one batch, 200 refused: not yet a flood
        kept = central.kept(TOWN)
        assert flood(child, city, [refused, refused]) is None  # the same again, twice
        assert central.kept(TOWN) == kept
    finally:
        child.close()
    codes = dict(central.query("SELECT code, times FROM link_rejections WHERE peer = ?", TOWN))
    assert ErrorCode.SYNC_FLOOD.value not in codes and codes[ErrorCode.SIGNATURE_INVALID.value] == 600


def test_records_waiting_on_a_gap_are_bounded_per_source(tmp_path: Path) -> None:
    """A key may sign its own records with a gap before them: they wait for the gap to
    fill, each up to the record size cap, but no more than a source's bound of them."""
    city = build_city(tmp_path)
    opened = city.open(TOWN)
    try:
        keys, head = key_alone(opened.keys), opened.log.head(TOWN)
        anchor = opened.log.anchor()
    finally:
        opened.close()
    assert head is not None and anchor is not None
    cert = bytes(32)
    pad = "x" * (250 * 1024)
    envelopes = [
        seal(
            Payload(
                net=anchor.net,
                kind=kinds.NODE_ENROLLED,
                origin=TOWN,
                kid=keys.kid,
                seq=head.seq + 2 + n,
                prev=bytes(32),
                ts=city.clock.now(),
                body={"cert": cert, "software": pad + str(n)},
            ),
            keys,
        ).envelope
        for n in range(MAX_HELD_SOURCE_BYTES // len(pad) + 8)
    ]
    with open_central(city.home(CITY), city.clock) as central:
        records = central.store.log.count()
        outcomes = []
        for start in range(0, len(envelopes), 16):
            outcomes += central.store.log.ingest_many(envelopes[start : start + 16], TOWN)
        held = central.store.db.conn.execute(
            "SELECT count(*), sum(length(envelope)) FROM held WHERE source = ?", (TOWN,)
        ).fetchone()
        assert central.store.log.count() == records
    assert held[1] <= MAX_HELD_SOURCE_BYTES
    statuses = Counter(o.status for o in outcomes)
    assert statuses[Status.HELD] == held[0] and statuses[Status.REJECTED] >= 8
    assert {o.code for o in outcomes if o.status is Status.REJECTED} == {ErrorCode.CHAIN_GAP}
