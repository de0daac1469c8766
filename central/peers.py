"""Central's agreements with other cities: propose, confirm, renew, revoke (docs/federation.md).

An agreement starts as a **proposal** (:mod:`central.peer_store`): the peer city's net, name
and root key as the operator entered them, with the scope and validity. Nothing is signed
yet. :func:`confirm` requires the peer root's fingerprint typed back — the one the peer's
operator read out of band from ``tongban central fingerprint`` — and only then appends the
first ``peer.cert`` of the agreement (serial = the highest held + 1), signed with central's
``peers`` key. :func:`renew` appends the next serial of the same agreement (same root key,
a fresh validity, optionally a new scope); :func:`revoke` appends a ``peer.revoke`` ending
every serial issued so far. The records flow down to every node with central's chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from central import peer_link_store, peer_store
from central.authority import Central
from central.peer_store import Proposal
from core.errors import AuthorityError, ErrorCode, InputError, KeyFileError
from core.federation import (
    DAY,
    MAX_VALIDITY,
    MODES,
    ROLES,
    CrossCert,
    PeerRevocation,
    PeerState,
    Scope,
    ScopeItem,
)
from sync.projection.peers import peer_state, peer_states
from sync.record import kinds
from sync.record.db import transaction
from sync.record.envelope import Record
from sync.record.keys import fingerprint
from sync.record.trust import current_key

PREFIX_AGREEMENT = b"tongban/agreement/v1\x00"
VALID_DAYS = MAX_VALIDITY // DAY


def own_root(central: Central) -> bytes:
    """This city's root signing key now: what the peer's operator compares."""
    key = current_key(central.store.db, "root")
    if key is None:  # pragma: no cover - every central has its genesis key
        raise KeyFileError(ErrorCode.KEY_MISSING, "central names no root key")
    return key.sign_pk


def own_curve_key(central: Central) -> bytes:
    """This central's CURVE key (its genesis ``curve_pk``): the peer central pins it."""
    return bytes(central.keys.curve_public)


def scope_of(items: Iterable[tuple[str, int]], modes: Iterable[str], roles: Iterable[str]) -> Scope:
    """A scope of ``items`` (code, the peer's catalog version), each with ``modes`` and ``roles``."""
    modes, roles = sorted(set(modes)), sorted(set(roles))
    for value, allowed, what in ((modes, MODES, "mode"), (roles, ROLES, "role")):
        bad = [v for v in value if v not in allowed]
        if not value or bad:
            raise InputError(ErrorCode.FIELD_INVALID, f"{what} must be among {', '.join(allowed)}")
    listed = dict(items)
    if not listed:
        raise InputError(ErrorCode.FIELD_INVALID, "name at least one item as CODE:VERSION")
    return Scope(
        tuple(
            ScopeItem(code, cat, frozenset(modes), frozenset(roles)) for code, cat in sorted(listed.items())
        )
    )


def propose(
    central: Central,
    *,
    peer: str,
    name: str,
    root_pk: bytes,
    scope: Scope,
    valid_days: int = VALID_DAYS,
    link: tuple[str, bytes] | None = None,
) -> Proposal:
    """Keep a proposal for an agreement with ``peer``; its fingerprint is for the operator.
    ``link`` (the peer central's endpoint and CURVE key) is kept for the link between the
    centrals (:mod:`central.peer_outbox`), through confirmation and renewals."""
    if peer == central.config.central.net:
        raise InputError(ErrorCode.FIELD_INVALID, "a city does not federate with itself")
    if not peer.strip() or not name.strip():
        raise InputError(ErrorCode.FIELD_INVALID, "the peer's net and name are required")
    if len(root_pk) != 32:
        raise InputError(ErrorCode.FIELD_INVALID, "the root key is 32 bytes (64 hex digits)")
    if not 1 <= valid_days <= VALID_DAYS:
        raise InputError(ErrorCode.FIELD_INVALID, f"valid days must be 1 to {VALID_DAYS}")
    Scope.from_body(scope.to_body())  # the checks a node will make of it
    proposal = Proposal(peer, name.strip(), root_pk, scope, valid_days, central.store.log.clock.now())
    with transaction(central.store.db):
        peer_store.propose(central.store.db, proposal)
        if link is not None:
            peer_link_store.set_link(central.store.db, peer, *link)
    return proposal


