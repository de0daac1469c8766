"""Delegation grants and grant revocations as stored, and the readers over them.

Tables:

``grants`` / ``grant_revocations``
    every delegation grant held, and every grant revocation. A grant is refused at ingest
    (and wherever it arrives) when its grantee is not inside its issuer's area, when a root
    grant is not issued by the root, or when its parent grant is held and it does not
    narrow it (``E_GRANT_WIDENS`` …). A parent that is not held yet is checked again by
    :func:`core.grants.authorize` whenever the grant is used.

:class:`StoreGrants` is the :class:`core.grants.GrantSource` over these tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from core.admin import is_within
from core.errors import AuthorityError, ErrorCode
from core.grants import Grant, Revocation, check_narrowing
from sync.record import codec, kinds
from sync.record.envelope import Record
from sync.record.log import anchor_of

_GRANTS: dict[bytes, Grant] = {}
_GRANT_CACHE_SIZE = 4096


def load_grant(row: tuple[Any, ...]) -> Grant:
    """A :class:`Grant` from a ``grants`` row (id, issuer, ts, body).

    A grant's id is the hash of its signed record, so the same id is always the same
    grant: decoded grants are kept (a bounded number) instead of decoded on every intake.
    """
    gid, issuer, ts, body = row
    key = bytes(gid)
    grant = _GRANTS.get(key)
    if grant is None or grant.issuer != issuer or grant.ts != ts:
        grant = Grant.from_body(codec.decode(bytes(body)), id=key, issuer=issuer, ts=ts)
        if len(_GRANTS) >= _GRANT_CACHE_SIZE:
            _GRANTS.clear()
        _GRANTS[key] = grant
    return grant


class GrantProjector:
    """Grants and grant revocations."""

    kinds = frozenset({kinds.GRANT_ISSUE, kinds.GRANT_REVOKE})
    tables: tuple[str, ...] = ("grants", "grant_revocations")
    contained = kinds  # every refusal comes before the one INSERT

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        # Refusals (AuthorityError: widening, audience, chain; InputError: a malformed
        # grant) come before the one INSERT; ingest keeps the record with their code.
        if record.kind == kinds.GRANT_REVOKE:
            rev = Revocation.from_body(record.body, issuer=record.origin)
            db.conn.execute(
                "INSERT INTO grant_revocations (record_id, target, issuer, effective, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (record.id, rev.target, rev.issuer, rev.effective, rev.reason),
            )
            return
        grant = Grant.from_body(record.body, id=record.id, issuer=record.origin, ts=record.payload.ts)
        self._check(db, grant)
        db.conn.execute(
            "INSERT INTO grants (id, issuer, aud, mode, nbf, exp, depth, parent, cat, ts, items, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                grant.id,
                grant.issuer,
                grant.aud,
                grant.mode.value,
                grant.nbf,
                grant.exp,
                grant.depth,
                grant.parent,
                grant.cat,
                grant.ts,
                json.dumps(list(grant.items)),
                codec.encode(record.body),
            ),
        )

    @staticmethod
    def _check(db: Database, grant: Grant) -> None:
        anchor = anchor_of(db)
        if grant.aud == grant.issuer or not is_within(grant.aud, grant.issuer):
            raise AuthorityError(
                ErrorCode.GRANT_AUDIENCE, f"{grant.aud} is not inside the area of {grant.issuer}"
            )
        if grant.parent is None:
            if anchor is None or grant.issuer != anchor.origin:
                raise AuthorityError(ErrorCode.GRANT_CHAIN_BROKEN, f"a root grant issued by {grant.issuer}")
            return
        parent = StoreGrants(db).grant(grant.parent)
        if parent is not None:
            check_narrowing(grant, parent)


class StoreGrants:
    """Grants and grant revocations held in a store (a :class:`core.grants.GrantSource`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def grant(self, grant_id: bytes) -> Grant | None:
        row = self.db.conn.execute(
            "SELECT id, issuer, ts, body FROM grants WHERE id = ?", (grant_id,)
        ).fetchone()
        return load_grant(row) if row else None

    def revocations_of(self, grant_id: bytes) -> Iterable[Revocation]:
        rows = self.db.conn.execute(
            "SELECT target, effective, reason, issuer FROM grant_revocations WHERE target = ?", (grant_id,)
        ).fetchall()
        return [Revocation(target=bytes(t), effective=e, reason=r, issuer=i) for t, e, r, i in rows]

    def is_revoked(self, grant_id: bytes) -> bool:
        row = self.db.conn.execute(
            "SELECT 1 FROM grant_revocations WHERE target = ? LIMIT 1", (grant_id,)
        ).fetchone()
        return row is not None

    def held_by(self, node: str) -> list[Grant]:
        """Every grant whose grantee is ``node``, newest first."""
        rows = self.db.conn.execute(
            "SELECT id, issuer, ts, body FROM grants WHERE aud = ? ORDER BY ts DESC, id", (node,)
        ).fetchall()
        return [load_grant(r) for r in rows]

    def issued_by(self, node: str) -> list[tuple[Grant, bool]]:
        """Every grant ``node`` issued, newest first, with whether it has been revoked."""
        rows = self.db.conn.execute(
            "SELECT g.id, g.issuer, g.ts, g.body,"
            " EXISTS (SELECT 1 FROM grant_revocations r WHERE r.target = g.id) FROM grants g"
            " WHERE g.issuer = ? ORDER BY g.ts DESC, g.id",
            (node,),
        ).fetchall()
        return [(load_grant(r[:4]), bool(r[4])) for r in rows]

    def count(self, issuer: str | None = None) -> int:
        """Grants held (issued by ``issuer``, if given)."""
        if issuer is None:
            return int(self.db.conn.execute("SELECT count(*) FROM grants").fetchone()[0])
        row = self.db.conn.execute("SELECT count(*) FROM grants WHERE issuer = ?", (issuer,)).fetchone()
        return int(row[0])

    def revocation_count(self, issuer: str | None = None) -> int:
        """Grant revocations held (issued by ``issuer``, if given)."""
        if issuer is None:
            return int(self.db.conn.execute("SELECT count(*) FROM grant_revocations").fetchone()[0])
        row = self.db.conn.execute(
            "SELECT count(*) FROM grant_revocations WHERE issuer = ?", (issuer,)
        ).fetchone()
        return int(row[0])

    def earliest_effective_after(self, seen: int) -> int:
        """The earliest effective time among the revocations past the first ``seen`` held.

        Revocations are only ever added, so the rows past the first ``seen`` in insertion
        order are the new ones.
        """
        row = self.db.conn.execute(
            "SELECT min(effective) FROM"
            " (SELECT effective FROM grant_revocations ORDER BY rowid LIMIT -1 OFFSET ?)",
            (seen,),
        ).fetchone()
        return int(row[0]) if row[0] is not None else 0


GRANT_TABLES = (
    """
    CREATE TABLE grants (
        id BLOB PRIMARY KEY, issuer TEXT NOT NULL, aud TEXT NOT NULL, mode TEXT NOT NULL,
        nbf INTEGER NOT NULL, exp INTEGER NOT NULL, depth INTEGER NOT NULL, parent BLOB,
        cat INTEGER NOT NULL, ts INTEGER NOT NULL, items TEXT NOT NULL, body BLOB NOT NULL
    )
    """,
    "CREATE INDEX grants_aud ON grants (aud, exp)",
    """
    CREATE TABLE grant_revocations (
        record_id BLOB PRIMARY KEY, target BLOB NOT NULL, issuer TEXT NOT NULL,
        effective INTEGER NOT NULL, reason TEXT NOT NULL
    )
    """,
    "CREATE INDEX grant_revocations_target ON grant_revocations (target)",
)
"""Migration ``log/0004_grants_and_cases``, its first part (cases and clerks follow)."""
