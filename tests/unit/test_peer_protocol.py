"""sync.link.peer_protocol: the frames of the link between centrals, and what each refuses."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import ErrorCode, SyncError
from sync.link.peer_protocol import (
    CHUNK_BYTES,
    MAX_DATA,
    Message,
    Type,
    code_of,
    decode,
    encode,
)
from sync.record import codec

SHA = "ab" * 32


def faulty(frames: list[bytes]) -> ErrorCode:
    with pytest.raises(SyncError) as caught:
        decode(frames)
    return caught.value.code


def frames(kind: str, body: dict[str, Any]) -> list[bytes]:
    return [b"tongban-peer/1", kind.encode(), codec.encode(body)]


MESSAGES = [
    Message(Type.HELLO, {"v": 1, "net": "cn-330481", "to": "cn-310118", "serial": 3}),
    Message(Type.WELCOME, {"v": 1, "net": "cn-310118", "have": 7, "credit": 4, "partials": [[SHA, 65536]]}),
    Message(Type.REFUSE, {"code": "E_PEER_REVOKED", "detail": "协议终止"}),
    Message(
        Type.BATCH,
        {
            "n": 1,
            "acked": 0,
            "items": [
                {"seq": 8, "data": b"opaque"},
                {"seq": 9, "sha": SHA, "size": 10, "offset": 0, "chunk": b"0123456789"},
            ],
        },
    ),
    Message(Type.ACK, {"n": 1, "have": 9, "codes": {"E_FILE_UNREFERENCED": 1}}),
    Message(Type.BYE, {}),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type.value)
def test_every_message_goes_through_its_frames_and_back(message: Message) -> None:
    assert decode(encode(message)) == message


def test_frames_of_another_protocol_or_version_are_refused() -> None:
    good = encode(MESSAGES[0])
    assert faulty([b"tongban-sync/4", *good[1:]]) is ErrorCode.SYNC_PROTOCOL
    assert faulty([b"tongban-peer/2", *good[1:]]) is ErrorCode.SYNC_VERSION
    assert faulty(good[:2]) is ErrorCode.SYNC_PROTOCOL
    assert faulty([good[0], b"WANT", good[2]]) is ErrorCode.SYNC_PROTOCOL
    assert faulty([*good[:2], b"\xff"]) is ErrorCode.SYNC_PROTOCOL


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("HELLO", {"v": 1, "net": "cn-330481", "to": "cn-310118"}),
        ("HELLO", {"v": 1, "net": "", "to": "cn-310118", "serial": 1}),
        ("HELLO", {"v": -1, "net": "a", "to": "b", "serial": 1}),
        ("WELCOME", {"v": 1, "net": "x", "have": 0, "credit": 0, "partials": []}),
        ("WELCOME", {"v": 1, "net": "x", "have": 0, "credit": 4, "partials": [["nothex", 1]]}),
        ("BATCH", {"n": 1, "acked": 0, "items": []}),
        ("BATCH", {"n": 0, "acked": 0, "items": [{"seq": 1, "data": b""}]}),
        ("BATCH", {"n": 1, "acked": 0, "items": [{"seq": 0, "data": b""}]}),
        ("BATCH", {"n": 1, "acked": 0, "items": [{"seq": 1, "data": "text"}]}),
        (
            "BATCH",
            {"n": 1, "acked": 0, "items": [{"seq": 1, "sha": SHA, "size": 4, "offset": 2, "chunk": b"abc"}]},
        ),
        (
            "BATCH",
            {
                "n": 1,
                "acked": 0,
                "items": [{"seq": 1, "sha": "AB" * 32, "size": 1, "offset": 0, "chunk": b"a"}],
            },
        ),
        ("BATCH", {"n": 1, "acked": 0, "items": [{"seq": 1, "data": b"", "extra": 1}]}),
        ("ACK", {"n": 1, "have": 1, "codes": {"E_X": -1}}),
        ("BYE", {"why": "no"}),
    ],
)
def test_a_body_out_of_shape_is_a_protocol_error(kind: str, body: dict[str, Any]) -> None:
    assert faulty(frames(kind, body)) is ErrorCode.SYNC_PROTOCOL


def test_a_message_or_a_chunk_over_its_cap_is_refused() -> None:
    big = {"n": 1, "acked": 0, "items": [{"seq": 1, "data": b"x" * (MAX_DATA + 1)}]}
    assert faulty(frames("BATCH", big)) is ErrorCode.SYNC_PROTOCOL
    chunk = b"x" * (CHUNK_BYTES + 1)
    wide = {
        "n": 1,
        "acked": 0,
        "items": [{"seq": 1, "sha": SHA, "size": len(chunk), "offset": 0, "chunk": chunk}],
    }
    assert faulty(frames("BATCH", wide)) is ErrorCode.SYNC_PROTOCOL
    assert decode(frames("BATCH", {**big, "items": [{"seq": 1, "data": b"x" * MAX_DATA}]})).type is Type.BATCH


def test_a_refusals_code_is_read_back_and_an_unknown_one_is_a_protocol_error() -> None:
    assert code_of("E_PEER_EXPIRED") is ErrorCode.PEER_EXPIRED
    assert code_of("E_NO_SUCH_THING") is ErrorCode.SYNC_PROTOCOL
