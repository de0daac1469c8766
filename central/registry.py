"""What central's operator reads: nodes and certificates, root grants and their state,
catalog releases with their authors, rejected records, and the forks of the city.

Read-only views over central's projections (the certificates of :mod:`sync.record.trust`,
the grants of :mod:`sync.projection.grants`, the refused records and the fork evidence of
:mod:`sync.record.log`,
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
from sync.record.forks import forks as all_forks
from sync.record.forks import open_forks
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


@dataclass(frozen=True)
class ForkRow:
    """A fork central holds evidence of: an origin signed two records with one seq."""

    origin: str
    name: str  # the node's name (central's, for the root)
    seq: int
    held_id: bytes  # the record central holds at that seq
    other_id: bytes  # the other, kept as evidence
    source: str  # who brought the other: the node that reported it
    detected_at: int
    open: bool  # no revocation settles it yet: the origin is frozen from ``seq`` on

    @property
    def last_good_seq(self) -> int:
        """The cut-off of the revocation that settles it."""
        return self.seq - 1


def forks(db: Database) -> list[ForkRow]:
    """Every fork of the city central knows of, open ones first, then by origin and seq."""
    names = {cert.code: cert.name for cert in certificates(db)}
    unsettled = {(f.origin, f.seq, f.other_id) for f in open_forks(db)}
    rows = [
        ForkRow(
            f.origin,
            names.get(f.origin, ""),
            f.seq,
            f.held_id,
            f.other_id,
            f.source,
            f.detected_at,
            (f.origin, f.seq, f.other_id) in unsettled,
        )
        for f in all_forks(db)
    ]
    return sorted(rows, key=lambda r: (not r.open, r.origin, r.seq))
