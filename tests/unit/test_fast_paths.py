"""The fast paths of decoding agree byte for byte with the strict reference they shortcut."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ErrorCode, RecordError
from sync.record import codec
from sync.record.envelope import split

texts = st.text(max_size=6)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.binary(max_size=30), texts, st.floats()
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.one_of(texts, st.integers()), children, max_size=4)
    ),
    max_leaves=12,
)


def reference_decode(data: bytes) -> object:
    """The decoder as first written: full canonical re-encoding, no shortcuts."""
    value = cbor2.loads(
        data,
        max_depth=codec.MAX_DEPTH,
        allow_duplicate_keys=False,
        allow_indefinite=False,
        strict_hashable_types=True,
    )
    codec._check(value, 0, "$")
    if cbor2.dumps(value, canonical=True) != data:
        raise RecordError(ErrorCode.CBOR_NONCANONICAL)
    return value


def outcome(decode: object, data: bytes) -> object:
    try:
        return ("ok", decode(data))  # type: ignore[operator]
    except RecordError as exc:
        return ("refused", exc.code)
    except Exception:  # the reference lets foreign errors out; the codec translates them
        return ("refused", None)


@given(values)
def test_fast_decoder_agrees_with_the_reference(value: object) -> None:
    for data in (cbor2.dumps(value), cbor2.dumps(value, canonical=True)):
        fast, slow = outcome(codec.decode, data), outcome(reference_decode, data)
        if slow[0] == "ok":
            assert fast == slow
        else:
            assert fast[0] == "refused"


@given(st.binary(max_size=300), st.binary(max_size=80))
def test_fast_split_agrees_with_the_decoder(payload: bytes, sig: bytes) -> None:
    for data in (cbor2.dumps([payload, sig]), cbor2.dumps([payload, sig]) + b"\x00"):
        value = outcome(lambda d: codec.decode(d, max_size=1 << 20), data)
        expected = value[0] == "ok" and len(sig) == 64
        if expected:
            assert split(data) == (payload, sig)
        else:
            with pytest.raises(RecordError):
                split(data)


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x82, 0x58, 0x01]) + b"x" + bytes([0x58, 0x40]) + b"s" * 64,  # 1-byte string, long head
        bytes([0x82, 0x59, 0x00, 0x05]) + b"x" * 5 + bytes([0x58, 0x40]) + b"s" * 64,
    ],
)
def test_fast_split_refuses_long_heads(data: bytes) -> None:
    with pytest.raises(RecordError) as info:
        split(data)
    assert info.value.code is ErrorCode.CBOR_NONCANONICAL


@given(
    st.lists(
        st.tuples(st.integers(1, 400), st.sampled_from([None, "330481104", "330481104201", "330481001"])),
        max_size=200,
    )
)
def test_the_parents_scope_cache_answers_as_a_dictionary_would(puts: list[tuple[int, str | None]]) -> None:
    """``ParentLink``'s compact cache of scopes, over a small window so that it slides: what
    it answers it was told (the newest), and what is below its window it says it does not
    know (the scan decodes it again)."""
    from sync.link.scopes import Scopes

    cache = Scopes(window=64)
    told: dict[int, str | None] = {}
    for arrival, scope in puts:
        cache.put(arrival, scope)
        told[arrival] = scope
        known, answer = cache.get(arrival)
        assert (known and answer == scope) or (arrival < cache.base and not known)
    for arrival in range(0, 402):
        known, answer = cache.get(arrival)
        if known:
            assert answer == told[arrival]
        else:
            assert answer is None
