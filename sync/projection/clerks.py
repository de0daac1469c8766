"""Accounts of every node and of central, as ``clerk.set`` records make them.

Table ``clerks``: the clerk accounts of every node and central's operator accounts (names,
roles, active) — no password hashes: those stay in the store's own tables
(:mod:`web.account_store`). The roles are a node's or central's (:mod:`core.roles`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from core.errors import ErrorCode, RecordError
from core.roles import roles_for
from sync.record import kinds
from sync.record.envelope import Record


class ClerkProjector:
    """Accounts of every node and of central (names, roles, active); secrets never leave the store."""

    kinds = frozenset({kinds.CLERK_SET})
    tables: tuple[str, ...] = ("clerks",)
    contained = kinds  # the roles are checked before the one INSERT

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        roles = body["roles"]
        allowed = roles_for(record.origin)
        if not all(isinstance(r, str) and r in allowed for r in roles) or len(set(roles)) != len(roles):
            raise RecordError(ErrorCode.SCHEMA, f"clerk.set: roles must be among {', '.join(allowed)}")
        db.conn.execute(
            "INSERT INTO clerks (node, user, name, roles, active, record_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (node, user) DO UPDATE SET name = excluded.name, roles = excluded.roles,"
            " active = excluded.active, record_id = excluded.record_id, ts = excluded.ts",
            (
                record.origin,
                body["user"],
                body["name"],
                json.dumps(sorted(roles)),
                int(body["active"]),
                record.id,
                record.payload.ts,
            ),
        )


def account(db: Database, node: str, user: str) -> dict[str, Any] | None:
    """The account ``user`` of ``node``: user, name, roles, active."""
    row = db.conn.execute(
        "SELECT user, name, roles, active FROM clerks WHERE node = ? AND user = ?", (node, user)
    ).fetchone()
    if row is None:
        return None
    return {"user": row[0], "name": row[1], "roles": json.loads(row[2]), "active": bool(row[3])}


def accounts(db: Database, node: str) -> list[dict[str, Any]]:
    """Every account of ``node``, by user name."""
    rows = db.conn.execute(
        "SELECT user, name, roles, active FROM clerks WHERE node = ? ORDER BY user", (node,)
    ).fetchall()
    return [{"user": u, "name": n, "roles": json.loads(r), "active": bool(a)} for u, n, r, a in rows]


def names(db: Database, node: str) -> dict[str, str]:
    """User name → display name of ``node``'s accounts (to show names, not logins)."""
    rows = db.conn.execute("SELECT user, name FROM clerks WHERE node = ?", (node,))
    return {str(user): str(name) for user, name in rows}


CLERK_TABLES = (
    """
    CREATE TABLE clerks (
        node TEXT NOT NULL, user TEXT NOT NULL, name TEXT NOT NULL, roles TEXT NOT NULL,
        active INTEGER NOT NULL, record_id BLOB NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (node, user)
    )
    """,
)
"""Migration ``log/0004_grants_and_cases``, its last part."""
