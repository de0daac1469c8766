"""Enrollment objects exchanged between a new node and central, carried by hand or Ansible.

Request (node → central), a signed object with prefix ``tongban/enroll/v1``::

    [ payload, sig ]   payload = {format: "tongban-enroll/1", code, tier, name, parent,
                                  sign_pk: bstr(32), curve_pk: bstr(32), ts}
    sig = Ed25519 by sign_pk itself: the proof that the requester holds the private key.

Bundle (central → node), a canonical CBOR map; everything in it is a signed record that
the node checks on its own, so the wrapper needs no signature of its own::

    {format: "tongban-bundle/1", node: code, anchor: genesis envelope,
     records: [envelope, ...]}   certificates on the node's chain, the current catalog

The anchor is trusted on the operator's word: central prints its fingerprint at
``central init`` and ``node enroll --anchor`` checks it.
"""

from __future__ import annotations

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

REQUEST_FORMAT = "tongban-enroll/1"
BUNDLE_FORMAT = "tongban-bundle/1"
MAX_REQUEST_SIZE = 4 * 1024
MAX_BUNDLE_SIZE = 8 * 1024 * 1024

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
    signer: Signer, *, code: str, tier: str, name: str, parent: str, sign_pk: bytes, curve_pk: bytes, ts: int
) -> bytes:
    value = {
        "format": REQUEST_FORMAT,
        "code": code,
        "tier": tier,
        "name": name,
        "parent": parent,
        "sign_pk": sign_pk,
        "curve_pk": curve_pk,
        "ts": ts,
    }
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
    if set(value) != set(_REQUEST_FIELDS):
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, "fields do not match " + REQUEST_FORMAT)
    for name, expected in _REQUEST_FIELDS.items():
        if not isinstance(value[name], expected) or isinstance(value[name], bool):
            raise EnrollmentError(ErrorCode.ENROLL_REQUEST, f"field {name} has the wrong type")
    if value["format"] != REQUEST_FORMAT or len(value["sign_pk"]) != 32 or len(value["curve_pk"]) != 32:
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, "unknown format or key length")
    try:
        verify_signature(value["sign_pk"], PREFIX_ENROLL + payload_bytes, sig)
    except RecordError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_POP) from exc
    fields: dict[str, Any] = {k: v for k, v in value.items() if k != "format"}
    return EnrollmentRequest(**fields, raw=bytes(data))


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
