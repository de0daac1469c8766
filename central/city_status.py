"""Every node of the city in one table, as ``tongban city status`` prints it at central.

One :class:`NodeStatus` per node central certified, in org-tree order, from what the
dashboard reads (:func:`central.dashboard.snapshot`: last contact, backlog, rejected and
catalog version at its last status report, revocation), the open forks of its chain
(:func:`central.registry.forks`), its live certificate's expiry, and the software and
protocol its newest report names (a node of older software: the software it enrolled with,
from its ``node.enrolled`` record, and no protocol). Each row's :attr:`NodeStatus.attention`
lists what an operator must look at; the command exits non-zero when any row has one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlite_utils import Database

from central import dashboard, registry
from sync.record import kinds
from sync.record.log import decode_stored, envelopes_of_kind
from web.health import CERT_WARN_DAYS

DAY = 86_400
STALE_SECONDS = 3600
"""A node central has not heard of for this long is stale (it syncs every minute)."""
EXPIRING_DAYS = CERT_WARN_DAYS
"""A certificate closer than this to its expiry needs renewing (docs/operations.md), as
on the dashboard and at the node's /healthz."""
BACKLOG_ALARM = 1000
"""Records waiting to go up at a node's last report that need a look."""


@dataclass(frozen=True)
class NodeStatus:
    code: str
    name: str
    tier: str
    parent: str | None
    version: str | None  # the software it runs (its newest report), else the one it enrolled with
    protocol: int | None  # the newest sync protocol it speaks (its newest report); None: not said
    last_contact: int | None
    backlog: int | None
    rejected: int | None
    forks: int  # open forks of its own chain
    cert_expires: int | None  # its live certificate's; None: revoked
    catalog: int | None
    revoked: bool
    attention: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def city_status(db: Database, now: int, *, stale_after: int = STALE_SECONDS) -> list[NodeStatus]:
    """Every node central certified, with what needs attention, in org-tree order."""
    snapshot = dashboard.snapshot(db, now=now)
    forks: dict[str, int] = {}
    for fork in registry.forks(db):
        if fork.open:
            forks[fork.origin] = forks.get(fork.origin, 0) + 1
    expiry: dict[str, int] = {}
    for cert in registry.nodes(db):  # newest per code first
        if not cert.revoked:
            expiry.setdefault(cert.code, cert.exp)
    software = enrolled_software(db)
    newest_catalog = max((row.catalog_version or 0 for row in snapshot.nodes), default=0)
    out = []
    for row in snapshot.nodes:
        status = NodeStatus(
            code=row.code,
            name=row.name,
            tier=row.tier,
            parent=row.parent,
            version=row.software or software.get(row.code),
            protocol=row.protocol,
            last_contact=row.last_contact,
            backlog=row.backlog,
            rejected=row.rejected,
            forks=forks.get(row.code, 0),
            cert_expires=expiry.get(row.code),
            catalog=row.catalog_version,
            revoked=row.revoked,
        )
        status.attention.extend(_attention(status, now, stale_after, newest_catalog, row.alarm))
        out.append(status)
    return out


def _attention(status: NodeStatus, now: int, stale_after: int, newest_catalog: int, alarm: bool) -> list[str]:
    """What needs a look at one node; a revoked node (decommissioned, or awaiting its
    replacement) needs none beyond its forks."""
    found = [f"{status.forks} fork(s)"] if status.forks else []
    if status.revoked:
        return found
    if status.last_contact is None:
        found.append("never heard of")
    elif now - status.last_contact > stale_after:
        found.append(f"stale: last contact {(now - status.last_contact) // 60} min ago")
    if status.cert_expires is not None:
        left = status.cert_expires - now
        if left <= 0:
            found.append("certificate expired")
        elif left < EXPIRING_DAYS * DAY:
            found.append(f"certificate expires in {left // DAY} days")
    if (status.backlog or 0) >= BACKLOG_ALARM:
        found.append(f"backlog {status.backlog}")
    if alarm:
        found.append("refused records at central")
    if status.catalog is not None and status.catalog < newest_catalog:
        found.append(f"catalog {status.catalog} behind {newest_catalog}")
    return found


def enrolled_software(db: Database) -> dict[str, str]:
    """The software each node named in its newest ``node.enrolled`` record, by code."""
    found: dict[str, str] = {}
    for envelope in envelopes_of_kind(db, kinds.NODE_ENROLLED):  # arrival order: newest last
        record = decode_stored(envelope)
        software = record.body.get("software")
        if isinstance(software, str):
            found[record.origin] = software
    return found
