"""What central's operator reads: nodes and certificates, root grants and their state,
catalog releases with their authors, and rejected records.

Read-only views over central's projections; every write goes through
:mod:`central.authority`. A grant's *state* is what an operator acts on: ``valid``,
``expiring`` (ends within :data:`EXPIRING_DAYS`), ``expired``, ``revoked``, or ``pending``
(not valid yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from core.grants import Grant
from sync.projection.grants import StoreGrants

DAY = 86_400
EXPIRING_DAYS = 14


@dataclass(frozen=True)
class NodeRow:
    code: str
    name: str
    tier: str
    parent: str | None
    exp: int
    revoked: bool
    reason: str

    def state(self, now: int) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if self.exp <= now else "valid"


def nodes(db: Database) -> list[NodeRow]:
    """Every node certificate central issued, newest per code first; revoked ones included.

    Central's own entry in ``certs`` (its genesis key, which never expires) is not a node.
    """
    rows = db.conn.execute(
        "SELECT c.code, c.name, c.tier, c.parent, c.exp, r.cert_id IS NOT NULL, coalesce(r.reason, '')"
        " FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id WHERE c.tier != 'central'"
        " ORDER BY c.code, c.issued_seq DESC"
    ).fetchall()
    return [NodeRow(c, n, t, p, e, bool(rv), reason) for c, n, t, p, e, rv, reason in rows]


def grantees(db: Database, now: int) -> list[NodeRow]:
    """Nodes that may hold a root grant now: the city hall and towns with a live certificate."""
    return [n for n in nodes(db) if n.tier in ("city", "town") and n.state(now) == "valid"]


@dataclass(frozen=True)
class GrantRow:
    grant: Grant
    revoked: bool

    def state(self, now: int) -> str:
        if self.revoked:
            return "revoked"
        if now < self.grant.nbf:
            return "pending"
        if now >= self.grant.exp:
            return "expired"
        return "expiring" if self.grant.exp - now <= EXPIRING_DAYS * DAY else "valid"


def root_grants(db: Database, root: str) -> list[GrantRow]:
    """The grants central issued, newest first."""
    return [GrantRow(g, revoked) for g, revoked in StoreGrants(db).issued_by(root)]


@dataclass(frozen=True)
class ReleaseRow:
    version: int
    issued_at: int
    expires_at: int
    items: int
    actor: str


def releases(db: Database) -> list[ReleaseRow]:
    """Every catalog release held, newest first, with the operator who published it."""
    rows = db.conn.execute(
        "SELECT c.version, c.issued_at, c.expires_at, c.item_count, coalesce(r.actor, '')"
        " FROM catalog_releases c JOIN records r ON r.id = c.record_id ORDER BY c.version DESC"
    ).fetchall()
    return [ReleaseRow(*row) for row in rows]


def rejected(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """The newest rejected records, with their codes and reasons."""
    rows = db.conn.execute(
        "SELECT code, reason, source, origin, seq, kind, times, last_at FROM rejected"
        " ORDER BY last_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    keys = ("code", "reason", "source", "origin", "seq", "kind", "times", "last_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]
