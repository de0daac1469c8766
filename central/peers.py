"""Central's agreements with other cities: propose, confirm, renew, revoke (docs/federation.md).

An agreement starts as a **proposal** (:mod:`central.peer_store`): the peer city's net, name
and root key as the operator entered them, with the scope and validity. Nothing is signed
yet. :func:`confirm` requires the peer root's fingerprint typed back — the one the peer's
operator read out of band from ``tongban central fingerprint`` — and only then appends the
first ``peer.cert`` of the agreement (serial = the highest held + 1), signed with central's
``peers`` key. :func:`renew` appends the next serial of the same agreement (same root key,
a fresh validity, optionally a new scope); :func:`revoke` appends a ``peer.revoke`` ending
every serial issued so far. The records flow down to every node with central's chain.

Central's timer (:class:`central.services.CentralDuties`) calls :func:`renew_due`: while an
agreement holds, its cross-certification is renewed once a third or less of its validity
is left (:meth:`core.federation.PeerState.renewal_due`), and each renewal is logged. The
command line and the operators' page (:mod:`central.web.peers`) call the same functions,
and read what operators type with :func:`root_key_of` and :func:`items_of`.
"""

from __future__ import annotations

import hashlib
import logging
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
from sync.record.inspect import format_time
from sync.record.keys import fingerprint
from sync.record.trust import current_key

log = logging.getLogger(__name__)

PREFIX_AGREEMENT = b"tongban/agreement/v1\x00"
VALID_DAYS = MAX_VALIDITY // DAY


def root_key_of(text: str) -> bytes:
    """The peer's root key as the operator typed it: 64 hex digits (spaces and colons allowed)."""
    digits = "".join(ch for ch in text if ch not in " :\t\r\n")
    try:
        value = bytes.fromhex(digits)
    except ValueError as exc:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            "the root key is 64 hex digits",
            zh="根密钥应为64位十六进制数",
            field="root_pk",
        ) from exc
    if len(value) != 32:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            "the root key is 64 hex digits",
            zh="根密钥应为64位十六进制数",
            field="root_pk",
        )
    return value


def items_of(lines: Iterable[str]) -> list[tuple[str, int]]:
    """Items as the operator typed them, one ``CODE:VERSION`` each (blank lines skipped)."""
    out = []
    for line in lines:
        value = line.strip()
        if not value:
            continue
        code, _, version = value.rpartition(":")
        if not code.strip() or not version.strip().isdigit():
            raise InputError(
                ErrorCode.FIELD_INVALID,
                f"{value}: an item is CODE:VERSION",
                zh=f"{value}：每个事项应写成“事项编码:清单版本”",
                field="items",
            )
        out.append((code.strip(), int(version)))
    return out


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
            zh = "请选择办理方式：代收代办或多地联办" if what == "mode" else "请选择环节：受理、审批或送达"
            raise InputError(
                ErrorCode.FIELD_INVALID, f"{what} must be among {', '.join(allowed)}", zh=zh, field=what + "s"
            )
    listed = dict(items)
    if not listed:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            "name at least one item as CODE:VERSION",
            zh="请至少填写一个事项（事项编码:清单版本）",
            field="items",
        )
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
        raise InputError(
            ErrorCode.FIELD_INVALID,
            "a city does not federate with itself",
            zh="不能与本市自身签订互认协议",
            field="net",
        )
    if not peer.strip() or not name.strip():
        raise InputError(
            ErrorCode.FIELD_INVALID,
            "the peer's net and name are required",
            zh="请填写对方城市的网络编码和名称",
        )
    if len(root_pk) != 32:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            "the root key is 32 bytes (64 hex digits)",
            zh="根密钥应为64位十六进制数",
            field="root_pk",
        )
    _check_days(valid_days)
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
        raise AuthorityError(ErrorCode.PEER_FINGERPRINT, peer, field="fingerprint")
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
    with transaction(central.store.db):  # the certificate and the proposal's end, or neither
        record = central.append(kinds.PEER_CERT, cert.to_body(), "sys:peers")
        peer_store.drop(central.store.db, peer)
    return record


def renew(central: Central, peer: str, *, scope: Scope | None = None, valid_days: int = VALID_DAYS) -> Record:
    """The next serial of the agreement with ``peer``: same root, fresh validity, scope kept
    unless a new one is given. Refused for a peer with no live agreement (``E_PEER_UNKNOWN``,
    ``E_PEER_REVOKED``)."""
    _check_days(valid_days)
    now = central.store.log.clock.now()
    held = peer_state(central.store.db, peer)
    newest = held.newest if held is not None else None
    if held is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, peer)
    if held.ended is not None:
        raise AuthorityError(
            ErrorCode.PEER_REVOKED,
            f"{peer}: propose and confirm a new agreement",
            zh=f"{newest.name}：须重新提出并确认新的协议",
        )
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
        raise InputError(
            ErrorCode.FIELD_REQUIRED, "a reason is required", zh="请填写撤销原因", field="reason"
        )
    held = peer_state(central.store.db, peer)
    newest = held.newest if held is not None else None
    if held is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, peer)
    if held.ended is not None:
        raise AuthorityError(
            ErrorCode.PEER_REVOKED, f"{peer} is revoked already", zh=f"{newest.name}的协议已撤销"
        )
    now = central.store.log.clock.now()
    revocation = PeerRevocation(peer, newest.serial, now, reason.strip())
    return central.append(kinds.PEER_REVOKE, revocation.to_body(), "sys:peers")


def renew_due(central: Central) -> list[Record]:
    """Renew every agreement that is due (central's timer): the next serial, same agreement,
    root and scope, valid as long as the one it follows. Each renewal is logged."""
    now = central.store.log.clock.now()
    made = []
    for net, held in peer_states(central.store.db).items():
        due = held.renewal_due(now)
        if due is None:
            continue
        days = min(max((due.exp - due.nbf) // DAY, 1), VALID_DAYS)
        record = renew(central, net, valid_days=days)
        log.info(
            "renewed the agreement with %s (%s): cross-certification #%s valid to %s",
            due.name, net, record.body["serial"], format_time(record.body["exp"]),
        )  # fmt: skip
        made.append(record)
    return made


def listing(central: Central) -> tuple[list[PeerState], list[Proposal]]:
    """Every peer held (with its certs and revocations) and every open proposal."""
    return list(peer_states(central.store.db).values()), peer_store.proposals(central.store.db)


def _check_days(valid_days: int) -> None:
    if not 1 <= valid_days <= VALID_DAYS:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"valid days must be 1 to {VALID_DAYS}",
            zh=f"有效天数应为1至{VALID_DAYS}天",
            field="valid_days",
        )


def _next_serial(held: PeerState | None) -> int:
    if held is None:
        return 1
    return max([c.serial for c in held.certs] + [r.serial for r in held.revocations], default=0) + 1


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")
