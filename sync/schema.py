"""The migration sets of every Tongban store, in one place and in the order they run.

A store's database is the ``log`` set (the record layer and the projections every store
keeps), then its component's own set (``node`` or ``central``, in :mod:`node.store` and
:mod:`central.store`), then ``sync`` (the link's tables). Each table's DDL lives beside
the code that owns the table — the statements here only put them in order.

Shipped names are kept, and so is their order (two migrations are named ``0007_…``: the
names are what a store records, the order is what a new store runs). Never edit a
migration that shipped: add a new one at the end of its set. A database that records a
migration this code does not know is refused (``E_STORE_TOO_NEW``, :mod:`sync.record.db`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from sync.link.store import EVIDENCE_TABLES, LINK_TABLES
from sync.projection.calendars import CALENDAR_TABLES
from sync.projection.cases import CASE_QUARANTINE, CASE_TABLES, CaseProjector
from sync.projection.catalog import CATALOG_TABLES
from sync.projection.clerks import CLERK_TABLES
from sync.projection.departments import DEPARTMENT_TABLES
from sync.projection.files import FILE_TABLES
from sync.projection.grants import GRANT_TABLES
from sync.projection.heartbeat import HEARTBEAT_TABLE, HeartbeatProjector
from sync.projection.peer_items import PEER_ITEM_TABLES
from sync.projection.peers import PEER_TABLES
from sync.projection.status import RECEIPT_HISTORY, STATUS_FILES, STATUS_TABLES, note_receipt
from sync.record import kinds, trust
from sync.record.db import execute_all
from sync.record.log import LOG_TABLES, anchor_of, decode_stored, envelopes_of, envelopes_of_kind
from sync.record.refused import REJECTED_BY_SOURCE

log_migrations = Migrations("log")
sync_migrations = Migrations("sync")


def _ddl(migrations: Migrations, name: str, *parts: Sequence[str]) -> None:
    """Register migration ``name`` on ``migrations``: the statements of ``parts``, in order."""
    statements = [statement for part in parts for statement in part]

    def run(db: Database) -> None:
        execute_all(db, statements)

    run.__name__ = f"_{name}"
    migrations(name=name)(run)


_ddl(log_migrations, "0001_records", LOG_TABLES)
_ddl(log_migrations, "0002_trust_and_catalog", trust.TRUST_TABLES, CATALOG_TABLES)
_ddl(log_migrations, "0003_quarantine", trust.QUARANTINE_VIEW)
_ddl(log_migrations, "0004_grants_and_cases", GRANT_TABLES, CASE_TABLES, CLERK_TABLES)


@log_migrations(name="0007_central_keys")
def _central_keys(db: Database) -> None:
    execute_all(db, [*trust.CENTRAL_KEYS_TABLE, *HEARTBEAT_TABLE])
    # A store that held central's records before these tables existed: project them now.
    keys, heartbeat = trust.CentralKeysProjector(), HeartbeatProjector()
    anchor = anchor_of(db)
    for record in (decode_stored(e) for e in envelopes_of(db, anchor.origin if anchor else None)):
        if record.kind in keys.kinds:
            keys.apply(db, record)
        elif record.kind in heartbeat.kinds:
            heartbeat.apply(db, record)


_ddl(log_migrations, "0005_calendar_releases", CALENDAR_TABLES)
_ddl(log_migrations, "0006_node_status", STATUS_TABLES)
_ddl(log_migrations, "0007_quarantine_from_revocations", trust.QUARANTINE_FROM_REVOCATIONS)
_ddl(log_migrations, "0008_rejected_by_source", REJECTED_BY_SOURCE)


@log_migrations(name="0009_receipt_history")
def _receipt_history(db: Database) -> None:
    execute_all(db, RECEIPT_HISTORY)
    # The receipts a store held before the table existed.
    for envelope in envelopes_of_kind(db, kinds.LINK_RECEIPT):
        note_receipt(db, decode_stored(envelope))


@log_migrations(name="0010_quarantined_cases")
def _quarantined_cases(db: Database) -> None:
    execute_all(db, CASE_QUARANTINE)
    # Revocations a store took in before the cases projection left their records out.
    CaseProjector().quarantine(db)


# No store written before it holds a department.cert (the kind came with it): nothing to project.
_ddl(log_migrations, "0011_departments", DEPARTMENT_TABLES)
# No store written before it holds a record with files (the field came with it): nothing to project.
_ddl(log_migrations, "0012_files", FILE_TABLES)
# Likewise no store written before it holds a peer.cert or a peer.revoke.
_ddl(log_migrations, "0013_peers", PEER_TABLES)
# No report written before it names files (the field came with protocol 4): nothing to project.
_ddl(log_migrations, "0014_node_status_files", STATUS_FILES)
# No store written before it holds a peer.items (the kind came with it): nothing to project.
_ddl(log_migrations, "0015_peer_items", PEER_ITEM_TABLES)


_ddl(sync_migrations, "0001_links", LINK_TABLES)
_ddl(sync_migrations, "0002_link_evidence", EVIDENCE_TABLES)
