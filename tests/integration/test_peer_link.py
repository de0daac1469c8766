"""The link between two cities' centrals, made by ``tongban central init`` and agreed both ways
at the command line: real SQLite stores, real ZeroMQ with CURVE on 127.0.0.1, the receiving
side's deliver hook recording in the receiver's own transaction."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from central import peer_link_store, peer_outbox
from central.peer_link import push
from core.clock import FixedClock, SystemClock
from core.errors import ErrorCode, SyncError
from sync.link.peer_protocol import CHUNK_BYTES, MAX_DATA, VERSION, Message, Type, decode, encode
from sync.link.peer_transport import await_handshake, dial, receive_within
from sync.link.zmq_boundary import send
from sync.record import codec
from sync.record.db import transaction
from tests.helpers import wait_for
from tests.integration.peerlink import (
    DELAY,
    FAIL_STORE,
    Side,
    agree,
    cli,
    enqueue,
    fingerprint,
    got,
    make_central,
    make_pair,
    opened,
    serving,
    spawn,
)
from tests.integration.syncfaults import environment
from tongban.processes import plan_for

Pair = tuple[Side, Side]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    DELAY[0], FAIL_STORE[0] = 0.0, False
    yield make_pair(tmp_path)
    DELAY[0], FAIL_STORE[0] = 0.0, False


def contact(side: Side, peer: Side) -> peer_outbox.PeerContact:
    with opened(side) as central:
        return next(c for c in peer_outbox.contacts(central.store.db) if c.net == peer.net)


def pushed(side: Side, peer: Side, **options: float) -> tuple[bool, ErrorCode | None, int]:
    with opened(side) as central:
        result = push(central, peer.net, **options)
    return result.ok, None if result.error is None else result.error.code, result.chunk_bytes


def test_messages_cross_both_ways_in_order_and_exactly_once(pair: Pair) -> None:
    haining, qingpu = pair
    out = [f"hn-{i}".encode() * 40 for i in range(300)]
    back = [f"qp-{i}".encode() for i in range(20)]
    assert enqueue(haining, qingpu, out) == list(range(1, 301))
    assert enqueue(qingpu, haining, back) == list(range(1, 21))
    assert contact(haining, qingpu).waiting_out == 300
    with serving(haining), serving(qingpu):
        assert pushed(haining, qingpu)[:2] == (True, None)
        assert pushed(qingpu, haining)[:2] == (True, None)
        assert pushed(haining, qingpu)[:2] == (True, None)  # nothing owed: nothing crosses again
    assert got(qingpu) == [(haining.net, m) for m in out]
    assert got(haining) == [(qingpu.net, m) for m in back]
    sent, received = contact(haining, qingpu), contact(qingpu, haining)
    assert sent.waiting_out == 0 and sent.last_out > 0 and sent.last_error == ""
    assert received.in_seq == 300 and received.last_in > 0
    assert contact(haining, qingpu).in_seq == 20
    # The next message numbers on: 301.
    assert enqueue(haining, qingpu, [b"more"]) == [301]


def test_contacts_show_what_waits_and_the_last_error_while_the_peer_is_down(pair: Pair) -> None:
    haining, qingpu = pair
    enqueue(haining, qingpu, [b"one", b"two"])
    ok, code, _ = pushed(haining, qingpu, connect_timeout=1.0)
    assert not ok and code is ErrorCode.SYNC_UNREACHABLE
    seen = contact(haining, qingpu)
    assert (seen.waiting_out, seen.last_error, seen.last_out) == (2, "E_SYNC_UNREACHABLE", 0)
    with serving(qingpu):
        assert pushed(haining, qingpu)[0]
    seen = contact(haining, qingpu)
    assert (seen.waiting_out, seen.last_error) == (0, "") and seen.last_out > 0


def test_a_file_crosses_in_chunks_and_is_verified_by_its_hash(pair: Pair) -> None:
    haining, qingpu = pair
    data = os.urandom(3 * CHUNK_BYTES + 123)
    stray = os.urandom(1000)
    with opened(haining) as central, transaction(central.store.db):
        sha = central.store.files.put(data)
        unlisted = central.store.files.put(stray)
        db = central.store.db
        peer_outbox.enqueue(db, qingpu.net, f"expect:{sha}:{len(data)}".encode())
        peer_outbox.enqueue_file(db, qingpu.net, sha, len(data))
        peer_outbox.enqueue_file(db, qingpu.net, unlisted, len(stray))  # no message said it comes
        peer_outbox.enqueue(db, qingpu.net, b"after the files")
    with serving(qingpu):
        ok, _, chunk_bytes = pushed(haining, qingpu)
    assert ok and chunk_bytes == len(data) + len(stray)
    with opened(qingpu) as central:
        files = central.store.files
        assert files.has(sha) and files.check(sha) is None and files.read(sha) == data
        assert not files.has(unlisted)
        assert peer_link_store.expected(central.store.db, haining.net, 10) == []  # cleared when whole
        refused = peer_link_store.refusals(central.store.db, haining.net)
    assert [(r.seq, r.code) for r in refused] == [(3, "E_FILE_UNREFERENCED")]
    assert [d for _, d in got(qingpu)][-1] == b"after the files"
    assert contact(qingpu, haining).in_seq == 4 and contact(haining, qingpu).waiting_out == 0


def test_a_refused_message_is_kept_with_its_code_and_a_failing_store_delivers_nothing(pair: Pair) -> None:
    haining, qingpu = pair
    enqueue(haining, qingpu, [b"first", b"refuse: not for us", b"third"])
    with serving(qingpu):
        FAIL_STORE[0] = True
        ok, code, _ = pushed(haining, qingpu)
        assert not ok and code is ErrorCode.STORE_IO and got(qingpu) == []
        assert contact(qingpu, haining).in_seq == 0 and contact(haining, qingpu).waiting_out == 3
        FAIL_STORE[0] = False
        assert pushed(haining, qingpu)[0]
    assert [d for _, d in got(qingpu)] == [b"first", b"third"]  # the refused one wrote nothing
    with opened(qingpu) as central:
        refused = peer_link_store.refusals(central.store.db)
        counts = peer_link_store.refusal_counts(central.store.db)
    assert [(r.peer, r.seq, r.code) for r in refused] == [(haining.net, 2, "E_FIELD_INVALID")]
    assert counts == {haining.net: 1} and contact(qingpu, haining).in_seq == 3


@contextmanager
def speaking(side: Side, peer: Side) -> Iterator[Callable[[Message], Message | None]]:
    """A raw session from ``side`` to ``peer``'s endpoint: send a message, get the reply."""
    curve = bytes.fromhex(fingerprint(peer.home)["curve key"])
    with opened(side) as central, dial(central.keys, peer.net, peer.endpoint, curve) as (sock, monitor):
        await_handshake(monitor, peer.endpoint, 5)

        def say(message: Message, reply: bool = True) -> Message | None:
            send(sock, encode(message), peer.endpoint)
            return decode(receive_within(sock, monitor, peer.endpoint, 5)) if reply else None

        yield say


