"""Bad input at a live parent endpoint: a town's ParentServer on 127.0.0.1, with CURVE.

The sender is a raw DEALER holding an enrolled village's real keys, so what it sends passes
ZAP and reaches the protocol layer. Whatever it sends, the endpoint stays up and serves a
normal session afterwards; a refused message changes nothing stored but the rejection
counters (``link_rejections``), where it is counted once with its stable code; bad records
inside a valid batch are handled as the record layer handles them, and the good ones of
the batch still commit.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from central import authority
from central.store import MIGRATION_SETS as CENTRAL_SETS
from core.catalog import Mode
from core.errors import ErrorCode
from node.store import MIGRATION_SETS as NODE_SETS
from sync.link.endpoint import ParentServer
from sync.link.protocol import (
    MAX_MESSAGE,
    MAX_TRANSPORT,
    VERSIONS,
    Message,
    Type,
    decode,
    encode,
    version_frame,
)
from sync.link.transport import own_certificate, socket_options
from sync.projection import standard
from sync.projection.catalog import current_catalog
from sync.record import codec, kinds
from sync.record.envelope import PREFIX_RECORD
from sync.record.inspect import verify_store
from sync.record.keys import NodeKeys
from sync.record.log import decode_stored
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2
from tests.integration.syncnet import City, build_city, delegate
from tests.unit.test_sync_frames import SYNC_CODES, Mutant, mutants
from tongban.cli import main

VILLAGE_3 = "330481104203"
STABLE = frozenset(code.value for code in ErrorCode)
COUNTERS = "link_rejections"


# -- a raw child ------------------------------------------------------------------------


class RawChild:
    """A DEALER with a node's CURVE keys: frames go to the parent exactly as given."""

    def __init__(self, endpoint: str, server_key: bytes, secret: bytes, public: bytes) -> None:
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.monitor = self.sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        )
        socket_options(self.sock)
        self.sock.sndtimeo = 2_000  # a DEALER without a connection would block a send for good
        self.sock.curve_secretkey = z85.encode(secret)
        self.sock.curve_publickey = z85.encode(public)
        self.sock.curve_serverkey = z85.encode(server_key)
        self.sock.connect(endpoint)

    def handshake(self, timeout: float = 5.0) -> int:
        """The first handshake event: ``zmq.EVENT_HANDSHAKE_SUCCEEDED`` or ``..._FAILED_AUTH``."""
        assert self.monitor.poll(int(timeout * 1000)), "no handshake"
        return int(recv_monitor_message(self.monitor)["event"])

    def send(self, frames: list[bytes]) -> bool:
        """Queue ``frames``; False if there was no connection to queue them on for a while."""
        try:
            self.sock.send_multipart(frames)
        except zmq.Again:
            return False
        return True

    def receive(self, timeout: float = 5.0) -> Message | None:
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return decode(self.sock.recv_multipart())

    def replies(self, timeout: float = 5.0) -> list[Message]:
        """What the parent answers to one message (it sends all of it at once)."""
        first = self.receive(timeout)
        if first is None:
            return []
        out = [first]
        while (more := self.receive(0.02)) is not None:
            out.append(more)
        return out

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close(0)
        self.sock.close(0)
        self.context.term()


