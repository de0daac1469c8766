"""Enrollment objects exchanged between a new node and central, carried by hand or Ansible.

Request (node → central), a signed object with prefix ``tongban/enroll/v1``::

    [ payload, sig ]   payload = {format: "tongban-enroll/2", code, tier, name, parent,
                                  sign_pk: bstr(32), curve_pk: bstr(32), ts, token}
    sig = Ed25519 by sign_pk itself: the proof that the requester holds the private key.

``token`` is the one-time enrollment token central issued for ``code`` (:func:`new_token`;
central keeps only its :func:`token_digest`), inside the signed payload so that it is bound
to the key. Format 1 is format 2 without a token; it is still read (the requests inside
the certificates of nodes enrolled before tokens), and central refuses to enroll it.

Bundle (central → node), a canonical CBOR map; everything in it is a signed record that
the node checks on its own, so the wrapper needs no signature of its own::

    {format: "tongban-bundle/1", node: code, anchor: genesis envelope,
     records: [envelope, ...]}   certificates on the node's chain, the current catalog

The anchor is trusted on the operator's word: central prints its fingerprint at
``central init`` and ``node enroll --anchor`` checks it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import EnrollmentError, ErrorCode, RecordError
from sync.record import codec
from sync.record.envelope import (
    PREFIX_ENROLL,
    Signer,
    open_object,
    record_id,
    sign_object,
    split,
    verify_signature,
)

REQUEST_FORMAT = "tongban-enroll/2"
REQUEST_FORMAT_1 = "tongban-enroll/1"
BUNDLE_FORMAT = "tongban-bundle/1"
MAX_REQUEST_SIZE = 4 * 1024
MAX_BUNDLE_SIZE = 8 * 1024 * 1024
TOKEN_BYTES = 20
"""Random bytes in an enrollment token: 160 bits, 32 base32 characters."""

_REQUEST_FIELDS: dict[str, type] = {
    "format": str,
    "code": str,
    "tier": str,
    "name": str,
    "parent": str,
    "sign_pk": bytes,
    "curve_pk": bytes,
    "ts": int,
}
_FIELDS_OF = {REQUEST_FORMAT_1: _REQUEST_FIELDS, REQUEST_FORMAT: {**_REQUEST_FIELDS, "token": str}}


@dataclass(frozen=True)
class EnrollmentRequest:
    code: str
    tier: str
    name: str
    parent: str
    sign_pk: bytes
    curve_pk: bytes
    ts: int
    raw: bytes
    token: str | None = None  # None: a format-1 request, made before tokens

    @property
    def id(self) -> bytes:
        payload_bytes, _ = split(self.raw, max_size=MAX_REQUEST_SIZE)
        return record_id(payload_bytes, PREFIX_ENROLL)


@dataclass(frozen=True)
class Bundle:
    node: str
    anchor: bytes
    records: tuple[bytes, ...]


def make_request(
    signer: Signer,
    *,
    code: str,
    tier: str,
    name: str,
    parent: str,
    sign_pk: bytes,
    curve_pk: bytes,
    ts: int,
    token: str | None = None,
) -> bytes:
    """A signed request; with ``token`` (:func:`normalize_token` applied) of format 2, without
    one of format 1, which central no longer enrolls."""
    value: dict[str, Any] = {
        "format": REQUEST_FORMAT if token is not None else REQUEST_FORMAT_1,
        "code": code,
        "tier": tier,
        "name": name,
        "parent": parent,
        "sign_pk": sign_pk,
        "curve_pk": curve_pk,
        "ts": ts,
    }
    if token is not None:
        value["token"] = normalize_token(token)
    return sign_object(PREFIX_ENROLL, value, signer)


def read_request(data: bytes) -> EnrollmentRequest:
    """Decode a request and check its proof of possession.

    Raises:
        EnrollmentError: ``E_ENROLL_REQUEST`` (malformed) or ``E_ENROLL_POP``.
    """
    try:
        value, payload_bytes, sig = open_object(PREFIX_ENROLL, data, max_size=MAX_REQUEST_SIZE)
    except RecordError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, exc.render("en")) from exc
    fields_of = _FIELDS_OF.get(value.get("format"))  # type: ignore[arg-type]
    if fields_of is None:
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, f"unknown format {value.get('format')!r}")
    if set(value) != set(fields_of):
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, "fields do not match " + value["format"])
    for name, expected in fields_of.items():
        if not isinstance(value[name], expected) or isinstance(value[name], bool):
            raise EnrollmentError(ErrorCode.ENROLL_REQUEST, f"field {name} has the wrong type")
    if len(value["sign_pk"]) != 32 or len(value["curve_pk"]) != 32:
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, "wrong key length")
    try:
        verify_signature(value["sign_pk"], PREFIX_ENROLL + payload_bytes, sig)
    except RecordError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_POP) from exc
    fields: dict[str, Any] = {k: v for k, v in value.items() if k != "format"}
    return EnrollmentRequest(**fields, raw=bytes(data))


def new_token(random: Callable[[int], bytes]) -> str:
    """A fresh enrollment token as an operator reads it out: base32 in groups of four."""
    text = base64.b32encode(random(TOKEN_BYTES)).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalize_token(text: str) -> str:
    """The token ``text`` names, as it is signed and hashed: its base32 characters, upper
    case, without separators. ``E_ENROLL_TOKEN`` when it is not one."""
    cleaned = "".join(text.split()).replace("-", "").upper()
    try:
        raw = base64.b32decode(cleaned, casefold=False) if len(cleaned) % 8 == 0 else b""
    except ValueError:
        raw = b""
    if len(raw) != TOKEN_BYTES:
        raise EnrollmentError(ErrorCode.ENROLL_TOKEN, "not an enrollment token")
    return cleaned


def token_digest(token: str) -> bytes:
    """What central keeps of a token: the SHA-256 of its normalized text."""
    return hashlib.sha256(normalize_token(token).encode("ascii")).digest()


def make_bundle(node: str, anchor: bytes, records: list[bytes]) -> bytes:
    return codec.encode({"format": BUNDLE_FORMAT, "node": node, "anchor": anchor, "records": records})


def read_bundle(data: bytes) -> Bundle:
    """Decode a bundle's wrapper; its records are checked when they are ingested."""
    try:
        value = codec.decode(data, max_size=MAX_BUNDLE_SIZE)
    except RecordError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_BUNDLE, exc.render("en")) from exc
    if (
        not isinstance(value, dict)
        or set(value) != {"format", "node", "anchor", "records"}
        or value["format"] != BUNDLE_FORMAT
        or not isinstance(value["node"], str)
        or not isinstance(value["anchor"], bytes)
        or not isinstance(value["records"], list)
        or not all(isinstance(r, bytes) for r in value["records"])
    ):
        raise EnrollmentError(ErrorCode.ENROLL_BUNDLE, "not a " + BUNDLE_FORMAT + " bundle")
    return Bundle(value["node"], value["anchor"], tuple(value["records"]))


def anchor_fingerprint(genesis_id: bytes) -> str:
    """The anchor fingerprint operators compare: the genesis id in groups of four hex digits."""
    text = genesis_id.hex()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_fingerprint(text: str) -> bytes:
    cleaned = text.replace("-", "").replace(":", "").replace(" ", "").lower()
    try:
        value = bytes.fromhex(cleaned)
    except ValueError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_ANCHOR, "the fingerprint is not hexadecimal") from exc
    if len(value) != 32:
        raise EnrollmentError(ErrorCode.ENROLL_ANCHOR, "the fingerprint must be 64 hex digits")
    return value