def confirm(central: Central, peer: str, typed: str) -> Record:
    """Confirm the proposal for ``peer`` against the fingerprint the operator ``typed``.

    Raises:
        AuthorityError: ``E_PEER_UNKNOWN`` (nothing proposed), ``E_PEER_FINGERPRINT`` (the
            typed fingerprint is not the proposed root's: nothing is signed).
    """
    proposal = peer_store.proposal_of(central.store.db, peer)
    if proposal is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, f"nothing proposed for {peer}")
    if _normal(typed) != _normal(fingerprint(proposal.root_pk)):
        raise AuthorityError(ErrorCode.PEER_FINGERPRINT, peer)
    now = central.store.log.clock.now()
    agreement = hashlib.sha256(
        PREFIX_AGREEMENT + central.config.central.net.encode() + b"\x00" + peer.encode() + b"\x00"
        + proposal.root_pk + now.to_bytes(8, "big")
    ).digest()  # fmt: skip
    held = peer_state(central.store.db, peer)
    cert = CrossCert(
        peer=peer,
        name=proposal.name,
        root_pk=proposal.root_pk,
        agreement=agreement,
        serial=_next_serial(held),
        nbf=now,
        exp=now + proposal.valid_days * DAY,
        scope=proposal.scope,
    )
    record = central.append(kinds.PEER_CERT, cert.to_body(), "sys:peers")
    peer_store.drop(central.store.db, peer)
    return record


def renew(central: Central, peer: str, *, scope: Scope | None = None, valid_days: int = VALID_DAYS) -> Record:
    """The next serial of the agreement with ``peer``: same root, fresh validity, scope kept
    unless a new one is given. Refused for a peer with no live agreement (``E_PEER_UNKNOWN``,
    ``E_PEER_REVOKED``)."""
    if not 1 <= valid_days <= VALID_DAYS:
        raise InputError(ErrorCode.FIELD_INVALID, f"valid days must be 1 to {VALID_DAYS}")
    now = central.store.log.clock.now()
    held = peer_state(central.store.db, peer)
    newest = held.newest if held is not None else None
    if held is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, peer)
    if any(r.serial >= newest.serial for r in held.revocations):
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{peer}: propose and confirm a new agreement")
    cert = CrossCert(
        peer=peer,
        name=newest.name,
        root_pk=newest.root_pk,
        agreement=newest.agreement,
        serial=_next_serial(held),
        nbf=now,
        exp=now + valid_days * DAY,
        scope=scope if scope is not None else newest.scope,
    )
    return central.append(kinds.PEER_CERT, cert.to_body(), "sys:peers")


def revoke(central: Central, peer: str, reason: str) -> Record:
    """End every cross-certification of ``peer`` issued so far, from now on."""
    if not reason.strip():
        raise InputError(ErrorCode.FIELD_INVALID, "a reason is required")
    held = peer_state(central.store.db, peer)
    newest = held.newest if held is not None else None
    if held is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, peer)
    if any(r.serial >= newest.serial for r in held.revocations):
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{peer} is revoked already")
    now = central.store.log.clock.now()
    revocation = PeerRevocation(peer, newest.serial, now, reason.strip())
    return central.append(kinds.PEER_REVOKE, revocation.to_body(), "sys:peers")


def listing(central: Central) -> tuple[list[PeerState], list[Proposal]]:
    """Every peer held (with its certs and revocations) and every open proposal."""
    return list(peer_states(central.store.db).values()), peer_store.proposals(central.store.db)


def _next_serial(held: PeerState | None) -> int:
    if held is None:
        return 1
    return max([c.serial for c in held.certs] + [r.serial for r in held.revocations], default=0) + 1


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")