class Endpoint:
    """A town serving sync, and what the tests read of its store."""

    def __init__(self, city: City, server: ParentServer) -> None:
        self.city = city
        self.server = server
        self.db = city.home(TOWN) / "node.db"
        town = city.open(TOWN)
        try:
            self.server_key = town.keys.curve_public
        finally:
            town.close()

    def child(self, code: str) -> RawChild:
        opened = self.city.open(code)
        try:
            keys = opened.keys
        finally:
            opened.close()
        return RawChild(self.server.endpoint, self.server_key, keys.curve_secret, keys.curve_public)

    def stranger(self) -> RawChild:
        key = PrivateKey.generate()
        return RawChild(self.server.endpoint, self.server_key, bytes(key), bytes(key.public_key))

    def _read(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table of the parent's store but the rejection counters, rows sorted."""
        conn = self._read()
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {
                table: sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
                for table in sorted(tables)
                if table != COUNTERS
            }
        finally:
            conn.close()

    def counters(self) -> Counter[tuple[str, str]]:
        conn = self._read()
        try:
            rows = conn.execute(f"SELECT peer, code, times FROM {COUNTERS}").fetchall()
        finally:
            conn.close()
        return Counter({(peer, code): times for peer, code, times in rows})

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = self._read()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def hello(city: City, code: str, heads: dict[str, Any] | None = None) -> Message:
    opened = city.open(code)
    try:
        cert = own_certificate(opened.log, code, opened.keys.kid)
    finally:
        opened.close()
    body = {
        "versions": list(VERSIONS),
        "node": code,
        "cert": cert,
        "session": os.urandom(16),
        "heads": heads or {},
        "credit": 4,
        "arrivals": 0,
    }
    return Message(Type.HELLO, body)


def rev_ack(batch: Message) -> Message:
    body = {
        "phase": "rev",
        "n": batch.body["n"],
        "upto": batch.body["upto"],
        "heads": {},
        "counts": {"duplicate": len(batch.body["records"])},
        "codes": {},
    }
    return Message(Type.ACK, body)


def open_session(child: RawChild, start: Message, *, stop_at_rev_batch: bool = False) -> Message | None:
    """Send HELLO and acknowledge the revocations until the up phase (or the first rev batch)."""
    pending = _send(child, start)
    for _ in range(100):
        if not pending:
            raise AssertionError("the parent went quiet")
        message = pending.pop(0)
        assert message.type is not Type.ERROR, message.body
        if message.type is Type.BATCH:
            if stop_at_rev_batch:
                return message
            pending.extend(_send(child, rev_ack(message)))
        elif message.type is Type.END:
            assert message.body["phase"] == "rev"
            return None
    raise AssertionError("no END rev")


def _send(child: RawChild, message: Message) -> list[Message]:
    assert child.send(encode(message))
    return child.replies()


def up_batch(records: list[bytes], n: int = 1, upto: int = 0) -> Message:
    return Message(Type.BATCH, {"phase": "up", "n": n, "acked": 0, "records": records, "upto": upto})


def ok(result: Any) -> None:
    assert result.ok, result.error


def read_store(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def verify_town(city: City) -> None:
    report = verify_store(city.home(TOWN) / "node.db", NODE_SETS, city.clock, standard())
    assert report.ok, report.faults


# -- fixtures -----------------------------------------------------------------------------


def _prepare(root: Path) -> City:
    """A town holding its villages' certificates, and one village synced once through it."""
    city = build_city(root)
    city.net.add_node(VILLAGE_3, "village", TOWN)
    # A revocation at the root, so that every session has a revocation phase.
    with authority.open_central(city.net.central_dir, city.clock) as central:
        authority.revoke_node(central, VILLAGE_3, reason="设备报废")
    with city.serving(CITY):
        ok(city.sync(TOWN))
    with city.serving(TOWN):
        ok(city.sync(VILLAGE))
    return city


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Endpoint]:
    city = _prepare(tmp_path)
    with city.serving(CITY, TOWN) as servers:
        yield Endpoint(city, servers[TOWN])


# -- random and mutated frames ----------------------------------------------------------


def test_mutated_messages_are_refused_counted_and_change_nothing(town: Endpoint) -> None:
    city = town.city
    child = town.child(VILLAGE)
    assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
    held = town.query("SELECT envelope FROM records WHERE origin = ? ORDER BY seq LIMIT 1", VILLAGE)[0][0]
    bases = {
        Type.HELLO: hello(city, VILLAGE),
        Type.BATCH: up_batch([bytes(held)], upto=1),
        Type.ACK: Message(
            Type.ACK,
            {"phase": "rev", "n": 1, "upto": 0, "heads": {}, "counts": {}, "codes": {}},
        ),
    }
    seen: Counter[str] = Counter()

    def deliver(target: Type, mutant: Mutant) -> list[Message]:
        if target is Type.ACK:
            batch = open_session(child, hello(city, VILLAGE), stop_at_rev_batch=True)
            assert batch is not None
            child.replies(0.02)
        elif target is Type.BATCH:
            open_session(child, hello(city, VILLAGE))
        assert child.send(mutant.frames)
        return child.replies()

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.sampled_from(list(bases)).flatmap(lambda t: mutants(bases[t]).map(lambda m: (t, m))))
    def check(case: tuple[Type, Mutant]) -> None:
        target, mutant = case
        before, counted = town.snapshot(), town.counters()
        replies = deliver(target, mutant)
        assert replies, (target, mutant)
        errors = [m for m in replies if m.type is Type.ERROR]
        if not errors:  # a mutation that left a valid message: the session goes on
            assert not mutant.must_refuse, (target, mutant)
            assert not mutant.other_version or target is Type.HELLO, (target, mutant)
            seen["accepted"] += 1
            return
        assert len(replies) == 1 and len(errors) == 1
        code = errors[0].body["code"]
        assert code in STABLE and ErrorCode(code) in SYNC_CODES, code
        assert town.snapshot() == before, (target, mutant)
        assert town.counters() - counted == Counter({(VILLAGE, code): 1}), (target, mutant)
        seen[code] += 1

    try:
        check()
    finally:
        child.close()
    assert seen[ErrorCode.SYNC_PROTOCOL.value] > 50, seen
    assert town.server.alive
    ok(city.sync(VILLAGE))
    verify_town(city)


