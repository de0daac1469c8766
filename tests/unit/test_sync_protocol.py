"""The sync wire format: three frames, a versioned protocol id, checked bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ErrorCode
from sync.link.protocol import (
    MAX_MESSAGE,
    Message,
    SyncError,
    Type,
    choose_version,
    decode,
    encode,
    version_frame,
)
from sync.record import codec

HELLO = {
    "versions": [1],
    "node": "330481104201",
    "cert": bytes(32),
    "session": bytes(16),
    "heads": {"330481": [3, bytes(32)]},
    "credit": 4,
    "arrivals": 7,
}


def code_of(frames: list[bytes]) -> ErrorCode:
    with pytest.raises(SyncError) as info:
        decode(frames)
    return info.value.code


def test_a_message_survives_the_round_trip() -> None:
    message = Message(Type.HELLO, HELLO)
    assert decode(encode(message)) == message
    assert encode(message)[0] == b"tongban-sync/4"


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([b"tongban-sync/1", b"HELLO"], ErrorCode.SYNC_PROTOCOL),
        ([b"other/1", b"HELLO", codec.encode(HELLO)], ErrorCode.SYNC_PROTOCOL),
        ([b"tongban-sync/x", b"HELLO", codec.encode(HELLO)], ErrorCode.SYNC_PROTOCOL),
        ([b"tongban-sync/1", b"GOSSIP", codec.encode({})], ErrorCode.SYNC_PROTOCOL),
        ([b"tongban-sync/1", b"HELLO", b"\xff\x00"], ErrorCode.SYNC_PROTOCOL),
        ([b"tongban-sync/1", b"HELLO", codec.encode([1])], ErrorCode.SYNC_PROTOCOL),
        ([b"tongban-sync/1", b"HELLO", codec.encode({**HELLO, "credit": 0})], ErrorCode.SYNC_PROTOCOL),
        ([b"tongban-sync/1", b"HELLO", codec.encode({**HELLO, "extra": 1})], ErrorCode.SYNC_PROTOCOL),
        ([b"tongban-sync/1", b"HELLO", codec.encode({**HELLO, "cert": b"x"})], ErrorCode.SYNC_PROTOCOL),
        (
            [b"tongban-sync/1", b"HELLO", codec.encode({**HELLO, "heads": {"a": [0, b""]}})],
            ErrorCode.SYNC_PROTOCOL,
        ),
        ([b"tongban-sync/1", b"BYE", b"\xa0" + b"\x00" * (MAX_MESSAGE + 1)], ErrorCode.SYNC_TOO_LARGE),
    ],
)
def test_bad_frames_are_refused_with_a_code(frames: list[bytes], code: ErrorCode) -> None:
    assert code_of(frames) is code


def test_batches_must_hold_byte_strings() -> None:
    body = {"phase": "up", "n": 1, "acked": 0, "records": [1, 2], "upto": 3}
    assert code_of([version_frame(1), b"BATCH", codec.encode(body)]) is ErrorCode.SYNC_PROTOCOL
    body["records"] = []
    assert code_of([version_frame(1), b"BATCH", codec.encode(body)]) is ErrorCode.SYNC_PROTOCOL
    body["records"] = [b"x"]
    body["phase"] = "sideways"
    assert code_of([version_frame(1), b"BATCH", codec.encode(body)]) is ErrorCode.SYNC_PROTOCOL


def test_versions_are_negotiated_from_the_ranked_list() -> None:
    assert choose_version([7, 1]) == 1
    assert choose_version([7, 2, 1]) == 2
    assert choose_version([7, 3, 2, 1]) == 3
    assert choose_version([7, 4, 3, 2, 1]) == 4
    assert choose_version([1, 2]) == 1  # the child's ranking
    with pytest.raises(SyncError) as info:
        choose_version([5, 6])
    assert info.value.code is ErrorCode.SYNC_VERSION


@given(st.lists(st.binary(max_size=64), max_size=5))
def test_random_frames_never_escape_as_anything_but_a_sync_error(frames: list[bytes]) -> None:
    try:
        decode(frames)
    except SyncError as exc:
        assert exc.code.value.startswith("E_SYNC_")


@given(
    st.sampled_from(list(Type)), st.dictionaries(st.text(max_size=8), st.integers() | st.binary(max_size=8))
)
def test_random_bodies_are_refused_cleanly(kind: Type, body: dict[str, object]) -> None:
    try:
        frames = [version_frame(1), kind.value.encode(), codec.encode(body)]
    except Exception:
        return
    try:
        decode(frames)
    except SyncError as exc:
        assert exc.code.value.startswith("E_SYNC_")