def hello(side: Side, to: str, net: str | None = None) -> Message:
    return Message(Type.HELLO, {"v": VERSION, "net": net or side.net, "to": to, "serial": 1})


def test_a_seq_already_received_is_not_delivered_again(pair: Pair) -> None:
    haining, qingpu = pair
    enqueue(haining, qingpu, [b"a", b"b"])
    with serving(qingpu):
        assert pushed(haining, qingpu)[0]
        with speaking(haining, qingpu) as say:
            welcome = say(hello(haining, qingpu.net))
            assert welcome is not None and welcome.type is Type.WELCOME and welcome.body["have"] == 2
            items = [{"seq": 1, "data": b"a again"}, {"seq": 2, "data": b"b again"}, {"seq": 3, "data": b"c"}]
            ack = say(Message(Type.BATCH, {"n": 1, "acked": 0, "items": items}))
            assert ack is not None and ack.type is Type.ACK and ack.body["have"] == 3
            gap = say(Message(Type.BATCH, {"n": 2, "acked": 1, "items": [{"seq": 9, "data": b"z"}]}))
            assert gap is not None and gap.body["code"] == "E_SYNC_PROTOCOL"
    assert [d for _, d in got(qingpu)] == [b"a", b"b", b"c"]


def test_a_misaddressed_or_mislabelled_hello_is_refused_and_kept_as_the_last_error(pair: Pair) -> None:
    haining, qingpu = pair
    with serving(qingpu):
        for message, code in (
            (hello(haining, "cn-320509"), "E_PEER_MISADDRESSED"),
            (hello(haining, qingpu.net, net="cn-320509"), "E_PEER_UNKNOWN"),
        ):
            with speaking(haining, qingpu) as say:
                refused = say(message)
            assert refused is not None and refused.type is Type.REFUSE and refused.body["code"] == code
            assert contact(qingpu, haining).last_error == code
    assert got(qingpu) == []


