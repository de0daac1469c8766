"""Another city's records, checked against the root our agreement with it names.

A foreign record keeps its own ``net``, signature and bytes: it is never re-signed and never
enters our ``records`` table (whose one door keeps refusing another network,
``E_NET_MISMATCH``). It travels with the **chain** that certifies its signer in its own city,
as an X.509 message carries its certificate path: the peer central's ``key.role`` naming the
key that signed the certificate (none when the peer's root signed it), and the signer's
``node.cert`` or ``department.cert`` (none when the peer's central signed the record itself,
then a ``key.role`` naming that key, or the root). :func:`open_foreign` checks the chain from
the agreed root (``root_pk`` of our ``peer.cert``, the key the operators compared) down to
the record, with the same strict codec and signature check as our own log:

* every link and the record are of the peer's net;
* a ``key.role`` is signed by the root, and its key signs only its role's kinds;
* a certificate is signed by the root or the ``certs`` key, and is valid when the record
  was signed;
* the record is signed by the key its ``kid`` names, of the origin the certificate names.

A root key's record signed by another key than the agreed root is ``E_PEER_ROOT_CHANGED``
(the peer rotated its root: the operators compare the new fingerprint and agree again);
anything else is ``E_PEER_CHAIN``; a bad signature is ``E_SIGNATURE_INVALID``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from core.errors import AuthorityError, ErrorCode, RecordError, TongbanError
from sync.record import kinds, trust
from sync.record.envelope import (
    PREFIX_RECORD,
    Record,
    key_id,
    read_header,
    record_id,
    split,
    verify_signature,
)
from sync.record.log import stored_record

MAX_CHAIN = 4
"""A chain is at most the role key, the certificate, and room for both of a rotation."""


@dataclass(frozen=True)
class _Key:
    public: bytes
    role: str | None  # a key of the peer's central: its role ("root" for the root)
    origin: str | None  # a node's or department's key: the code it is certified for
    nbf: int = 0
    exp: int = 2**63 - 1


@dataclass(frozen=True)
class Foreign:
    """A foreign record whose chain checked: the record, and who signed it in its city."""

    record: Record
    signer_role: str | None  # the peer central's role key that signed it, or None
    certified: str | None  # the node or department the signer's certificate names, or None


def _refuse(detail: str) -> AuthorityError:
    return AuthorityError(ErrorCode.PEER_CHAIN, detail)


def _open(envelope: object, net: str) -> tuple[Record, bytes]:
    if not isinstance(envelope, bytes):
        raise _refuse("a chain link is not a byte string")
    payload_bytes, sig = split(envelope)
    payload = read_header(payload_bytes)
    if payload.net != net:
        raise _refuse(f"a record of {payload.net} in the chain of {net}")
    record = Record(record_id(payload_bytes), payload, payload_bytes, sig, envelope)
    return record, PREFIX_RECORD + payload_bytes


def _signer(keys: dict[bytes, _Key], record: Record) -> _Key:
    key = keys.get(record.payload.kid)
    if key is None and record.kind in (kinds.KEY_ROLE, kinds.ROOT_ROTATE, kinds.NET_GENESIS):
        # Only a root signs these: the peer signs under another root than the one agreed.
        raise AuthorityError(
            ErrorCode.PEER_ROOT_CHANGED, f"{record.kind} of {record.origin} signed by a root not agreed"
        )
    if key is None:
        raise _refuse(
            f"{record.kind} of {record.origin} signed by key {record.payload.kid.hex()} the chain names not"
        )
    return key


def open_foreign(envelope: bytes, chain: Sequence[bytes], net: str, root_pk: bytes) -> Foreign:
    """``envelope``, a record of city ``net``, checked along ``chain`` from ``root_pk``.

    Raises:
        AuthorityError: ``E_PEER_CHAIN``, the chain does not lead from the root to the record.
        RecordError: ``E_SIGNATURE_INVALID``, or a codec or header code.
    """
    if not isinstance(chain, (list, tuple)) or len(chain) > MAX_CHAIN:
        raise _refuse(f"a chain is a list of at most {MAX_CHAIN} records")
    keys: dict[bytes, _Key] = {key_id(root_pk): _Key(root_pk, "root", None)}
    try:
        for link in chain:
            record, signed = _open(link, net)
            key = _signer(keys, record)
            body = record.body
            if record.kind == kinds.KEY_ROLE:
                if key.role != "root":
                    raise _refuse("a key.role not signed by the root")
                verify_signature(key.public, signed, record.sig)
                public = body.get("sign_pk")
                if (
                    not isinstance(public, bytes)
                    or len(public) != 32
                    or not isinstance(body.get("role"), str)
                ):
                    raise _refuse("a key.role without a role and a 32-byte key")
                keys[key_id(public)] = _Key(public, str(body["role"]), None)
            elif record.kind in (kinds.NODE_CERT, kinds.DEPARTMENT_CERT):
                if key.role not in ("root", "certs"):
                    raise _refuse(f"a certificate signed by the {key.role or record.origin} key")
                verify_signature(key.public, signed, record.sig)
                code = body.get("node") if record.kind == kinds.NODE_CERT else body.get("code")
                public = body.get("sign_pk")
                nbf, exp = body.get("nbf"), body.get("exp")
                if not (isinstance(code, str) and isinstance(public, bytes) and len(public) == 32):
                    raise _refuse("a certificate without a code and a 32-byte key")
                if not (isinstance(nbf, int) and isinstance(exp, int)):
                    raise _refuse("a certificate without its validity")
                keys[key_id(public)] = _Key(public, None, code, nbf, exp)
            else:
                raise _refuse(f"a {record.kind} cannot certify a key")
        record, signed = _open(envelope, net)
        key = _signer(keys, record)
        if key.role is not None:
            role = trust.role_of(record.kind)
            if key.role != "root" and role != key.role:
                raise _refuse(f"the peer's {key.role} key signed a {record.kind}")
        elif key.origin != record.origin:
            raise _refuse(f"{record.origin} signed with the key of {key.origin}")
        elif not key.nbf <= record.payload.ts < key.exp:
            raise _refuse(f"{record.origin}'s certificate was not valid when it signed")
        verify_signature(key.public, signed, record.sig)
    except (RecordError, AuthorityError):
        raise
    except TongbanError as exc:  # a codec error of a nested link
        raise _refuse(exc.text("en")) from exc
    return Foreign(record, key.role, key.origin)


def chain_of(db: Database, record: Record) -> list[bytes]:
    """The chain this city sends with ``record`` of its own (see the module docstring): the
    ``key.role`` naming the central key that signed the record or its signer's certificate
    (none for the root), and that certificate when a node or a department signed it.

    Raises:
        AuthorityError: ``E_PEER_CHAIN`` when the store lacks a link (it verified the record,
            so it holds them all).
    """
    links: list[bytes] = []
    key = trust.central_signing_key(db, record.payload.kid)
    if key is None:
        cert_id = trust.cert_of_key(db, record.origin, record.payload.kid)
        cert = stored_record(db, cert_id) if cert_id is not None else None
        if cert is None:
            raise _refuse(f"no certificate of {record.origin} held")
        links.append(cert.envelope)
        key = trust.central_signing_key(db, cert.payload.kid)
        if key is None:
            raise _refuse(f"the key that certified {record.origin} is not held")
    if key.role != "root":
        role_record = stored_record(db, key.cert_id)
        if role_record is None:
            raise _refuse(f"central's {key.role} key record is not held")
        links.insert(0, role_record.envelope)
    return links
