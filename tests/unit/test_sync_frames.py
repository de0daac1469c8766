"""Mutated sync frames: every fault is a ``SyncError`` with a stable code, never anything else.

The mutations are shared with ``tests/integration/test_sync_endpoint.py``, which sends them
to a live parent endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ErrorCode
from sync.link.protocol import (
    BATCH_RECORDS,
    MAX_MESSAGE,
    VERSIONS,
    Message,
    SyncError,
    Type,
    decode,
    encode,
    version_frame,
)
from sync.record import codec

HELLO = Message(
    Type.HELLO,
    {
        "versions": [1],
        "node": "330481104201",
        "cert": bytes(range(32)),
        "session": bytes(range(16)),
        "heads": {"330481": [3, bytes(32)], "330481104201": [1, bytes(range(32))]},
        "credit": 4,
        "arrivals": 7,
    },
)
BATCH = Message(Type.BATCH, {"phase": "up", "n": 1, "acked": 0, "records": [b"\x82\x41a\x41b"], "upto": 9})
ACK = Message(
    Type.ACK,
    {
        "phase": "rev",
        "n": 1,
        "upto": 5,
        "heads": {"330481": [5, bytes(32)]},
        "counts": {"appended": 2},
        "codes": {"E_SCHEMA": 1},
    },
)

SYNC_CODES = frozenset(code for code in ErrorCode if code.value.startswith("E_SYNC_"))

# Values outside the codec's data model (encoded with cbor2 directly) or of the wrong type.
HUGE_INTS = (2**63, 2**64, -(2**63) - 1, -(2**64), 10**30)
ODD_VALUES: tuple[Any, ...] = (1.5, float("nan"), cbor2.CBORTag(1, 0), cbor2.undefined, frozenset({1}))
WRONG_TYPES: tuple[Any, ...] = (None, True, False, 0, 7, "x", "", b"", b"\x00" * 32, [], [1], {}, {"a": 1})
BAD_VERSION_FRAMES = (
    b"",
    b"tongban-sync",
    b"tongban-sync/",
    b"tongban-sync/x",
    b"tongban-sync/-1",
    b"tongban-sync/12345",
    b"tongban-sync/1\x00",
    b"Tongban-sync/1",
    b"other/1",
    b"tongban-sync/1/1",
)
OTHER_VERSION_FRAMES = tuple(f"tongban-sync/{v}".encode() for v in (0, *VERSIONS[1:], VERSIONS[0] + 1, 9999))
"""Well-formed version frames other than the newest version, which a session agrees on."""
BAD_TYPE_FRAMES = (b"", b"hello", b"GOSSIP", b"HELLO ", b"\xff\xfe", b"BATCH\x00")


@dataclass(frozen=True)
class Mutant:
    """A mutated message: its frames, how it was made, and whether any receiver must refuse it.

    ``other_version``: the frames are well-formed but name another protocol version (a
    parent accepts that only in a HELLO, where the body's ``versions`` decide).
    """

    how: str
    frames: list[bytes]
    must_refuse: bool
    other_version: bool = False


def _raw(body: dict[str, Any]) -> bytes:
    """``body`` in canonical CBOR, even with values the codec refuses to write."""
    return bytes(cbor2.dumps(body, canonical=True))


def _with_duplicate_key(body: dict[str, Any], key: str) -> bytes:
    canonical = codec.encode(body)
    assert len(body) < 23 and canonical[0] == 0xA0 + len(body)
    pair = codec.encode({key: body[key]})[1:]
    return bytes([0xA0 + len(body) + 1]) + canonical[1:] + pair


@st.composite
def mutants(draw: st.DrawFn, message: Message) -> Mutant:
    """One mutation of ``message``'s three frames."""
    frames = encode(message)
    body = message.body
    keys = sorted(body)
    how = draw(
        st.sampled_from(
            (
                "flip",
                "drop-frame",
                "repeat-frame",
                "extra-frame",
                "bad-version",
                "other-version",
                "type",
                "wrong-type",
                "huge-int",
                "negative",
                "odd-value",
                "big-int",
                "reordered-keys",
                "long-map-head",
                "duplicate-key",
                "unknown-field",
                "missing-field",
                "truncated",
                "trailing",
            )
        )
    )
    out = list(frames)
    if how == "flip":
        index = draw(st.integers(0, 2))
        frame = bytearray(out[index])
        if not frame:
            return Mutant(how, out, must_refuse=False)
        position = draw(st.integers(0, len(frame) - 1))
        frame[position] ^= draw(st.integers(1, 255))
        out[index] = bytes(frame)
        return Mutant(how, out, must_refuse=False)
    if how == "drop-frame":
        del out[draw(st.integers(0, 2))]
        return Mutant(how, out, must_refuse=True)
    if how == "repeat-frame":
        index = draw(st.integers(0, 2))
        out.insert(index, out[index])
        return Mutant(how, out, must_refuse=True)
    if how == "extra-frame":
        out.append(draw(st.binary(max_size=16)))
        return Mutant(how, out, must_refuse=True)
    if how == "bad-version":
        out[0] = draw(st.sampled_from(BAD_VERSION_FRAMES))
        return Mutant(how, out, must_refuse=True)
    if how == "other-version":
        out[0] = draw(st.sampled_from(OTHER_VERSION_FRAMES))
        return Mutant(how, out, must_refuse=False, other_version=True)
    if how == "type":
        others = [t.value.encode() for t in Type if t is not message.type]
        out[1] = draw(st.sampled_from([*others, *BAD_TYPE_FRAMES]))
        return Mutant(how, out, must_refuse=True)
    key = draw(st.sampled_from(keys))
    if how == "wrong-type":
        value = draw(st.sampled_from([v for v in WRONG_TYPES if type(v) is not type(body[key])]))
        out[2] = codec.encode({**body, key: value})
    elif how == "huge-int":
        out[2] = _raw({**body, key: draw(st.sampled_from(HUGE_INTS))})
    elif how == "negative":
        out[2] = codec.encode({**body, key: draw(st.integers(-(2**63), -1))})
    elif how == "odd-value":
        out[2] = _raw({**body, key: draw(st.sampled_from(ODD_VALUES))})
    elif how == "big-int":
        # In the data model: refused or not depending on the field and the session.
        out[2] = codec.encode({**body, key: draw(st.sampled_from((0, 1, 2**31, 2**63 - 1)))})
        return Mutant(how, out, must_refuse=False)
    elif how == "reordered-keys":
        out[2] = bytes(cbor2.dumps(dict(reversed(list(body.items())))))
    elif how == "long-map-head":
        out[2] = bytes([0xB8, len(body)]) + out[2][1:]
    elif how == "duplicate-key":
        out[2] = _with_duplicate_key(body, key)
    elif how == "unknown-field":
        out[2] = codec.encode({**body, draw(st.sampled_from(("extra", "Versions", "", "n2"))): 1})
    elif how == "missing-field":
        out[2] = codec.encode({k: v for k, v in body.items() if k != key})
    elif how == "truncated":
        out[2] = out[2][: draw(st.integers(0, len(out[2]) - 1))]
    else:  # trailing
        out[2] = out[2] + draw(st.binary(min_size=1, max_size=8))
    return Mutant(how, out, must_refuse=True)


def refusal(frames: list[bytes]) -> ErrorCode | None:
    """The code ``decode`` refuses ``frames`` with; None when it accepts them."""
    try:
        decode(frames)
    except SyncError as exc:
        return exc.code
    return None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from((HELLO, BATCH, ACK)).flatmap(mutants))
