"""Tables derived from the log: each projection owns its tables and the queries on them.

Every store (a node's and central's alike) keeps the projections :func:`standard` makes;
a store hands them to its log (:class:`sync.record.log.RecordLog`), which runs them inside
the transaction that appends each record. Other modules read a projection's tables through
its readers, never by SQL of their own.

===========  =====================================================  ==========================
module       tables                                                 kinds
===========  =====================================================  ==========================
catalog      catalog_releases, catalog_items                        catalog.release
grants       grants, grant_revocations                              grant.issue, grant.revoke
cases        cases, case_events                                     case.intake, case.event
clerks       clerks                                                 clerk.set
calendars    calendar_releases                                      calendar.release
status       node_status, link_receipts                             node.status, link.receipt
heartbeat    heartbeat                                              central.heartbeat
departments  department_items                                       department.cert
files        file_refs; files_held (the file store's bookkeeping)   case.intake, case.event
peers        peer_certs, peer_revocations                           peer.cert, peer.revoke
peer_items   peer_mirrors, peer_items, peer_item_versions           peer.items
===========  =====================================================  ==========================

``delegation`` issues, revokes and renews grants and answers what a node may do with an
item; it owns no table.
"""

from __future__ import annotations

from sync.projection.calendars import CalendarProjector
from sync.projection.cases import CaseProjector
from sync.projection.catalog import CatalogProjector
from sync.projection.clerks import ClerkProjector
from sync.projection.departments import DepartmentProjector
from sync.projection.files import FileRefProjector
from sync.projection.grants import GrantProjector
from sync.projection.heartbeat import HeartbeatProjector
from sync.projection.peer_items import PeerItemsProjector
from sync.projection.peers import PeerProjector
from sync.projection.status import StatusProjector
from sync.record.projector import Projector


def standard() -> tuple[Projector, ...]:
    """Fresh projectors of every table a store keeps, in the order they run."""
    return (
        CatalogProjector(),
        GrantProjector(),
        CaseProjector(),
        ClerkProjector(),
        HeartbeatProjector(),
        CalendarProjector(),
        StatusProjector(),
        DepartmentProjector(),
        FileRefProjector(),
        PeerProjector(),
        PeerItemsProjector(),
    )
