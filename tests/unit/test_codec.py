"""The CBOR codec: one encoding per value, strict and capped decoding."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ErrorCode, RecordError
from sync.record import codec

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=20),
    st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=20,
)


@given(values)
def test_round_trip(value: object) -> None:
    data = codec.encode(value)
    assert codec.decode(data) == value
    assert codec.encode(codec.decode(data)) == data


@given(st.dictionaries(st.text(min_size=1, max_size=6), st.integers(0, 100), min_size=2, max_size=6))
def test_key_order_does_not_matter(mapping: dict[str, int]) -> None:
    reordered = dict(reversed(list(mapping.items())))
    assert codec.encode(mapping) == codec.encode(reordered)


def code_of(data: bytes) -> ErrorCode:
    with pytest.raises(RecordError) as info:
        codec.decode(data)
    return info.value.code


def test_duplicate_keys_are_rejected() -> None:
    assert code_of(bytes.fromhex("a2616101616102")) is ErrorCode.CBOR_DUPLICATE_KEY


@given(st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 9), min_size=2, max_size=5))
def test_non_canonical_key_order_is_rejected(mapping: dict[str, int]) -> None:
    canonical = codec.encode(mapping)
    items = sorted(mapping.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()), reverse=True)
    shuffled = bytes([0xA0 + len(items)]) + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in items)
    if shuffled != canonical:
        assert code_of(shuffled) is ErrorCode.CBOR_NONCANONICAL


@pytest.mark.parametrize(
    ("hex_data", "code"),
    [
        ("1817", ErrorCode.CBOR_NONCANONICAL),  # 23 in two bytes instead of one
        ("190001", ErrorCode.CBOR_NONCANONICAL),  # 1 in three bytes
        ("0100", ErrorCode.CBOR_NONCANONICAL),  # trailing byte
        ("9f01ff", ErrorCode.RECORD_MALFORMED),  # indefinite-length array
        ("7f6161ff", ErrorCode.RECORD_MALFORMED),  # indefinite-length text
        ("fb3ff0000000000000", ErrorCode.CBOR_FORBIDDEN_TYPE),  # float 1.0
        ("f93c00", ErrorCode.CBOR_FORBIDDEN_TYPE),  # half float
        ("c11a00000001", ErrorCode.CBOR_FORBIDDEN_TYPE),  # epoch date tag
        ("c249010000000000000000", ErrorCode.CBOR_FORBIDDEN_TYPE),  # bignum 2**64
        ("1b8000000000000000", ErrorCode.CBOR_FORBIDDEN_TYPE),  # 2**63: beyond SQLite's integers
        ("f7", ErrorCode.CBOR_FORBIDDEN_TYPE),  # undefined
        ("a10102", ErrorCode.CBOR_FORBIDDEN_TYPE),  # integer map key
        ("a1410102", ErrorCode.CBOR_FORBIDDEN_TYPE),  # byte-string map key
        ("62fffe", ErrorCode.RECORD_MALFORMED),  # invalid UTF-8
        ("", ErrorCode.RECORD_MALFORMED),
        ("5a0000ffff", ErrorCode.RECORD_MALFORMED),  # truncated
    ],
)
def test_rejections_carry_codes(hex_data: str, code: ErrorCode) -> None:
    assert code_of(bytes.fromhex(hex_data)) is code


def test_depth_is_capped() -> None:
    assert code_of(b"\x81" * 40 + b"\x01") is ErrorCode.CBOR_TOO_DEEP


def test_size_is_capped() -> None:
    with pytest.raises(RecordError) as info:
        codec.decode(codec.encode(b"x" * 2000), max_size=1000)
    assert info.value.code is ErrorCode.RECORD_TOO_LARGE


@pytest.mark.parametrize("value", [1.5, {1: 2}, {"a": {3}}, 2**63, -(2**63) - 1, object()])
def test_encoder_refuses_values_outside_the_model(value: object) -> None:
    with pytest.raises(RecordError) as info:
        codec.encode(value)
    assert info.value.code is ErrorCode.CBOR_FORBIDDEN_TYPE


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        codec.decode(data)
    except RecordError as exc:
        assert exc.code.value.startswith("E_")


def test_unicode_is_not_normalized() -> None:
    name = "\uf900丰"  # a CJK compatibility ideograph NFC would rewrite
    assert codec.decode(codec.encode({"name": name}))["name"] == name
