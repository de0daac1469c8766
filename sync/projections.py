"""Projections every store keeps: who holds which key (trust) and the catalog releases.

A projection is a set of tables derived only from the log. Each projector says which
kinds it reads and which tables it owns; :func:`sync.log.RecordLog.rebuild` clears those
tables and replays the log, and ``tongban verify`` compares them with a fresh replay.

Tables:

``certs``
    one row per certificate (central's genesis counts as its own certificate):
    code, tier, parent, name, signing key and key id, CURVE key, validity.
``revocations``
    one row per revoked certificate, with the last sequence number still good.
``catalog_releases`` / ``catalog_items``
    every catalog release ever accepted (cases keep the version they relied on).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.catalog import CatalogRelease
from core.errors import ErrorCode, RecordError
from sync import codec, kinds
from sync.db import execute_all
from sync.envelope import Record, key_id

FOREVER = 2**63 - 1


class Projector(Protocol):
    """Keeps some tables in step with the log, inside the append's transaction.

    ``apply`` gets, as ``checked``, the object :func:`sync.kinds.check` built from the
    record's body when ingest has just built it (``None`` on a rebuild: build it again).

    A projector may also name, as ``contained``, kinds whose ``apply`` refuses (raises)
    only before its first write, or else undoes its own writes: ingest then needs no
    savepoint around such a record (:meth:`sync.ingest.Pass.writes_more_than_once`).
    """

    kinds: frozenset[str]
    tables: tuple[str, ...]

    def apply(self, db: Database, record: Record, checked: object = None) -> None: ...


def _exec(db: Database, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> None:
    db.conn.execute(sql, params)


class TrustProjector:
    """Certificates and revocations: the key directory that ingest verifies against."""

    kinds = frozenset({kinds.NET_GENESIS, kinds.NODE_CERT, kinds.CERT_REVOKE})
    tables: tuple[str, ...] = ("certs", "revocations")

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        if record.kind == kinds.NET_GENESIS:
            row = {
                "cert_id": record.id,
                "code": body["code"],
                "tier": "central",
                "parent": None,
                "name": body["name"],
                "sign_pk": body["sign_pk"],
                "kid": key_id(body["sign_pk"]),
                "curve_pk": body["curve_pk"],
                "nbf": 0,
                "exp": FOREVER,
                "issued_seq": record.seq,
                "issued_ts": record.payload.ts,
            }
        elif record.kind == kinds.NODE_CERT:
            row = {
                "cert_id": record.id,
                "code": body["node"],
                "tier": body["tier"],
                "parent": body["parent"],
                "name": body["name"],
                "sign_pk": body["sign_pk"],
                "kid": key_id(body["sign_pk"]),
                "curve_pk": body["curve_pk"],
                "nbf": body["nbf"],
                "exp": body["exp"],
                "issued_seq": record.seq,
                "issued_ts": record.payload.ts,
            }
        else:
            _exec(
                db,
                "INSERT INTO revocations (cert_id, node, last_good_seq, effective, reason, record_id)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (cert_id) DO UPDATE SET"
                " last_good_seq = min(last_good_seq, excluded.last_good_seq)",
                (
                    body["cert"],
                    body["node"],
                    body["last_good_seq"],
                    body["effective"],
                    body["reason"],
                    record.id,
                ),
            )
            return
        try:
            _exec(
                db,
                "INSERT INTO certs (cert_id, code, tier, parent, name, sign_pk, kid, curve_pk, nbf, exp,"
                " issued_seq, issued_ts) VALUES (:cert_id, :code, :tier, :parent, :name, :sign_pk, :kid,"
                " :curve_pk, :nbf, :exp, :issued_seq, :issued_ts)",
                row,
            )
        except Exception as exc:  # sqlite3.IntegrityError: the same key certified twice
            raise RecordError(ErrorCode.SCHEMA, f"a key of {row['code']} is already certified") from exc


class CatalogProjector:
    """Catalog releases, strictly version = previous + 1."""

    kinds = frozenset({kinds.CATALOG_RELEASE})
    tables: tuple[str, ...] = ("catalog_releases", "catalog_items")

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        release = checked if isinstance(checked, CatalogRelease) else CatalogRelease.from_body(record.body)
        current = db.conn.execute("SELECT max(version) FROM catalog_releases").fetchone()[0] or 0
        if release.version <= current:
            raise RecordError(
                ErrorCode.CATALOG_ROLLBACK, f"release {release.version} offered, {current} already held"
            )
        if release.version != current + 1:
            raise RecordError(ErrorCode.CATALOG_VERSION_GAP, f"release {release.version} after {current}")
        _exec(
            db,
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


def add_projection_migrations(migrations: Migrations) -> None:
    """Register the tables of the projections above on the ``log`` migration set."""

    @migrations(name="0002_trust_and_catalog")
    def _trust_and_catalog(db: Database) -> None:
        execute_all(
            db,
            [
                """
                CREATE TABLE certs (
                    cert_id BLOB PRIMARY KEY,
                    code TEXT NOT NULL,
                    tier TEXT NOT NULL,
                    parent TEXT,
                    name TEXT NOT NULL,
                    sign_pk BLOB NOT NULL,
                    kid BLOB NOT NULL,
                    curve_pk BLOB NOT NULL,
                    nbf INTEGER NOT NULL,
                    exp INTEGER NOT NULL,
                    issued_seq INTEGER NOT NULL,
                    issued_ts INTEGER NOT NULL,
                    UNIQUE (code, kid)
                )
                """,
                """
                CREATE UNIQUE INDEX certs_curve ON certs (curve_pk)
                """,
                """
                CREATE TABLE revocations (
                    cert_id BLOB PRIMARY KEY,
                    node TEXT NOT NULL,
                    last_good_seq INTEGER NOT NULL,
                    effective INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    record_id BLOB NOT NULL
                )
                """,
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
            ],
        )
