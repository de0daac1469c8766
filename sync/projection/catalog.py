"""Catalog releases as stored: every release ever accepted, strictly version = previous + 1.

Tables:

``catalog_releases`` / ``catalog_items``
    every catalog release ever accepted (cases keep the version they relied on).
"""

from __future__ import annotations

import threading

from sqlite_utils import Database

from core.catalog import CatalogRelease
from core.errors import ErrorCode, RecordError
from sync.record import codec, kinds
from sync.record.envelope import Record
from sync.record.log import stored_record


class CatalogProjector:
    """Catalog releases, strictly version = previous + 1."""

    kinds = frozenset({kinds.CATALOG_RELEASE})
    tables: tuple[str, ...] = ("catalog_releases", "catalog_items")

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        release = checked if isinstance(checked, CatalogRelease) else CatalogRelease.from_body(record.body)
        current = newest_version(db)
        if release.version <= current:
            raise RecordError(
                ErrorCode.CATALOG_ROLLBACK, f"release {release.version} offered, {current} already held"
            )
        if release.version != current + 1:
            raise RecordError(ErrorCode.CATALOG_VERSION_GAP, f"release {release.version} after {current}")
        db.conn.execute(
            "INSERT INTO catalog_releases (version, record_id, issued_at, expires_at, item_count)"
            " VALUES (?, ?, ?, ?, ?)",
            (release.version, record.id, release.issued_at, release.expires_at, len(release.items)),
        )
        db.conn.executemany(
            "INSERT INTO catalog_items (version, code, name, department, item) VALUES (?, ?, ?, ?, ?)",
            [
                (release.version, item.code, item.name, item.department, codec.encode(item.to_body()))
                for item in release.items
            ],
        )


def newest_version(db: Database) -> int:
    """The highest catalog release version held; 0 when none is."""
    return int(db.conn.execute("SELECT max(version) FROM catalog_releases").fetchone()[0] or 0)


def newest_expiry(db: Database) -> int | None:
    """When the newest release held expires (None: no release is held)."""
    row = db.conn.execute("SELECT expires_at FROM catalog_releases ORDER BY version DESC LIMIT 1").fetchone()
    return int(row[0]) if row else None


def current_catalog(db: Database) -> CatalogRelease | None:
    """The newest catalog release held, or None."""
    version = newest_version(db)
    return catalog_release(db, version) if version else None


def catalog_release(db: Database, version: int) -> CatalogRelease | None:
    row = db.conn.execute("SELECT record_id FROM catalog_releases WHERE version = ?", (version,)).fetchone()
    if row is None:
        return None
    rid = bytes(row[0])
    if rid in _RELEASES:
        return _RELEASES[rid]
    record = stored_record(db, rid)
    release = CatalogRelease.from_body(record.body) if record else None
    if release is not None:
        with _RELEASES_LOCK:  # the stores of a process are used on several threads
            _RELEASES[rid] = release
            while len(_RELEASES) > RELEASES_KEPT:
                del _RELEASES[next(iter(_RELEASES))]
    return release


RELEASES_KEPT = 8
_RELEASES: dict[bytes, CatalogRelease] = {}
_RELEASES_LOCK = threading.Lock()
"""Releases read, by record id, the oldest first: a record's id is the hash of its bytes and
:class:`CatalogRelease` is immutable, so one copy serves every store of the process that
holds the record (the newest release is read for every intake a central checks, and a
release of 119 items costs milliseconds to parse)."""


def item_names(db: Database, version: int | None = None) -> dict[str, str]:
    """Item code → name in release ``version`` (default: the newest held)."""
    version = newest_version(db) if version is None else version
    rows = db.conn.execute("SELECT code, name FROM catalog_items WHERE version = ?", (version,))
    return {str(code): str(name) for code, name in rows}


CATALOG_TABLES = (
    """
    CREATE TABLE catalog_releases (
        version INTEGER PRIMARY KEY,
        record_id BLOB NOT NULL UNIQUE,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        item_count INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE catalog_items (
        version INTEGER NOT NULL,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        department TEXT NOT NULL,
        item BLOB NOT NULL,
        PRIMARY KEY (version, code)
    )
    """,
)
"""Migration ``log/0002_trust_and_catalog``, its second part."""