def test_random_frames_from_an_enrolled_child_are_refused(town: Endpoint) -> None:
    child = town.child(VILLAGE)
    before = town.snapshot()

    @settings(max_examples=60, deadline=None, database=None)
    @given(st.lists(st.binary(max_size=64), min_size=1, max_size=5))
    def check(frames: list[bytes]) -> None:
        counted = town.counters()
        assert child.send(frames)
        (reply,) = child.replies()
        assert reply.type is Type.ERROR and reply.body["code"] in STABLE
        assert town.counters() - counted == Counter({(VILLAGE, reply.body["code"]): 1})

    try:
        check()
    finally:
        child.close()
    assert town.snapshot() == before
    ok(town.city.sync(VILLAGE))


# -- oversized messages -------------------------------------------------------------------


def test_a_body_above_the_message_cap_is_refused_and_counted(town: Endpoint) -> None:
    child = town.child(VILLAGE)
    try:
        open_session(child, hello(town.city, VILLAGE))
        before, counted = town.snapshot(), town.counters()
        records = [bytes(60 * 1024)] * (MAX_MESSAGE // (60 * 1024) + 1)
        body = codec.encode({"phase": "up", "n": 1, "acked": 0, "records": records[:256], "upto": 0})
        assert MAX_MESSAGE < len(body) < MAX_TRANSPORT
        assert child.send([version_frame(1), b"BATCH", body])
        (reply,) = child.replies()
        assert reply.type is Type.ERROR and reply.body["code"] == ErrorCode.SYNC_TOO_LARGE.value
        assert town.counters() - counted == Counter({(VILLAGE, ErrorCode.SYNC_TOO_LARGE.value): 1})
        assert town.snapshot() == before
        # The session is gone: the next batch is out of order.
        assert child.send(encode(up_batch([b"x"], n=2)))
        (reply,) = child.replies()
        assert reply.body["code"] == ErrorCode.SYNC_PROTOCOL.value
    finally:
        child.close()
    ok(town.city.sync(VILLAGE))


def test_a_frame_above_the_transport_cap_drops_the_connection_only(town: Endpoint) -> None:
    child = town.child(VILLAGE)
    try:
        assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
        before, counted = town.snapshot(), town.counters()
        assert child.send([version_frame(1), b"BATCH", bytes(MAX_TRANSPORT + 1)])
        # libzmq closes the connection unread: no answer, nothing stored, nothing to count.
        assert child.replies(1.0) == []
        assert town.server.alive
        assert town.snapshot() == before and town.counters() == counted
        # The same socket reconnects and is served again.
        assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
        replies = _send(child, hello(town.city, VILLAGE))
        assert replies and replies[0].type is Type.WELCOME
    finally:
        child.close()
    ok(town.city.sync(VILLAGE))


# -- who may connect ----------------------------------------------------------------------


def test_an_unknown_curve_key_is_refused_at_zap_and_counted(town: Endpoint) -> None:
    before, counted = town.snapshot(), town.counters()
    stranger = town.stranger()
    try:
        assert stranger.handshake() == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        stranger.sock.sndtimeo = 200
        stranger.send(encode(hello(town.city, VILLAGE)))  # queued or not, it reaches nobody
        assert stranger.replies(0.5) == []
    finally:
        stranger.close()
    new = town.counters() - counted
    assert new and all(
        peer == "unknown" and code == ErrorCode.SYNC_PEER_UNKNOWN.value for peer, code in new
    ), new
    assert town.snapshot() == before
    ok(town.city.sync(VILLAGE))


def revoke(city: City, code: str) -> None:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        authority.revoke_node(central, code, reason="设备被盗")
    ok(city.sync(TOWN))  # the town learns of it from central


def test_the_revocations_phase_carries_the_roots_whole_chain(tmp_path: Path) -> None:
    """A catalog release and a root grant signed after the last certificate revocation
    still reach the child before its up phase: after days offline, that phase can take
    minutes, and the child must take walk-ins under the newest catalog meanwhile."""
    city = _prepare(tmp_path)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        release, _ = authority.publish_catalog(central, catalog.items)
        authority.grant(central, TOWN, [catalog.items[0].code], Mode.PROXY, valid_days=30)
    with city.serving(CITY):
        ok(city.sync(TOWN))
    with city.serving(TOWN) as servers:
        town = Endpoint(city, servers[TOWN])
        root = town.query("SELECT seq, id FROM records WHERE origin = ? ORDER BY seq", CITY)
        have = root[len(root) // 2]  # the village holds the first half of the root's chain
        child = town.child(VILLAGE)
        try:
            assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
            pending = _send(child, hello(city, VILLAGE, {CITY: [have[0], bytes(have[1])]}))
            sent: list[bytes] = []
            for _ in range(100):
                assert pending, "the parent went quiet"
                message = pending.pop(0)
                assert message.type is not Type.ERROR, message.body
                if message.type is Type.BATCH:
                    sent.extend(message.body["records"])
                    pending.extend(_send(child, rev_ack(message)))
                elif message.type is Type.END:
                    assert message.body["phase"] == "rev"
                    break
        finally:
            child.close()
    stored = [decode_stored(envelope) for envelope in sent]
    assert [(r.origin, r.seq) for r in stored] == [(CITY, seq) for seq, _ in root if seq > have[0]]
    assert release.id in {r.id for r in stored}
    assert stored[-1].kind != kinds.CERT_REVOKE


def _root_head(city: City, code: str) -> list[Any]:
    conn = sqlite3.connect(f"file:{city.home(code) / 'node.db'}?mode=ro", uri=True)
    try:
        seq, rid = conn.execute(
            "SELECT seq, id FROM records WHERE origin = ? ORDER BY seq DESC LIMIT 1", (CITY,)
        ).fetchone()
    finally:
        conn.close()
    return [seq, bytes(rid)]


def test_a_release_reaching_the_town_mid_upload_goes_on_as_news(town: Endpoint) -> None:
    """The town hears of a catalog release from central while a village is uploading: the
    village gets it within about a second, between its up batches, and only once."""
    city = town.city
    child = town.child(VILLAGE)
    try:
        assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
        assert open_session(child, hello(city, VILLAGE, {CITY: _root_head(city, VILLAGE)})) is None
        assert child.receive(1.5) is None  # nothing new at the root: no news
        with authority.open_central(city.net.central_dir, city.clock) as central:
            catalog = current_catalog(central.store.db)
            assert catalog is not None
            release, _ = authority.publish_catalog(central, catalog.items)
        ok(city.sync(TOWN))
        news = child.receive(3.0)  # the town's tick comes once a second
        assert news is not None and news.type is Type.BATCH, news
        assert news.body["phase"] == "news" and news.body["n"] == 1
        records = [decode_stored(r) for r in news.body["records"]]  # with central's receipt
        assert release.id in {r.id for r in records} and {r.origin for r in records} == {CITY}
        held = {CITY: [records[-1].seq, records[-1].id]}
        ack = {"phase": "news", "n": 1, "upto": news.body["upto"], "heads": held, "counts": {}, "codes": {}}
        assert child.send(encode(Message(Type.ACK, ack)))
        assert child.receive(2.5) is None  # acknowledged and held: not sent again
        down: list[bytes] = []
        pending = _send(child, Message(Type.END, {"phase": "up", "upto": 0}))
        for _ in range(100):
            message = pending.pop(0)
            assert message.type is not Type.ERROR, message.body
            if message.type is Type.RECEIPT:
                break
            if message.type is Type.BATCH:
                down.extend(message.body["records"])
                body = {**rev_ack(message).body, "phase": "down"}
                pending.extend(_send(child, Message(Type.ACK, body)))
        assert release.id not in {decode_stored(r).id for r in down}
    finally:
        child.close()


def test_an_ack_of_news_never_sent_is_refused_and_the_endpoint_serves_on(town: Endpoint) -> None:
    child = town.child(VILLAGE)
    try:
        assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
        assert open_session(child, hello(town.city, VILLAGE, {CITY: _root_head(town.city, VILLAGE)})) is None
        ack = {"phase": "news", "n": 1, "upto": 0, "heads": {}, "counts": {}, "codes": {}}
        (reply,) = _send(child, Message(Type.ACK, ack))
        assert reply.type is Type.ERROR and reply.body["code"] == ErrorCode.SYNC_PROTOCOL.value
    finally:
        child.close()
    assert town.server.alive
    ok(town.city.sync(VILLAGE))


def test_a_revoked_node_is_refused_at_the_handshake(town: Endpoint) -> None:
    child = town.child(VILLAGE_2)
    try:
        assert child.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
    finally:
        child.close()
    revoke(town.city, VILLAGE_2)
    counted = town.counters()
    child = town.child(VILLAGE_2)
    try:
        assert child.handshake() == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    finally:
        child.close()
    new = town.counters() - counted
    assert set(new) == {(VILLAGE_2, ErrorCode.SYNC_PEER_REVOKED.value)}, new
    ok(town.city.sync(VILLAGE))  # the others are served as before


def test_a_live_session_of_a_node_revoked_meanwhile_is_told_and_dropped(town: Endpoint) -> None:
    child = town.child(VILLAGE)
    try:
        open_session(child, hello(town.city, VILLAGE))
        counted = town.counters()
        revoke(town.city, VILLAGE)
        started = time.monotonic()
        reply = child.receive(5.0)
        assert reply is not None and time.monotonic() - started < 2.5  # a tick is one second
        assert reply.type is Type.ERROR and reply.body["code"] == ErrorCode.SYNC_PEER_REVOKED.value
        # Dropped: anything more on that connection is refused, as revoked, and counted.
        assert child.send(encode(Message(Type.END, {"phase": "up", "upto": 0})))
        (again,) = child.replies()
        assert again.type is Type.ERROR and again.body["code"] == ErrorCode.SYNC_PEER_REVOKED.value
        assert town.counters() - counted == Counter({(VILLAGE, ErrorCode.SYNC_PEER_REVOKED.value): 2})
    finally:
        child.close()
    result = town.city.sync(VILLAGE)
    assert not result.ok and result.error is not None
    assert result.error.code is ErrorCode.SYNC_PEER_UNKNOWN  # ZAP refused it; the child cannot tell why


def test_an_expired_certificate_is_refused_and_counted_as_expired(town: Endpoint) -> None:
    """Break 8: it was reported as an unknown stranger. The parent counts it under the
    node's code as E_CERT_EXPIRED; the child sees its own certificate expired and says so
    itself (ZAP cannot tell a client why), without connecting."""
    city = town.city
    city.clock.advance(366 * 86_400)  # the village's certificate was valid for 365 days
    counted = town.counters()
    child = town.child(VILLAGE)
    try:
        assert child.handshake() == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    finally:
        child.close()
    assert town.counters() - counted == Counter({(VILLAGE, ErrorCode.CERT_EXPIRED.value): 1})
    before = town.snapshot()
    result = city.sync(VILLAGE)
    assert not result.ok and result.error is not None
    assert result.error.code is ErrorCode.CERT_EXPIRED
    assert town.snapshot() == before


def test_a_second_hello_with_the_key_of_a_live_session_is_refused_and_evicts_nothing(
    town: Endpoint,
) -> None:
    """Break 8: a second HELLO used to evict the live session silently. Now it is refused
    (E_SYNC_BUSY, counted) while the first one is live; once its connection is gone, a new
    session of the node is served at once."""
    city = town.city
    first = town.child(VILLAGE)
    second = town.child(VILLAGE)
    try:
        assert open_session(first, hello(city, VILLAGE, {CITY: _root_head(city, VILLAGE)})) is None
        counted, before = town.counters(), town.snapshot()
        assert second.handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
        (refused,) = _send(second, hello(city, VILLAGE))
        assert refused.type is Type.ERROR and refused.body["code"] == ErrorCode.SYNC_BUSY.value
        assert town.counters() - counted == Counter({(VILLAGE, ErrorCode.SYNC_BUSY.value): 1})
        assert town.snapshot() == before
        # The first session goes on: its up phase ends and the down phase comes.
        replies = _send(first, Message(Type.END, {"phase": "up", "upto": 0}))
        assert replies and all(r.type is not Type.ERROR for r in replies), replies
    finally:
        first.close()
        second.close()
    ok(city.sync(VILLAGE))  # the first connection is gone: nothing waits for it


def test_records_sent_apart_from_the_scan_move_no_checkpoint(town: Endpoint) -> None:
    """What the down phase sends apart from its arrival scan — the child's own chain the
    parent holds further — must not move the down checkpoint: a session that ends after
    acknowledging only those would otherwise skip, for good, what the scan had not sent."""
    city = town.city
    village = city.open(VILLAGE)
    try:
        clerk = {"user": "lm", "name": "李梅", "roles": ["clerk"], "active": True}
        newest = village.log.append_local(village.keys, VILLAGE, kinds.CLERK_SET, clerk, actor="sys:admin")
        before = village.log.get(village.log.db.conn.execute(
            "SELECT id FROM records WHERE origin = ? AND seq = ?", (VILLAGE, newest.seq - 1)
        ).fetchone()[0])  # fmt: skip
    finally:
        village.close()
    assert before is not None
    assert delegate(city, VILLAGE) > 0  # the town's grants for the village: not sent yet
    sql = f"SELECT id FROM records WHERE kind = 'grant.issue' AND origin = '{TOWN}'"
    grants = {bytes(r[0]) for r in town.query(sql)}
    short = hello(city, VILLAGE, {CITY: _root_head(city, VILLAGE), VILLAGE: [before.seq, before.id]})
    child = town.child(VILLAGE)
    try:  # the village's newest record reaches the town after the grants were signed
        open_session(child, short)
        (ack,) = _send(child, up_batch([newest.envelope]))
        assert ack.body["counts"] == {"appended": 1}
    finally:
        child.close()
    child = town.child(VILLAGE)
    try:  # a session that acknowledges only what comes back of its own chain, and ends
        open_session(child, short)
        replies = _send(child, Message(Type.END, {"phase": "up", "upto": 0}))
        first = next(m for m in replies if m.type is Type.BATCH)
        assert [decode_stored(r).id for r in first.body["records"]] == [newest.id]
        assert child.send(encode(Message(Type.ACK, {**rev_ack(first).body, "phase": "down"})))
        child.replies(0.5)
    finally:
        child.close()
    ok(city.sync(VILLAGE))
    held = {bytes(r[0]) for r in read_store(city.home(VILLAGE) / "node.db", "SELECT id FROM records")}
    assert grants <= held


# -- bad records inside a batch -----------------------------------------------------------


def _resigned(envelope: bytes, signer: Any, **changes: Any) -> bytes:
    """``envelope``'s payload with ``changes``, signed by ``signer`` (whatever its kid says)."""
    record = decode_stored(envelope)
    payload = codec.decode(record.payload_bytes)
    payload.update(changes)
    payload_bytes = codec.encode(payload)
    return codec.encode([payload_bytes, signer.sign(PREFIX_RECORD + payload_bytes)])


def raw_keys(keys: Any) -> NodeKeys:
    """A node's keys as a thief holds them: they sign whatever they are given."""
    return NodeKeys(keys.sign_seed, keys.curve_secret)


def bad_batch(town: Endpoint) -> tuple[list[bytes], int, dict[int, bytes], bytes]:
    """The village's next four records with bad ones among them: (the batch, the village's
    head before them, its records by seq, the forked #1)."""
    city = town.city
    village = city.open(VILLAGE)
    other = city.open(VILLAGE_2)
    try:
        head = village.log.head(VILLAGE)
        assert head is not None
        b = head.seq  # its enrollment and the status report of its first session
        for n in range(4):  # the village's seq b+1..b+4
            village.log.append_local(
                village.keys,
                VILLAGE,
                kinds.CLERK_SET,
                {"user": f"clerk{n}", "name": "李梅", "roles": ["clerk"], "active": True},
                actor="sys:admin",
            )
        mine = {
            seq: bytes(envelope)
            for seq, envelope in village.log.db.conn.execute(
                "SELECT seq, envelope FROM records WHERE origin = ?", (VILLAGE,)
            )
        }
        sibling = other.log.db.conn.execute(
            "SELECT envelope FROM records WHERE origin = ? AND seq = 1", (VILLAGE_2,)
        ).fetchone()[0]
        forged = _resigned(
            mine[b + 3], raw_keys(other.keys), body={**decode_stored(mine[b + 3]).body, "name": "冒名"}
        )
        forked = _resigned(mine[1], raw_keys(village.keys), ts=decode_stored(mine[1]).payload.ts + 1)
    finally:
        village.close()
        other.close()
    assert len(mine) == b + 4
    assert town.query("SELECT max(seq) FROM records WHERE origin = ?", VILLAGE) == [(b,)]
    assert not town.query("SELECT 1 FROM records WHERE origin = ?", VILLAGE_2)
    batch = [mine[b + 1], mine[b + 2], forged, mine[1], mine[b + 4], forked, bytes(sibling)]
    return batch, b, mine, forked


def test_bad_records_in_an_up_batch_are_handled_as_the_record_layer_does(town: Endpoint) -> None:
    city = town.city
    batch, b, mine, forked = bad_batch(town)
    child = town.child(VILLAGE)
    try:
        open_session(child, hello(city, VILLAGE))
        counted = town.counters()
        (ack,) = _send(child, up_batch(batch))
    finally:
        child.close()
    assert ack.type is Type.ACK, ack.body
    assert ack.body["counts"] == {"appended": 2, "rejected": 2, "duplicate": 1, "held": 1, "fork": 1}
    assert ack.body["codes"] == {
        ErrorCode.SIGNATURE_INVALID.value: 1,
        ErrorCode.CHAIN_FORK.value: 1,
        ErrorCode.SYNC_NOT_CHILD.value: 1,
    }
    assert ack.body["heads"] == {VILLAGE: [b + 2, decode_stored(mine[b + 2]).id]}
    assert set(ack.body["codes"]) <= STABLE
    assert town.counters() - counted == Counter({(VILLAGE, code): 1 for code in ack.body["codes"]})
    # The good ones committed; each bad one is where the record layer keeps it.
    assert town.query("SELECT seq FROM records WHERE origin = ? ORDER BY seq", VILLAGE) == [
        (seq,) for seq in range(1, b + 3)
    ]
    assert not town.query("SELECT 1 FROM records WHERE origin = ?", VILLAGE_2)
    assert sorted(town.query("SELECT code, origin, seq, source FROM rejected")) == [
        (ErrorCode.SIGNATURE_INVALID.value, VILLAGE, b + 3, VILLAGE),
        (ErrorCode.SYNC_NOT_CHILD.value, VILLAGE_2, 1, VILLAGE),
    ]
    assert town.query("SELECT origin, seq, code FROM held") == [(VILLAGE, b + 4, ErrorCode.CHAIN_GAP.value)]
    assert town.query("SELECT origin, seq, other_id FROM forks") == [(VILLAGE, 1, decode_stored(forked).id)]
    listing = CliRunner().invoke(main, ["log", str(city.home(TOWN)), "--rejected"])
    assert listing.exit_code == 0, listing.output
    assert ErrorCode.SIGNATURE_INVALID.value in listing.output
    assert ErrorCode.SYNC_NOT_CHILD.value in listing.output and "2 rejected" in listing.output
    verify_town(city)

    # The fork freezes the village at the town from #1 on: its normal session afterwards is
    # served, and what it sends past the fork is refused with the code and kept.
    result = city.sync(VILLAGE)
    ok(result)
    assert set(result.summary.rejected) == {ErrorCode.CHAIN_FORK.value}
    assert town.query("SELECT max(seq) FROM records WHERE origin = ?", VILLAGE) == [(b + 2,)]
    refused = town.query("SELECT seq FROM rejected WHERE origin = ? AND code = ?", VILLAGE, "E_CHAIN_FORK")
    assert {seq for (seq,) in refused} >= {b + 3}
    verify_town(city)


def test_a_gap_left_by_a_refused_record_is_filled_by_the_next_session(town: Endpoint) -> None:
    """The same bad batch without the fork: a normal session afterwards fills the gap, and
    the held record is let in."""
    city = town.city
    batch, b, _, forked = bad_batch(town)
    child = town.child(VILLAGE)
    try:
        open_session(child, hello(city, VILLAGE))
        (ack,) = _send(child, up_batch([r for r in batch if r != forked]))
    finally:
        child.close()
    assert ack.body["counts"] == {"appended": 2, "rejected": 2, "duplicate": 1, "held": 1}
    result = city.sync(VILLAGE)
    ok(result)
    assert not result.summary.rejected
    head_now = city.count(VILLAGE, "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE)
    assert head_now >= b + 4  # (a new status report may follow its clerk records)
    assert town.query("SELECT max(seq) FROM records WHERE origin = ?", VILLAGE) == [(head_now,)]
    assert town.query("SELECT count(*) FROM held") == [(0,)]
    verify_town(city)
    report = verify_store(city.home(CITY) / "central.db", CENTRAL_SETS, city.clock, standard())
    assert report.ok, report.faults
