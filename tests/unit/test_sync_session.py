"""The session state machines, pure: fake stores, messages through the real wire format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ErrorCode, SyncError
from sync.link.child_session import ChildSession
from sync.link.flow import BARRIER, Batch, Committed, scanned
from sync.link.parent_session import ParentSession, Peer
from sync.link.protocol import Message, Phase, Type, decode, encode
from sync.link.session import TRANSITIONS, Role, State, render_table
from sync.record.outcome import Heads
from tests.unit.filefakes import FakeFiles

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
        self.files = FakeFiles()

    def file_link(self, peer: str) -> FakeFiles:
        return self.files

    def hello_heads(self) -> Heads:
        return {}

    def arrivals(self) -> int:
        return len(self.outbox)

    def up_batches(self, up_from: int, parent: str, parent_heads: Heads) -> Iterator[Batch]:
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
    root = "330481"

    def __init__(self, revocations: list[bytes], down: list[bytes], size: int = 3) -> None:
        self.revocations = revocations
        self.down = down
        self.size = size
        self.received: list[bytes] = []
        self.up_checkpoints: list[int] = []
        self.down_checkpoints: list[int] = []
        self.seen_heads: Heads | None = None
        self.files = FakeFiles()

    def file_link(self, child: str) -> FakeFiles:
        return self.files

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


def run(
    child: ChildSession,
    parent: ParentSession,
    *,
    limit: int = 10_000,
    tick: Callable[[], list[Message]] = list,
) -> list[Message]:
    """Deliver messages both ways, in order, until both are done; every message seen.
    ``tick`` runs between deliveries, as the parent's driver would, and may send more."""
    seen: list[Message] = []
    to_parent = list(child.start())
    to_child: list[Message] = []
    for _ in range(limit):
        to_child.extend(tick())
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


WELCOME = {"node": "330481104", "session": bytes(16), "heads": {}, "credit": 2, "up_from": 0, "pending": 0}


def test_a_batch_beyond_the_credit_is_refused() -> None:
    child = ChildSession(FakeChild([]), credit=2)
    child.start()
    child.on_message(wire(Message(Type.WELCOME, {**WELCOME, "session": child.session_id})))
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
    for (_role, _state, event), step in TRANSITIONS.items():
        assert step.doc and step.next is not State.FAILED
        assert event.split()[0] in {t.value for t in Type} or event.islower()


def test_every_row_of_the_table_names_a_method_of_its_side() -> None:
    sides = {Role.CHILD: ChildSession, Role.PARENT: ParentSession}
    for (role, _state, _event), step in TRANSITIONS.items():
        assert callable(getattr(sides[role], step.action, None)), step


def test_the_doc_shows_the_table() -> None:
    assert render_table() in DOC.read_text(encoding="utf-8")


# -- news (version 2) ----------------------------------------------------------------------


class RootChild(FakeChild):
    """A child whose ACKs report how far it holds the root's chain."""

    def commit(self, phase: Phase, records: list[bytes], source: str) -> Committed:
        done = super().commit(phase, records, source)
        held = sum(1 for r in self.received if r.startswith(b"r"))
        return Committed(done.counts, done.codes, {FakeParent.root: (held, bytes(32))} if held else {})


class RootParent(FakeParent):
    """A parent whose root chain grows during the session; news send what the child lacks."""

    def rev_batches(self, child: str, child_heads: Heads) -> Iterator[Batch]:
        have = child_heads.get(self.root, (0, b""))[0]
        yield from chunks(self.revocations[have:], self.size)


def test_news_reach_a_child_while_it_uploads() -> None:
    child_store = RootChild([b"u%d" % i for i in range(12)], size=1)
    parent_store = RootParent([b"r1"], [b"d1"])
    child = ChildSession(child_store, credit=2)
    parent = ParentSession(parent_store, PEER, credit=2)
    news: list[Message] = []

    def tick() -> list[Message]:
        if len(parent_store.received) == 3 and len(parent_store.revocations) == 1:
            parent_store.revocations.extend([b"r2", b"r3"])  # central's release reaches the town
        out = parent.news(len(parent_store.revocations))
        news.extend(out)
        return out

    seen = run(child, parent, tick=tick)
    assert child.state is State.DONE and parent.state is State.DONE
    order = [m.type.value + (" " + m.body["phase"] if "phase" in m.body else "") for m in seen]
    assert order.index("BATCH news") < order.index("END up")
    assert order.index("ACK news") < order.index("BATCH up", order.index("ACK news"))  # mid-upload
    assert child_store.received[:3] == [b"r1", b"r2", b"r3"]
    assert [m.body["n"] for m in news] == [1]  # sent once: the child's heads show it has them
    assert parent.child_heads[FakeParent.root][0] == 3
    assert parent.summary.down >= 2