def test_an_unknown_curve_key_is_refused_at_the_handshake(pair: Pair, tmp_path: Path) -> None:
    _, qingpu = pair
    third = make_central(tmp_path / "third", "320509", "苏州市吴中区")
    agree(third, qingpu, "上海市青浦区")  # one way only: Qingpu knows nothing of it
    enqueue(third, qingpu, [b"let me in"])
    with serving(qingpu):
        ok, code, _ = pushed(third, qingpu)
    assert not ok and code is ErrorCode.SYNC_PEER_UNKNOWN
    assert contact(third, qingpu).last_error == "E_SYNC_PEER_UNKNOWN" and got(qingpu) == []


def test_a_revoked_peer_is_refused_at_the_handshake_and_not_pushed_to(pair: Pair) -> None:
    haining, qingpu = pair
    enqueue(haining, qingpu, [b"after the revocation"])
    cli("central", "peer", "revoke", qingpu.home, "--net", haining.net, "--reason", "协议终止")
    with serving(qingpu):
        ok, code, _ = pushed(haining, qingpu)
    assert not ok and code is ErrorCode.PEER_REVOKED and got(qingpu) == []
    assert contact(qingpu, haining).last_error == "E_PEER_REVOKED"
    assert contact(haining, qingpu).waiting_out == 1  # kept: nothing was delivered
    # What Qingpu still owed the city it revoked is withdrawn; the notice of the revocation
    # is all it sends (Haining, whose own agreement still holds, takes it).
    with serving(haining):
        ok, _, _ = pushed(qingpu, haining)
    assert ok
    sent = [codec.decode(data)["t"] for _, data in got(haining)]
    assert sent[-1] == "revoke" and set(sent[:-1]) <= {"void"}


def test_an_expired_cross_certification_is_refused(pair: Pair) -> None:
    haining, qingpu = pair
    enqueue(haining, qingpu, [b"too late"])
    later = FixedClock(SystemClock().now() + 31 * 86_400)
    with serving(qingpu, later):
        ok, code, _ = pushed(haining, qingpu)
    assert not ok and code is ErrorCode.PEER_EXPIRED and got(qingpu) == []
    assert contact(qingpu, haining).last_error == "E_PEER_EXPIRED"


def test_a_peer_agreed_without_link_data_is_not_pushed_to(tmp_path: Path) -> None:
    haining = make_central(tmp_path, "330481", "海宁市")
    qingpu = make_central(tmp_path, "310118", "上海市青浦区")
    agree(haining, qingpu, "上海市青浦区", link=False)
    with opened(haining) as central:
        assert peer_outbox.contacts(central.store.db) == []
    enqueue(haining, qingpu, [b"nowhere to go"])
    ok, code, _ = pushed(haining, qingpu)
    assert not ok and code is ErrorCode.SYNC_PEER_UNKNOWN


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


@pytest.mark.slow
def test_the_receiver_killed_mid_batch_loses_nothing_and_delivers_nothing_twice(pair: Pair) -> None:
    haining, qingpu = pair
    messages = [f"{i:04d}".encode() * 500 for i in range(400)]
    enqueue(haining, qingpu, messages)
    receiver = spawn("serve", qingpu.home, 8)  # 8 ms a message: a batch of 256 takes 2 s
    pusher = spawn("push", haining.home, qingpu.net)  # it waits for the receiver to listen
    try:
        wait_for(lambda: len(got(qingpu)) > 0, "the first batch to commit", 60, 0.02)
        kill(receiver)  # the second batch is half delivered, not committed
        assert pusher.wait(60) == 1  # its session failed
    finally:
        for process in (receiver, pusher):
            if process.poll() is None:
                kill(process)
    assert len(got(qingpu)) == 256
    with serving(qingpu):
        assert pushed(haining, qingpu)[0]
    assert [d for _, d in got(qingpu)] == messages
    assert contact(haining, qingpu).waiting_out == 0


@pytest.mark.slow
def test_the_pusher_killed_mid_batch_then_resumed_loses_nothing_and_delivers_nothing_twice(
    pair: Pair,
) -> None:
    haining, qingpu = pair
    messages = [f"{i:04d}".encode() * 500 for i in range(600)]
    enqueue(haining, qingpu, messages)
    DELAY[0] = 0.004
    with serving(qingpu):
        pusher = spawn("push", haining.home, qingpu.net)
        try:
            wait_for(lambda: len(got(qingpu)) > 0, "the first batch to commit", 30, 0.02)
            kill(pusher)
        finally:
            if pusher.poll() is None:
                kill(pusher)
        assert contact(haining, qingpu).waiting_out > 0
        assert pushed(haining, qingpu)[0]  # while the receiver may still take the dead one's batches
    assert [d for _, d in got(qingpu)] == messages
    assert contact(haining, qingpu).waiting_out == 0


