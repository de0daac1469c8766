"""The cross-certifications a store holds: our city's ``peer.cert`` and ``peer.revoke`` records.

Tables:

``peer_certs``
    one row per cross-certification: the peer city's net, its name and root key, the
    agreement it belongs to, its serial, validity and scope (the body's scope as canonical
    JSON), and its seq in central's chain.
``peer_revocations``
    one row per ``peer.revoke``: the peer, the serial up to which it ends the peer's
    cross-certifications, when, and why.

Both records are central's, so they reach every node of the city with central's chain; a
village holds them and decides a foreign city's act offline (:func:`core.federation.admit`
over :func:`federation_state`). The projector refuses a cross-certification that may not
follow what is held (``E_PEER_ROLLBACK``, ``E_PEER_ROOT_CHANGED``,
:func:`core.federation.check_succession`) and a revocation of a peer never certified
(``E_PEER_UNKNOWN``): nothing is written then, and the record is kept among the rejected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache

from sqlite_utils import Database

from core.errors import ErrorCode, RecordError, TongbanError
from core.federation import (
    CrossCert,
    FederationState,
    PeerRevocation,
    PeerState,
    Scope,
    check_revocation,
    check_succession,
)
from sync.record import kinds
from sync.record.envelope import Record


class PeerProjector:
    """``peer_certs`` and ``peer_revocations`` (see the module docstring)."""

    kinds = frozenset({kinds.PEER_CERT, kinds.PEER_REVOKE})
    tables: tuple[str, ...] = ("peer_certs", "peer_revocations")

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        try:
            if record.kind == kinds.PEER_CERT:
                cert = checked if isinstance(checked, CrossCert) else CrossCert.from_body(record.body)
                check_succession(record.payload.net, peer_state(db, cert.peer), cert)
                _insert_cert(db, record, cert)
            else:
                revocation = (
                    checked if isinstance(checked, PeerRevocation) else PeerRevocation.from_body(record.body)
                )
                check_revocation(peer_state(db, revocation.peer), revocation)
                db.conn.execute(
                    "INSERT INTO peer_revocations (record_id, peer, serial, effective, reason, seq)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (record.id, revocation.peer, revocation.serial, revocation.effective, revocation.reason,
                     record.seq),
                )  # fmt: skip
        except RecordError:
            raise
        except TongbanError as exc:
            if exc.code.value.startswith("E_PEER_"):
                raise
            raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc


def _insert_cert(db: Database, record: Record, cert: CrossCert) -> None:
    db.conn.execute(
        "INSERT INTO peer_certs (record_id, peer, name, root_pk, agreement, serial, nbf, exp, scope, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            cert.peer,
            cert.name,
            cert.root_pk,
            cert.agreement,
            cert.serial,
            cert.nbf,
            cert.exp,
            json.dumps(cert.scope.to_body(), sort_keys=True, ensure_ascii=False),
            record.seq,
        ),
    )


def peer_state(db: Database, net: str) -> PeerState | None:
    """What the store holds of the peer ``net`` (None: never certified); reads that peer's
    rows alone, so a check of one peer costs the same among 3 peers or 300."""
    return _states(db, net).get(net)


def peer_states(db: Database) -> dict[str, PeerState]:
    """Every peer city the store holds a cross-certification of, by net."""
    return _states(db, None)


@lru_cache(maxsize=1024)
def _scope(stored: str) -> Scope:
    """A scope as ``peer_certs`` stores it, read once per process: every peer's is read at
    each check of all peers (central's renewal timer, the operators' page), and a scope of
    119 items costs a millisecond and more to parse. It was checked when its record was
    projected; :class:`Scope` is immutable, so one copy serves every reader."""
    return Scope.from_body(json.loads(stored))


def _states(db: Database, only: str | None) -> dict[str, PeerState]:
    where, params = (" WHERE peer = ?", (only,)) if only is not None else ("", ())
    certs: dict[str, list[CrossCert]] = {}
    for peer, name, root_pk, agreement, serial, nbf, exp, scope, seq in db.conn.execute(
        "SELECT peer, name, root_pk, agreement, serial, nbf, exp, scope, seq FROM peer_certs"
        f"{where} ORDER BY peer, serial",
        params,
    ):
        certs.setdefault(str(peer), []).append(
            CrossCert(
                str(peer), str(name), bytes(root_pk), bytes(agreement), int(serial), int(nbf), int(exp),
                _scope(str(scope)), int(seq),
            )
        )  # fmt: skip
    revocations: dict[str, list[PeerRevocation]] = {}
    for peer, serial, effective, reason in db.conn.execute(
        f"SELECT peer, serial, effective, reason FROM peer_revocations{where} ORDER BY peer, seq", params
    ):
        revocations.setdefault(str(peer), []).append(
            PeerRevocation(str(peer), int(serial), int(effective), reason)
        )
    return {
        net: PeerState(net, tuple(held), tuple(revocations.get(net, ())))
        for net, held in sorted(certs.items())
    }


def federation_state(
    db: Database,
    home: str,
    *,
    own_items: frozenset[str] = frozenset(),
    seen: frozenset[bytes] = frozenset(),
    revoked_nodes: Mapping[str, Mapping[str, int]] | None = None,
) -> FederationState:
    """The state :func:`core.federation.admit` reads, from this store's records.

    ``revoked_nodes`` (peer net → node → last good seq) is what the store knows of the
    peers' own revocations; their records reach a store only with the link between
    centrals (docs/federation.md), so until then the caller names them.
    """
    peers = peer_states(db)
    for net, nodes in (revoked_nodes or {}).items():
        if net in peers:
            held = peers[net]
            peers[net] = PeerState(net, held.certs, held.revocations, dict(nodes))
    return FederationState(home, peers, own_items, seen)


PEER_TABLES = (
    """
    CREATE TABLE peer_certs (
        record_id BLOB PRIMARY KEY,
        peer TEXT NOT NULL,
        name TEXT NOT NULL,
        root_pk BLOB NOT NULL,
        agreement BLOB NOT NULL,
        serial INTEGER NOT NULL,
        nbf INTEGER NOT NULL,
        exp INTEGER NOT NULL,
        scope TEXT NOT NULL,
        seq INTEGER NOT NULL,
        UNIQUE (peer, serial)
    )
    """,
    """
    CREATE TABLE peer_revocations (
        record_id BLOB PRIMARY KEY,
        peer TEXT NOT NULL,
        serial INTEGER NOT NULL,
        effective INTEGER NOT NULL,
        reason TEXT NOT NULL,
        seq INTEGER NOT NULL
    )
    """,
)
"""Migration ``log/0013_peers``."""