def test_news_are_numbered_through_the_session() -> None:
    parent_store = RootParent([b"r1"], [], size=1)
    parent = ParentSession(parent_store, PEER, credit=4)
    child = ChildSession(RootChild([b"u%d" % i for i in range(4)], size=1), credit=4)
    to_parent = [wire(child.start()[0])]
    to_child = parent.on_message(to_parent[0])
    while child.state is not State.UP:  # WELCOME, the revocations, END rev
        for reply in child.on_message(wire(to_child.pop(0))):
            to_child.extend(parent.on_message(wire(reply)))
    for burst in ([b"r2", b"r3"], [b"r4"]):
        parent_store.revocations.extend(burst)
        sent = parent.news(len(parent_store.revocations))
        assert parent.news(len(parent_store.revocations)) == []  # in flight: nothing twice
        for message in sent:
            for reply in child.on_message(wire(message)):
                assert reply.type is Type.ACK and reply.body["phase"] == "news"
                parent.on_message(wire(reply))
    assert parent.news(4) == []  # the child holds the root through 4
    assert parent.news_out is not None and parent.news_out.sent == 3


def test_a_v1_session_gets_no_news_and_refuses_them() -> None:
    parent_store = RootParent([b"r1"], [])
    parent = ParentSession(parent_store, PEER)
    child = ChildSession(RootChild([b"u1"]))
    hello = child.start()[0]
    v1 = Message(Type.HELLO, {**hello.body, "versions": [1]}, 1)
    parent.on_message(wire(v1))
    assert parent.version == 1
    parent.state = State.UP
    parent_store.revocations.append(b"r2")
    assert parent.news(2) == []
    child.on_message(wire(Message(Type.WELCOME, {**WELCOME, "session": child.session_id}, 1)))
    child.on_message(wire(Message(Type.END, {"phase": "rev", "upto": 0}, 1)))
    batch = {"phase": "news", "n": 1, "acked": 0, "records": [b"r2"], "upto": 0}
    with pytest.raises(SyncError) as info:
        child.on_message(wire(Message(Type.BATCH, batch, 1)))
    assert info.value.code is ErrorCode.SYNC_PROTOCOL


def test_news_outside_the_up_and_down_phases_are_refused() -> None:
    child = ChildSession(RootChild([]))
    child.start()
    child.on_message(wire(Message(Type.WELCOME, {**WELCOME, "session": child.session_id})))
    batch = {"phase": "news", "n": 1, "acked": 0, "records": [b"r2"], "upto": 0}
    with pytest.raises(SyncError) as info:
        child.on_message(wire(Message(Type.BATCH, batch)))  # still in the revocations phase
    assert info.value.code is ErrorCode.SYNC_PROTOCOL


def test_a_bye_with_news_unacknowledged_is_refused() -> None:
    parent_store = RootParent([], [])
    parent = ParentSession(parent_store, PEER)
    hello = ChildSession(RootChild([])).start()[0]
    parent.on_message(wire(Message(Type.HELLO, {**hello.body, "versions": [3, 2, 1]}, 3)))
    assert parent.state is State.UP
    parent_store.revocations.append(b"r1")
    assert [m.body["phase"] for m in parent.news(1)] == ["news"]
    parent.on_message(wire(Message(Type.END, {"phase": "up", "upto": 0}, 3)))
    assert parent.state is State.RECEIPT  # nothing to send down; no files phase before v4
    assert parent.news(2) == []  # news end with the up phase
    with pytest.raises(SyncError) as info:
        parent.on_message(wire(Message(Type.BYE, {}, 3)))
    assert info.value.code is ErrorCode.SYNC_PROTOCOL
    assert "news" in info.value.detail


@pytest.mark.parametrize("versions", [[2, 1], [1]])
def test_an_ack_of_news_never_sent_is_refused(versions: list[int]) -> None:
    parent = ParentSession(RootParent([], []), PEER)
    hello = ChildSession(RootChild([])).start()[0]
    parent.on_message(wire(Message(Type.HELLO, {**hello.body, "versions": versions}, versions[0])))
    assert parent.state is State.UP
    ack = {"phase": "news", "n": 1, "upto": 0, "heads": {}, "counts": {}, "codes": {}}
    with pytest.raises(SyncError) as info:
        parent.on_message(wire(Message(Type.ACK, ack, parent.version)))
    assert info.value.code is ErrorCode.SYNC_PROTOCOL