def test_mutated_frames_are_refused_with_a_sync_code_or_read_exactly(mutant: Mutant) -> None:
    try:
        message = decode(mutant.frames)
    except SyncError as exc:
        assert exc.code in SYNC_CODES, (mutant.how, exc.code)
        return
    assert not mutant.must_refuse, mutant
    # Whatever is accepted was written in the one canonical form.
    assert encode(message) == mutant.frames


@pytest.mark.parametrize("base", [HELLO, BATCH, ACK], ids=lambda m: m.type.value)
def test_duplicate_map_keys_are_refused(base: Message) -> None:
    for key in base.body:
        frames = [version_frame(1), base.type.value.encode(), _with_duplicate_key(base.body, key)]
        assert refusal(frames) is ErrorCode.SYNC_PROTOCOL, key


@pytest.mark.parametrize("value", HUGE_INTS)
def test_integers_beyond_64_bits_are_refused(value: int) -> None:
    for key in ("n", "acked", "upto"):
        frames = [version_frame(1), b"BATCH", _raw({**BATCH.body, key: value})]
        assert refusal(frames) is ErrorCode.SYNC_PROTOCOL


def test_non_canonical_bodies_are_refused() -> None:
    canonical = codec.encode(BATCH.body)
    reordered = bytes(cbor2.dumps(dict(reversed(list(BATCH.body.items())))))
    long_head = bytes([0xB8, len(BATCH.body)]) + canonical[1:]
    # "n": 1 written with a two-byte head instead of one.
    long_int = canonical.replace(b"\x61n\x01", b"\x61n\x18\x01")
    assert long_int != canonical
    for body in (reordered, long_head, long_int):
        assert refusal([version_frame(1), b"BATCH", body]) is ErrorCode.SYNC_PROTOCOL


def test_the_size_cap_is_checked_before_decoding() -> None:
    records = [bytes(MAX_MESSAGE // BATCH_RECORDS - 64)] * BATCH_RECORDS
    body = codec.encode({**BATCH.body, "records": records})
    assert len(body) <= MAX_MESSAGE
    assert decode([version_frame(1), b"BATCH", body]).body["records"] == records
    too_big = codec.encode({**BATCH.body, "records": [*records, bytes(64 * 1024)]})
    assert len(too_big) > MAX_MESSAGE
    assert refusal([version_frame(1), b"BATCH", too_big]) is ErrorCode.SYNC_TOO_LARGE
    assert refusal([version_frame(1), b"BATCH", b"\xff" * (MAX_MESSAGE + 1)]) is ErrorCode.SYNC_TOO_LARGE


def test_other_version_numbers_decode_and_are_left_to_the_session() -> None:
    for head in OTHER_VERSION_FRAMES:
        message = decode([head, b"BATCH", codec.encode(BATCH.body)])
        assert message.version == int(head.rsplit(b"/", 1)[1])