@pytest.mark.slow
def test_a_file_cut_mid_way_resumes_at_its_partial_offset(pair: Pair) -> None:
    haining, qingpu = pair
    data = os.urandom(16 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    with opened(haining) as central, transaction(central.store.db):
        assert central.store.files.put(data) == sha
        peer_outbox.enqueue(central.store.db, qingpu.net, f"expect:{sha}:{len(data)}".encode())
        peer_outbox.enqueue_file(central.store.db, qingpu.net, sha, len(data))
    with opened(qingpu) as central:
        files = central.store.files
    with serving(qingpu):
        pusher = spawn("push", haining.home, qingpu.net)
        try:
            wait_for(lambda: files.partial_offset(sha) > 0, "the file to be under way", 30, 0.005)
            kill(pusher)
        finally:
            if pusher.poll() is None:
                kill(pusher)
    # Both sides are down now: what the receiver holds of the file is all it will resume from.
    cut = files.partial_offset(sha)
    assert 0 < cut < len(data) and not files.has(sha)
    with serving(qingpu):
        ok, _, chunk_bytes = pushed(haining, qingpu)
    assert ok and chunk_bytes == len(data) - cut
    assert files.has(sha) and files.check(sha) is None
    assert contact(qingpu, haining).in_seq == 2


def test_central_runs_the_peer_link_when_peers_listen_is_set(pair: Pair, tmp_path: Path) -> None:
    haining, _ = pair
    plan = plan_for(haining.home)
    assert [service.name for _, service, _ in plan.services if service.name == "central_peers"]
    assert f"peer link: endpoint at {haining.endpoint}, pushes every 1 s" in "\n".join(plan.lines)
    alone = make_central(tmp_path / "alone", "320509", "苏州市吴中区")
    (alone.home / "central.toml").write_text(
        (alone.home / "central.toml").read_text(encoding="utf-8").split("[peers]")[0], encoding="utf-8"
    )
    assert "central_peers" not in [service.name for _, service, _ in plan_for(alone.home).services]


@pytest.mark.slow
def test_the_running_service_serves_and_pushes_on_its_timer_both_ways(pair: Pair) -> None:
    haining, qingpu = pair
    out, back = [f"hn-{i}".encode() for i in range(30)], [f"qp-{i}".encode() for i in range(10)]
    enqueue(haining, qingpu, out)
    enqueue(qingpu, haining, back)
    command = [sys.executable, "-m", "tests.integration.peerrun"]
    running = [subprocess.Popen([*command, str(side.home)], env=environment()) for side in pair]
    try:
        wait_for(lambda: len(got(qingpu)) == 30 and len(got(haining)) == 10, "both ways to cross", 60, 0.2)
        enqueue(haining, qingpu, [b"later"])  # the next tick of the timer takes it
        wait_for(lambda: len(got(qingpu)) == 31, "the later message", 30, 0.2)
        for process in running:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(20) for process in running] == [0, 0]
    finally:
        for process in running:
            if process.poll() is None:
                kill(process)
    assert [d for _, d in got(qingpu)] == [*out, b"later"] and [d for _, d in got(haining)] == back


def test_link_data_is_given_whole_kept_through_renewal_and_messages_are_capped(pair: Pair) -> None:
    haining, qingpu = pair
    half = cli(
        "central", "peer", "propose", haining.home, "--net", "cn-320509", "--name", "苏州市吴中区",
        "--root-pk", "11" * 32, "--item", "SZ-1:1", "--mode", "proxy_intake", "--role", "accept",
        "--endpoint", "tcp://127.0.0.1:9", ok=False,
    )  # fmt: skip
    assert "E_FIELD_INVALID" in half and "--curve-pk" in half
    cli("central", "peer", "renew", haining.home, "--net", qingpu.net)
    with opened(haining) as central:
        kept = peer_link_store.link_of(central.store.db, qingpu.net)
        assert kept is not None and kept.endpoint == qingpu.endpoint
        assert kept.curve_pk.hex() == fingerprint(qingpu.home)["curve key"]
        assert [c.net for c in peer_outbox.contacts(central.store.db)] == [qingpu.net]
        with pytest.raises(SyncError) as caught, transaction(central.store.db):
            peer_outbox.enqueue(central.store.db, qingpu.net, b"x" * (MAX_DATA + 1))
    assert caught.value.code is ErrorCode.SYNC_TOO_LARGE
    assert contact(haining, qingpu).waiting_out == 0
