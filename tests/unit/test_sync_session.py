"""The session state machines, pure: fake stores, messages through the real wire format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ErrorCode
from sync.protocol import Heads, Message, Phase, SyncError, Type, decode, encode
from sync.session import (
    BARRIER,
    TRANSITIONS,
    Batch,
    ChildSession,
    Committed,
    ParentSession,
    Peer,
    State,
    render_table,
    scanned,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "sync-protocol.md"


def chunks(records: list[bytes], size: int) -> Iterator[Batch]:
    for start in range(0, len(records), size):
        yield Batch(records[start : start + size], min(start + size, len(records)))
    yield scanned(len(records))


class FakeChild:
    code = "330481104201"
    cert_id = bytes(32)

    def __init__(self, outbox: list[bytes], size: int = 2, repair: list[bytes] | None = None) -> None:
        self.outbox = outbox
        self.size = size
        self.repair = repair or []
        self.received: list[bytes] = []
        self.notes: list[str] = []

    def hello_heads(self) -> Heads:
        return {}

    def arrivals(self) -> int:
        return len(self.outbox)

    def up_batches(self, up_from: int, parent_heads: Heads) -> Iterator[Batch]:
        yield from chunks(self.outbox[up_from:], self.size)
        yield BARRIER
        if self.repair:
            yield Batch(self.repair, 0)

    def commit(self, phase: Phase, records: list[bytes], source: str) -> Committed:
        new = [r for r in records if r not in self.received]
        self.received.extend(new)
        return Committed({"appended": len(new), "duplicate": len(records) - len(new)}, {}, {})

    def note(self, event: str, **values: Any) -> None:
        self.notes.append(event)


class FakeParent:
    code = "330481104"

    def __init__(self, revocations: list[bytes], down: list[bytes], size: int = 3) -> None:
        self.revocations = revocations
        self.down = down
        self.size = size
        self.received: list[bytes] = []
        self.up_checkpoints: list[int] = []
        self.down_checkpoints: list[int] = []
        self.seen_heads: Heads | None = None

    def welcome_heads(self, child: str) -> Heads:
        return {}

    def up_checkpoint(self, child: str, cert: bytes, arrivals: int) -> int:
        return 0

    def pending(self, child: str, cert: bytes) -> int:
        return len(self.down)

    def rev_batches(self, child: str, child_heads: Heads) -> Iterator[Batch]:
        yield from chunks(self.revocations, self.size)

    def down_batches(
        self, child: str, cert: bytes, child_heads: Heads, hello_heads: Heads
    ) -> Iterator[Batch]:
        yield from chunks(self.down, self.size)

    def commit_up(self, child: str, cert: bytes, records: list[bytes], upto: int) -> Committed:
        self.received.extend(records)
        self.up_checkpoints.append(upto)
        return Committed({"appended": len(records)}, {"E_SCHEMA": 1} if b"bad" in records else {}, {})

    def down_acked(self, child: str, cert: bytes, upto: int) -> None:
        self.down_checkpoints.append(upto)

    def receipt(self, child: str, cert: bytes) -> bytes | None:
        return b"receipt"

    def seen(self, child: str, cert: bytes, heads: Heads) -> None:
        self.seen_heads = heads


PEER = Peer("330481104201", bytes(32), bytes(32))


def wire(message: Message) -> Message:
    return decode(encode(message))


def run(child: ChildSession, parent: ParentSession, *, limit: int = 10_000) -> list[Message]:
    """Deliver messages both ways, in order, until both are done; every message seen."""
    seen: list[Message] = []
    to_parent = list(child.start())
    to_child: list[Message] = []
    for _ in range(limit):
        if to_parent:
            message = wire(to_parent.pop(0))
            seen.append(message)
            to_child.extend(parent.on_message(message))
        elif to_child:
            message = wire(to_child.pop(0))
            seen.append(message)
            to_parent.extend(child.on_message(message))
        else:
            break
    return seen


def test_a_session_runs_every_phase_in_order() -> None:
    child_store = FakeChild([b"u%d" % i for i in range(5)])
    parent_store = FakeParent([b"r1", b"r2"], [b"d%d" % i for i in range(7)])
    child = ChildSession(child_store, credit=2)
    parent = ParentSession(parent_store, PEER, credit=2)
    seen = run(child, parent)
    assert child.state is State.DONE and parent.state is State.DONE
    assert child_store.received == [b"r1", b"r2", *[b"d%d" % i for i in range(7)], b"receipt"]
    assert parent_store.received == [b"u%d" % i for i in range(5)]
    assert parent_store.up_checkpoints == [2, 4, 5]
    assert parent_store.down_checkpoints[-1] == 7
    order = [m.type.value + (" " + m.body["phase"] if "phase" in m.body else "") for m in seen]
    first = {kind: order.index(kind) for kind in ("BATCH rev", "BATCH up", "BATCH down", "RECEIPT", "BYE")}
    assert list(first) == sorted(first, key=first.__getitem__)
    assert child.summary.up == 5 and child.summary.down == 9


def test_a_sender_never_exceeds_the_credit() -> None:
    parent = ParentSession(FakeParent([], [b"d%d" % i for i in range(30)], size=1), PEER, credit=4)
    hello = ChildSession(FakeChild([]), credit=3).start()[0]
    parent.on_message(wire(hello))
    out = parent.on_message(wire(Message(Type.END, {"phase": "up", "upto": 0})))
    assert [m.type for m in out] == [Type.BATCH] * 3


def test_a_batch_beyond_the_credit_is_refused() -> None:
    child = ChildSession(FakeChild([]), credit=2)
    child.start()
    welcome = {
        "node": "330481104",
        "session": child.session_id,
        "heads": {},
        "credit": 2,
        "up_from": 0,
        "pending": 0,
    }
    child.on_message(wire(Message(Type.WELCOME, welcome)))
    for n in (1, 2):
        child.on_message(
            wire(Message(Type.BATCH, {"phase": "rev", "n": n, "acked": 0, "records": [b"x"], "upto": 0}))
        )
    with pytest.raises(SyncError) as info:
        child.on_message(
            wire(Message(Type.BATCH, {"phase": "rev", "n": 3, "acked": 0, "records": [b"x"], "upto": 0}))
        )
    assert info.value.code is ErrorCode.SYNC_CREDIT


@pytest.mark.parametrize(
    "message",
    [
        Message(Type.BATCH, {"phase": "up", "n": 1, "acked": 0, "records": [b"x"], "upto": 1}),
        Message(Type.BYE, {}),
        Message(Type.ACK, {"phase": "down", "n": 1, "upto": 0, "heads": {}, "counts": {}, "codes": {}}),
    ],
)
def test_a_message_out_of_order_fails_the_session(message: Message) -> None:
    parent = ParentSession(FakeParent([], []), PEER)
    with pytest.raises(SyncError) as info:
        parent.on_message(wire(message))
    assert info.value.code is ErrorCode.SYNC_PROTOCOL
    assert parent.state is State.FAILED


def test_a_hello_from_another_node_than_the_key_is_refused() -> None:
    store = FakeChild([])
    store.code = "330481104202"
    parent = ParentSession(FakeParent([], []), PEER)
    with pytest.raises(SyncError) as info:
        parent.on_message(wire(ChildSession(store).start()[0]))
    assert info.value.code is ErrorCode.SYNC_PEER_UNKNOWN


def test_no_common_version_is_refused() -> None:
    hello = ChildSession(FakeChild([])).start()[0]
    body = {**hello.body, "versions": [9, 8]}
    with pytest.raises(SyncError) as info:
        ParentSession(FakeParent([], []), PEER).on_message(wire(Message(Type.HELLO, body, 9)))
    assert info.value.code is ErrorCode.SYNC_VERSION


def test_an_error_from_the_peer_fails_with_its_code() -> None:
    child = ChildSession(FakeChild([]))
    child.start()
    with pytest.raises(SyncError) as info:
        child.on_message(wire(Message(Type.ERROR, {"code": "E_SYNC_PEER_REVOKED", "detail": "revoked"})))
    assert info.value.code is ErrorCode.SYNC_PEER_REVOKED and child.state is State.FAILED


def test_the_repair_pass_waits_for_every_ack() -> None:
    store = FakeChild([b"a", b"b", b"c"], size=1, repair=[b"late"])
    child = ChildSession(store, credit=8)
    parent_store = FakeParent([], [])
    run(child, ParentSession(parent_store, PEER, credit=8))
    assert parent_store.received == [b"a", b"b", b"c", b"late"]


def test_rejections_reach_the_childs_summary() -> None:
    child = ChildSession(FakeChild([b"ok", b"bad"], size=2))
    run(child, ParentSession(FakeParent([], []), PEER))
    assert child.summary.rejected == {"E_SCHEMA": 1}


def test_every_row_of_the_table_is_reachable_or_local() -> None:
    for (_role, _state, event), (target, action) in TRANSITIONS.items():
        assert action and target is not State.FAILED
        assert event.split()[0] in {t.value for t in Type} or event.islower()


def test_the_doc_shows_the_table() -> None:
    assert render_table() in DOC.read_text(encoding="utf-8")
