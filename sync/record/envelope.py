"""The signed record envelope, defined once.

Wire and storage form of every record::

    envelope = CBOR array [ payload: bstr, sig: bstr(64) ]
    signed   = b"tongban/rec/v1\\x00" || payload
    sig      = Ed25519(signed)                 by the origin node's key ``kid``
    id       = SHA-256(signed)                 the record id (excludes sig)

    payload  = canonical CBOR map
      v      uint      envelope version, 1
      net    tstr      trust domain, e.g. "cn-330481"
      kind   tstr      "node.cert", "case.intake", ...
      origin tstr      author node code
      kid    bstr(8)   SHA-256(author signing public key)[:8]
      seq    uint      1, 2, 3 ... per origin, no gaps
      prev   bstr(32)  id of (origin, seq-1); see docs/record-format.md for seq 1
      ts     uint      author clock, epoch seconds (informational)
      actor  tstr      clerk id or "sys:<role>"; absent when there is none
      refs   map       context relied on: {"grant": id, "cat": version, ...}
      body   map       kind-specific, schema-checked (sync.record.kinds)

Other signed objects use the same ``[payload, sig]`` shape with their own prefix
(:data:`PREFIX_ENROLL`, :data:`PREFIX_RECEIPT`, :data:`PREFIX_CHECKPOINT`), so a signature
made for one purpose can never be replayed as another.

The signature covers the exact payload bytes that travel; nothing is re-encoded to verify.
Reading a record is :func:`split` (outer array), :func:`read_header` (strict decode of the
payload, only to learn who claims to have signed it), :func:`verify` with the key found for
(origin, kid), and only then is anything else in the payload acted on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from core.errors import ErrorCode, RecordError
from sync.record import codec

VERSION = 1
PREFIX_RECORD = b"tongban/rec/v1\x00"
PREFIX_ENROLL = b"tongban/enroll/v1\x00"
PREFIX_RECEIPT = b"tongban/rcpt/v1\x00"
PREFIX_CHECKPOINT = b"tongban/ckpt/v1\x00"
PREFIX_BUNDLE = b"tongban/bundle/v1\x00"

MAX_RECORD_SIZE = 256 * 1024
"""Cap on one envelope. Catalog releases are the largest records (≈0.5 KiB an item)."""
ZERO_ID = bytes(32)

_HEADER_TYPES: dict[str, type] = {
    "v": int,
    "net": str,
    "kind": str,
    "origin": str,
    "kid": bytes,
    "seq": int,
    "prev": bytes,
    "ts": int,
    "refs": dict,
    "body": dict,
}
_OPTIONAL = {"actor": str}
_ALLOWED = frozenset(_HEADER_TYPES) | frozenset(_OPTIONAL)
_MISSING = object()


class Signer(Protocol):
    """Something holding a private signing key."""

    @property
    def kid(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@runtime_checkable
class Keyring(Protocol):
    """Several signing keys, each for some kinds of record (central's role keys)."""

    def signer_for(self, kind: str) -> Signer: ...


@dataclass(frozen=True)
class Payload:
    """The signed content of a record."""

    net: str
    kind: str
    origin: str
    kid: bytes
    seq: int
    prev: bytes
    ts: int
    body: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None
    v: int = VERSION

    def to_map(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "v": self.v,
            "net": self.net,
            "kind": self.kind,
            "origin": self.origin,
            "kid": self.kid,
            "seq": self.seq,
            "prev": self.prev,
            "ts": self.ts,
            "refs": self.refs,
            "body": self.body,
        }
        if self.actor is not None:
            value["actor"] = self.actor
        return value


@dataclass(frozen=True)
class Record:
    """A record whose envelope has been split and whose payload has been decoded.

    ``verified`` is only ever true on records that went through :func:`verify` or were
    made by :func:`seal`.
    """

    id: bytes
    payload: Payload
    payload_bytes: bytes
    sig: bytes
    envelope: bytes

    @property
    def origin(self) -> str:
        return self.payload.origin

    @property
    def seq(self) -> int:
        return self.payload.seq

    @property
    def kind(self) -> str:
        return self.payload.kind

    @property
    def body(self) -> dict[str, Any]:
        return self.payload.body


def record_id(payload_bytes: bytes, prefix: bytes = PREFIX_RECORD) -> bytes:
    """SHA-256 over the prefixed payload: the id of a record (or other signed object)."""
    return hashlib.sha256(prefix + payload_bytes).digest()


def key_id(public_key: bytes) -> bytes:
    """The 8-byte key id of an Ed25519 public key."""
    return hashlib.sha256(public_key).digest()[:8]


def seal(payload: Payload, signer: Signer) -> Record:
    """Encode, sign and wrap ``payload``; ``payload.kid`` must be the signer's."""
    if payload.kid != signer.kid:
        raise RecordError(ErrorCode.KEY_UNKNOWN, "payload kid does not match the signing key")
    payload_bytes = codec.encode(payload.to_map())
    sig = signer.sign(PREFIX_RECORD + payload_bytes)
    envelope = codec.encode([payload_bytes, sig])
    if len(envelope) > MAX_RECORD_SIZE:
        raise RecordError(ErrorCode.RECORD_TOO_LARGE, f"{len(envelope)} bytes > {MAX_RECORD_SIZE}")
    return Record(record_id(payload_bytes), payload, payload_bytes, sig, envelope)


def split(envelope: bytes, max_size: int = MAX_RECORD_SIZE) -> tuple[bytes, bytes]:
    """Strictly decode the outer ``[payload, sig]`` array."""
    if type(envelope) is bytes and len(envelope) <= max_size:
        parts = _split_canonical(envelope)
        if parts is not None:
            return parts
    value = codec.decode(envelope, max_size=max_size)
    if not (isinstance(value, list) and len(value) == 2):
        raise RecordError(ErrorCode.RECORD_MALFORMED, "envelope is not a two-element array")
    payload_bytes, sig = value
    if not isinstance(payload_bytes, bytes) or not isinstance(sig, bytes):
        raise RecordError(ErrorCode.RECORD_MALFORMED, "envelope elements must be byte strings")
    if len(sig) != 64:
        raise RecordError(ErrorCode.RECORD_MALFORMED, f"signature is {len(sig)} bytes, not 64")
    return payload_bytes, sig


def _split_canonical(data: bytes) -> tuple[bytes, bytes] | None:
    """The two parts of an envelope in its one canonical form, else None (then the full
    decoder says what is wrong): ``82``, a byte string in its shortest head, ``58 40``
    and 64 signature bytes, nothing after. Every ingest splits, so this is the hot path."""
    if len(data) < 68 or data[0] != 0x82:
        return None
    head = data[1]
    if 0x40 <= head <= 0x57:
        start, length = 2, head - 0x40
    elif head == 0x58 and data[2] >= 24:
        start, length = 3, data[2]
    elif head == 0x59:
        start, length = 4, int.from_bytes(data[2:4], "big")
        if length < 0x100:
            return None
    elif head == 0x5A:
        start, length = 6, int.from_bytes(data[2:6], "big")
        if length < 0x10000:
            return None
    else:
        return None
    end = start + length
    if len(data) != end + 66 or data[end] != 0x58 or data[end + 1] != 0x40:
        return None
    return data[start:end], data[end + 2 :]


def read_header(payload_bytes: bytes) -> Payload:
    """Strictly decode a record payload and check the header's shape (not the body's)."""
    value = codec.decode(payload_bytes, max_size=MAX_RECORD_SIZE)
    if not isinstance(value, dict):
        raise RecordError(ErrorCode.SCHEMA, "payload is not a map")
    version = value.get("v")
    if version != VERSION:
        raise RecordError(ErrorCode.VERSION_UNSUPPORTED, f"v={version!r}; this software reads v={VERSION}")
    if not value.keys() <= _ALLOWED:
        unknown = sorted(set(value) - _ALLOWED)
        raise RecordError(ErrorCode.SCHEMA, f"unknown header field(s): {', '.join(unknown)}")
    for name, expected in _HEADER_TYPES.items():
        # The decoder yields exactly these types (never subclasses); ``type() is`` also
        # keeps booleans out of integer fields.
        field_value = value.get(name, _MISSING)
        if type(field_value) is not expected:
            if field_value is _MISSING:
                raise RecordError(ErrorCode.SCHEMA, f"header field '{name}' is missing")
            raise RecordError(ErrorCode.SCHEMA, f"header field '{name}' has the wrong type")
    if "actor" in value and not isinstance(value["actor"], str):
        raise RecordError(ErrorCode.SCHEMA, "header field 'actor' has the wrong type")
    if len(value["kid"]) != 8 or len(value["prev"]) != 32:
        raise RecordError(ErrorCode.SCHEMA, "kid must be 8 bytes and prev 32 bytes")
    if value["seq"] < 1 or value["ts"] < 0:
        raise RecordError(ErrorCode.SCHEMA, "seq must be >= 1 and ts >= 0")
    if not value["origin"] or not value["kind"] or not value["net"]:
        raise RecordError(ErrorCode.SCHEMA, "origin, kind and net must not be empty")
    return Payload(
        net=value["net"],
        kind=value["kind"],
        origin=value["origin"],
        kid=value["kid"],
        seq=value["seq"],
        prev=value["prev"],
        ts=value["ts"],
        body=value["body"],
        refs=value["refs"],
        actor=value.get("actor"),
        v=version,
    )


def verify_signature(public_key: bytes, message: bytes, sig: bytes) -> None:
    """Check an Ed25519 signature over ``message`` (already prefixed)."""
    try:
        VerifyKey(public_key).verify(message, sig)
    except (BadSignatureError, ValueError, TypeError) as exc:
        raise RecordError(ErrorCode.SIGNATURE_INVALID) from exc


def open_record(envelope: bytes, public_key_for: KeyLookup) -> Record:
    """Split, read the header, find the key, verify: the whole read path in order.

    Raises:
        RecordError: with the code of the first check that failed; ``E_KEY_UNKNOWN``
            when ``public_key_for`` has no key for (origin, kid).
    """
    payload_bytes, sig = split(envelope)
    payload = read_header(payload_bytes)
    public_key = public_key_for(payload)
    if public_key is None:
        raise RecordError(ErrorCode.KEY_UNKNOWN, f"{payload.origin} key {payload.kid.hex()}")
    verify_signature(public_key, PREFIX_RECORD + payload_bytes, sig)
    return Record(record_id(payload_bytes), payload, payload_bytes, sig, envelope)


class KeyLookup(Protocol):
    """Finds the public key an origin signs with under ``kid``, or None."""

    def __call__(self, payload: Payload, /) -> bytes | None: ...


def sign_object(prefix: bytes, value: dict[str, Any], signer: Signer) -> bytes:
    """Sign a non-record object (enrollment request, receipt, bundle) as ``[payload, sig]``."""
    payload_bytes = codec.encode(value)
    return codec.encode([payload_bytes, signer.sign(prefix + payload_bytes)])


def open_object(
    prefix: bytes, data: bytes, max_size: int = MAX_RECORD_SIZE
) -> tuple[dict[str, Any], bytes, bytes]:
    """Split and decode a signed object; returns (value, payload_bytes, sig) — not yet verified.

    The caller verifies with :func:`verify_signature` over ``prefix + payload_bytes`` once
    it knows which key must have signed.
    """
    payload_bytes, sig = split(data, max_size=max_size)
    value = codec.decode(payload_bytes, max_size=max_size)
    if not isinstance(value, dict):
        raise RecordError(ErrorCode.SCHEMA, "signed object is not a map")
    return value, payload_bytes, sig
