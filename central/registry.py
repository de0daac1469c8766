"""What central's operator reads: nodes and certificates, root grants and their state,
catalog releases with their authors, and rejected records.

Read-only views over central's projections (the certificates of :mod:`sync.record.trust`,
the grants of :mod:`sync.projection.grants`, the refused records of :mod:`sync.record.log`,
the releases of :mod:`central.report_store`); every write goes through
:mod:`central.authority`. A grant's *state* is what an operator acts on: ``valid``,
``expiring`` (ends within :data:`EXPIRING_DAYS`), ``expired``, ``revoked``, or ``pending``
(not valid yet).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from central import report_store
from central.report_store import ReleaseRow
from core.grants import Grant
from sync.projection.grants import StoreGrants
from sync.record.refused import Rejection, rejections
from sync.record.trust import certificates

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
    return [
        NodeRow(c.code, c.name, c.tier, c.parent, c.exp, c.revoked, c.reason)
        for c in certificates(db)
        if c.tier != "central"
    ]


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


def releases(db: Database) -> list[ReleaseRow]:
    """Every catalog release held, newest first, with the operator who published it."""
    return report_store.releases(db)


def rejected(db: Database, limit: int = 100) -> list[Rejection]:
    """The newest rejected records, with their codes and reasons."""
    return rejections(db, newest=limit)
