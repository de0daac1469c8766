"""The one place that speaks CBOR.

Every byte that is signed, stored or sent is made here by :func:`encode` and read back by
:func:`decode`. No other module imports ``cbor2``.

The data model is deliberately small, so that there is exactly one encoding of every value
(RFC 8949 §4.2 deterministic encoding; for maps with text keys only, cbor2's
``canonical=True`` length-first order coincides with the bytewise order):

=============  =========================================================
Python         CBOR
=============  =========================================================
``dict``       map, **text keys only**
``list``       array (tuples are encoded as arrays)
``str``        text string, never Unicode-normalized
``bytes``      byte string
``int``        integer in the signed 64-bit range (what SQLite stores)
``bool``       true/false
``None``       null
=============  =========================================================

Floats, tags (dates, bignums, decimals, UUIDs, sets), undefined, simple values and
indefinite lengths are refused in both directions. Decoding is capped in size and depth,
rejects duplicate map keys, and finally re-encodes the value and requires byte equality,
so a non-canonical encoding, trailing bytes or a smuggled second encoding of the same
value never get past it.
"""

from __future__ import annotations

import itertools
from typing import Any

import cbor2

from core.errors import ErrorCode, RecordError

MAX_DEPTH = 16
"""Deepest nesting accepted; record bodies need 5 or 6."""

DEFAULT_MAX_SIZE = 64 * 1024
"""Default cap on one encoded value (a record envelope)."""

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1

CborValue = Any
"""A value of the data model above (kept as ``Any``: it is recursive)."""


def encode(value: CborValue) -> bytes:
    """Encode ``value`` deterministically.

    Raises:
        RecordError: ``E_CBOR_FORBIDDEN_TYPE`` for a value outside the data model, which
            is a programming error on the encoding side, reported the same way.
    """
    _check(value, depth=0, path="$")
    try:
        return cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:  # pragma: no cover - _check covers it
        raise RecordError(ErrorCode.CBOR_FORBIDDEN_TYPE, str(exc)) from exc


def encode_decoded(value: CborValue) -> bytes:
    """Encode a value :func:`decode` returned (or a part of one, a map with keys removed):
    its maps are in canonical key order and inside the data model already, so the plain
    encoder writes the canonical form without :func:`encode`'s checks."""
    return cbor2.dumps(value)


def decode(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> CborValue:
    """Decode ``data`` strictly (see the module docstring).

    Raises:
        RecordError: ``E_RECORD_TOO_LARGE``, ``E_RECORD_MALFORMED``,
            ``E_CBOR_DUPLICATE_KEY``, ``E_CBOR_TOO_DEEP``, ``E_CBOR_FORBIDDEN_TYPE`` or
            ``E_CBOR_NONCANONICAL``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RecordError(ErrorCode.RECORD_MALFORMED, f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise RecordError(ErrorCode.RECORD_TOO_LARGE, f"{len(data)} bytes > {max_size}")
    if not data:
        raise RecordError(ErrorCode.RECORD_MALFORMED, "empty input")
    try:
        value = cbor2.loads(
            data,
            max_depth=MAX_DEPTH,
            allow_duplicate_keys=False,
            allow_indefinite=False,
            strict_hashable_types=True,
        )
    except cbor2.CBORDecodeError as exc:
        raise _translate(exc) from exc
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise RecordError(ErrorCode.RECORD_MALFORMED, str(exc)[:200]) from exc
    if not _in_model(value, 0):
        _check(value, depth=0, path="$")  # raises with the path; passing means the key order was wrong
        raise RecordError(ErrorCode.CBOR_NONCANONICAL, "map keys are not in canonical order")
    # With every map's keys already in canonical order, the plain encoder writes the
    # canonical form (it always uses the shortest heads), at a seventh of the cost.
    if cbor2.dumps(value) != data:
        raise RecordError(
            ErrorCode.CBOR_NONCANONICAL, "re-encoding differs (order, length form or trailing bytes)"
        )
    return value


def _translate(exc: Exception) -> RecordError:
    message = str(exc)
    lowered = message.lower()
    if "duplicate" in lowered:
        return RecordError(ErrorCode.CBOR_DUPLICATE_KEY, message[:200])
    if "depth" in lowered:
        return RecordError(ErrorCode.CBOR_TOO_DEEP, message[:200])
    if "map key must be" in lowered:
        return RecordError(ErrorCode.CBOR_FORBIDDEN_TYPE, message[:200])
    return RecordError(ErrorCode.RECORD_MALFORMED, message[:200])


def _in_model(value: CborValue, depth: int) -> bool:
    """Whether ``value`` is inside the data model with every map's keys in canonical order.

    The hot path of :func:`decode`: no error paths are built; :func:`_check` says what is
    wrong when this answers no. Leaves are checked in line, and whether a map's keys are
    text in canonical order is remembered per tuple of keys (records of a kind share them).
    """
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is list:
        elements = value
    elif kind is dict:
        keys = tuple(value)
        ordered = _ORDERED_KEYS.get(keys)
        if ordered is None:
            ordered = _keys_in_order(value)
            if len(_ORDERED_KEYS) < _ORDERED_KEYS_CAP:
                _ORDERED_KEYS[keys] = ordered
        if not ordered:
            return False
        elements = value.values()
    else:
        return _leaf_in_model(value, kind)
    for element in elements:
        kind = type(element)
        if kind is str or kind is bytes or kind is bool or element is None:
            continue
        if kind is int:
            if not _INT_MIN <= element <= _INT_MAX:
                return False
        elif not _in_model(element, depth + 1):
            return False
    return True


def _leaf_in_model(value: CborValue, kind: type) -> bool:
    if kind is str or kind is bytes or kind is bool or value is None:
        return True
    if kind is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    return False


_ORDERED_KEYS: dict[tuple[Any, ...], bool] = {}
_ORDERED_KEYS_CAP = 4096
"""Key tuples seen, and whether each is text in canonical order (bounded: a sender cannot
grow it without end, and past the cap the check is simply made each time)."""


def _keys_in_order(mapping: dict[Any, Any]) -> bool:
    if not all(type(k) is str for k in mapping):
        return False
    order = [(len(k.encode()), k.encode()) for k in mapping]
    return all(a < b for a, b in itertools.pairwise(order))


def _check(value: CborValue, depth: int, path: str) -> None:
    """Refuse anything outside the data model, naming where it was found."""
    if depth > MAX_DEPTH:
        raise RecordError(ErrorCode.CBOR_TOO_DEEP, path)
    # bool is a subclass of int: test it first so True is not range-checked as 1.
    if value is None or isinstance(value, bool | str | bytes):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise RecordError(
                ErrorCode.CBOR_FORBIDDEN_TYPE, f"{path}: integer outside the signed 64-bit range"
            )
        return
    if isinstance(value, list | tuple):
        for index, element in enumerate(value):
            _check(element, depth + 1, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, element in value.items():
            if not isinstance(key, str):
                raise RecordError(ErrorCode.CBOR_FORBIDDEN_TYPE, f"{path}: map key {key!r} is not text")
            _check(element, depth + 1, f"{path}.{key}")
        return
    raise RecordError(ErrorCode.CBOR_FORBIDDEN_TYPE, f"{path}: {type(value).__name__} is not allowed")
