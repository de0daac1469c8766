"""The files phase of a v4 session, pure: in-memory files, messages through the wire format."""

from __future__ import annotations

import hashlib
import os

import pytest

from core.errors import ErrorCode, SyncError
from sync.link.child_session import ChildSession
from sync.link.files_flow import REFUSED_CHUNKS, UNASKED_FILES
from sync.link.parent_session import ParentSession
from sync.link.protocol import CHUNK_BYTES, FILE_CREDIT, Message, Type
from sync.link.session import State
from sync.link.transport import TokenBucket
from tests.unit.filefakes import FakeFiles, sha_of
from tests.unit.test_sync_session import PEER, FakeChild, FakeParent, run, wire

PAGE = os.urandom(3 * CHUNK_BYTES + 1234)  # four chunks
DECISION = os.urandom(CHUNK_BYTES // 2)


def kinds(seen: list[Message]) -> list[str]:
    return [m.type.value + (" " + m.body["phase"] if "phase" in m.body else "") for m in seen]


def city() -> tuple[FakeChild, FakeParent]:
    """A child holding an intake's page the parent lacks; a parent holding a decision's
    document the child lacks."""
    child_store, parent_store = FakeChild([b"u1"]), FakeParent([b"r1"], [b"d1"])
    child_store.files = FakeFiles(held=[PAGE])
    child_store.files.expect(DECISION)
    parent_store.files = FakeFiles(held=[DECISION], root=[sha_of(DECISION)])
    parent_store.files.expect(PAGE)
    return child_store, parent_store


def test_files_go_up_then_down_after_every_record() -> None:
    child_store, parent_store = city()
    child, parent = ChildSession(child_store), ParentSession(parent_store, PEER)
    order = kinds(run(child, parent))
    assert child.state is State.DONE and parent.state is State.DONE
    assert parent_store.files.blobs[sha_of(PAGE)] == PAGE
    assert child_store.files.blobs[sha_of(DECISION)] == DECISION
    first = {k: order.index(k) for k in ("BATCH up", "BATCH down", "RECEIPT", "WANT files-up")}
    first |= {k: order.index(k) for k in ("CHUNK files-up", "WANT files-down", "CHUNK files-down", "BYE")}
    assert list(first) == sorted(first, key=first.__getitem__)
    assert order.count("CHUNK files-up") == 4 and order.count("CHUNK files-down") == 1
    assert child.summary.files_up == 1 and child.summary.files_down == 1
    assert child.summary.file_bytes_sent == len(PAGE) == parent.summary.file_bytes_received
    assert parent.summary.file_bytes_sent == len(DECISION)
    assert child_store.files.marked == [sha_of(DECISION)]  # the root holds it


def test_chunks_never_exceed_the_credit() -> None:
    child_store, parent_store = city()
    child, parent = ChildSession(child_store), ParentSession(parent_store, PEER)
    seen = run(child, parent)
    for message in seen:
        if message.type is Type.CHUNK:
            assert message.body["n"] - message.body["acked"] <= FILE_CREDIT


def test_a_v3_parent_gets_no_files() -> None:
    child_store, parent_store = city()
    child = ChildSession(child_store)
    parent = ParentSession(parent_store, PEER)
    hello = child.start()[0]
    to_parent = [Message(Type.HELLO, {**hello.body, "versions": [3, 2, 1]}, 4)]
    to_child: list[Message] = []
    seen = []
    for _ in range(1000):
        if to_parent:
            message = wire(to_parent.pop(0))
            to_child.extend(parent.on_message(message))
        elif to_child:
            message = wire(to_child.pop(0))
            to_parent.extend(child.on_message(message))
        else:
            break
        seen.append(message)
    assert child.version == 3 and child.state is State.DONE and parent.state is State.DONE
    assert not {"WANT", "CHUNK", "CACK"} & {m.type.value for m in seen}
    assert sha_of(PAGE) not in parent_store.files.blobs


def test_a_cut_transfer_resumes_at_the_part_the_parent_kept() -> None:
    child_store, parent_store = city()
    sha = sha_of(PAGE)
    parent_store.files.parts[sha] = PAGE[: 2 * CHUNK_BYTES]
    child, parent = ChildSession(child_store), ParentSession(parent_store, PEER)
    run(child, parent)
    assert parent_store.files.blobs[sha] == PAGE
    assert child_store.files.reads == [(sha, 2 * CHUNK_BYTES), (sha, 3 * CHUNK_BYTES)]
    assert child.summary.file_bytes_sent == len(PAGE) - 2 * CHUNK_BYTES


def in_files_up(parent_store: FakeParent) -> tuple[ParentSession, Message]:
    """A parent whose session has reached the files phase; its WANT."""
    parent = ParentSession(parent_store, PEER)
    parent.on_message(wire(ChildSession(FakeChild([])).start()[0]))
    out = parent.on_message(wire(Message(Type.END, {"phase": "up", "upto": 0})))
    assert parent.state is State.FILES_UP
    return parent, out[-1]


def chunk(
    data: bytes, n: int, *, offset: int = 0, acked: int | None = None, size: int | None = None
) -> Message:
    piece = data[offset : offset + CHUNK_BYTES]
    body = {
        "phase": "files-up",
        "n": n,
        "acked": n - 1 if acked is None else acked,
        "sha": hashlib.sha256(data).digest(),
        "size": len(data) if size is None else size,
        "offset": offset,
        "data": piece,
        "hash": hashlib.sha256(piece).digest(),
    }
    return wire(Message(Type.CHUNK, body))


def test_the_parent_wants_what_it_lacks_with_its_offset() -> None:
    parent_store = FakeParent([], [])
    parent_store.files.expect(PAGE)
    parent_store.files.parts[sha_of(PAGE)] = PAGE[:CHUNK_BYTES]
    _, want = in_files_up(parent_store)
    assert want.type is Type.WANT
    assert want.body["files"] == [[bytes.fromhex(sha_of(PAGE)), len(PAGE), CHUNK_BYTES]]


def test_a_chunk_with_a_bad_hash_is_dropped_and_counted() -> None:
    parent_store = FakeParent([], [])
    sha = parent_store.files.expect(DECISION)
    parent, _ = in_files_up(parent_store)
    bad = chunk(DECISION, 1)
    bad = wire(Message(Type.CHUNK, {**bad.body, "data": b"x" + bad.body["data"][1:]}))
    (cack,) = parent.on_message(bad)
    assert cack.body["code"] == ErrorCode.FILE_HASH.value and cack.body["offset"] == 0
    assert parent_store.files.parts == {} and sha not in parent_store.files.blobs
    assert parent_store.files.counted == {ErrorCode.FILE_HASH.value: 1}
    (cack,) = parent.on_message(chunk(DECISION, 2))  # the session goes on: sent again
    assert cack.body["stored"] and parent_store.files.blobs[sha] == DECISION


def test_a_file_that_does_not_match_its_hash_is_not_kept() -> None:
    child_store, parent_store = city()
    child_store.files.blobs[sha_of(PAGE)] = os.urandom(len(PAGE))  # a damaged copy
    child, parent = ChildSession(child_store), ParentSession(parent_store, PEER)
    run(child, parent)
    assert child.state is State.DONE
    assert sha_of(PAGE) not in parent_store.files.blobs and parent_store.files.parts == {}
    assert parent_store.files.counted[ErrorCode.FILE_HASH.value] >= 1


def test_an_offset_that_is_not_the_parts_is_refused() -> None:
    parent_store = FakeParent([], [])
    parent_store.files.expect(PAGE)
    parent, _ = in_files_up(parent_store)
    (cack,) = parent.on_message(chunk(PAGE, 1, offset=CHUNK_BYTES))
    assert cack.body["code"] == ErrorCode.FILE_OFFSET.value and cack.body["offset"] == 0
    assert parent_store.files.counted == {ErrorCode.FILE_OFFSET.value: 1}
    assert parent_store.files.parts == {}


@pytest.mark.parametrize(
    ("within", "code"), [(None, ErrorCode.FILE_UNREFERENCED), (False, ErrorCode.FILE_SCOPE)]
)
def test_a_file_no_record_lists_or_of_another_subtree_is_refused(
    within: bool | None, code: ErrorCode
) -> None:
    parent_store = FakeParent([], [])
    if within is not None:
        parent_store.files.expect(DECISION, within=within)
    parent, want = in_files_up(parent_store)
    assert want.body["files"] == []
    (cack,) = parent.on_message(chunk(DECISION, 1))
    assert cack.body["code"] == code.value and not cack.body["stored"]
    assert parent_store.files.counted == {code.value: 1}
    assert parent_store.files.blobs == {} and parent_store.files.parts == {}


def test_files_nobody_asked_for_are_bounded() -> None:
    parent_store = FakeParent([], [])
    blobs = [os.urandom(100) for _ in range(UNASKED_FILES + 1)]
    for blob in blobs:
        parent_store.files.expect(blob)
    parent_store.files.sizes.clear()  # listed, but not wanted (held once, say)
    parent, _ = in_files_up(parent_store)
    for n, blob in enumerate(blobs[:UNASKED_FILES], 1):
        (cack,) = parent.on_message(chunk(blob, n))
        assert cack.body["stored"]
    with pytest.raises(SyncError) as info:
        parent.on_message(chunk(blobs[-1], UNASKED_FILES + 1))
    assert info.value.code is ErrorCode.FILE_FLOOD


def test_refused_chunks_are_bounded() -> None:
    parent, _ = in_files_up(FakeParent([], []))
    with pytest.raises(SyncError) as info:
        for n in range(1, REFUSED_CHUNKS + 3):
            parent.on_message(chunk(os.urandom(10), n))
    assert info.value.code is ErrorCode.FILE_FLOOD


def test_a_chunk_beyond_the_credit_is_refused() -> None:
    parent_store = FakeParent([], [])
    parent_store.files.expect(PAGE)
    parent, _ = in_files_up(parent_store)
    with pytest.raises(SyncError) as info:
        parent.on_message(chunk(PAGE, 1, acked=0))
        parent.on_message(chunk(PAGE, 2, acked=0, offset=CHUNK_BYTES))
        for n in range(3, FILE_CREDIT + 2):
            parent.on_message(chunk(PAGE, n, acked=0, offset=(n - 1) * CHUNK_BYTES))
    assert info.value.code is ErrorCode.SYNC_CREDIT


def test_the_upload_cap_paces_chunks_to_its_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(800, clock=lambda: now[0], sleep=sleep)  # 100 000 bytes a second
    for _ in range(4):
        bucket.take(CHUNK_BYTES)
    assert slept[0] == pytest.approx(CHUNK_BYTES / 100_000)  # the first chunk is the burst
    assert now[0] == pytest.approx(3 * CHUNK_BYTES / 100_000)
    free = TokenBucket(0, clock=lambda: now[0], sleep=sleep)
    free.take(10 * CHUNK_BYTES)
    assert len(slept) == 3  # no cap: never waits
