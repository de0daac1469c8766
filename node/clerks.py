"""Clerk accounts and device tokens of one node: the node's layer over :mod:`web.accounts`.

Roles: ``clerk`` (全岗通 intake), ``approver`` (decides cases routed to this node),
``admin`` (manages accounts; at a town, sub-delegates items to its villages), ``auditor``
(read-only, may run the log verification). Accounts, logins, sessions and the login
backoff are the web kit's; the node signs its ``clerk.set`` records with its own key.

Device tokens (self-service kiosks and scripts on ``/api/v1``) are the node's own: only
their SHA-256 is stored, and a device may have the roles ``clerk`` and ``auditor``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlite_utils import Database

from core.clock import Clock
from core.errors import AuthorityError, ErrorCode, InputError
from core.roles import ROLES
from sync.record.db import transaction
from sync.record.envelope import Signer
from sync.record.log import RecordLog
from web.accounts import (
    USER_NAME,
    Accounts,
    Principal,
    csrf_ok,
    digest,
    hash_password,
    verify_password,
)

__all__ = ["Clerks", "Principal", "csrf_ok", "hash_password", "verify_password"]


class Clerks(Accounts[Signer]):
    """The accounts of the node ``code`` in the store ``db``; records signed by ``signer``."""

    def __init__(self, db: Database, log: RecordLog, code: str, clock: Clock) -> None:
        def write(signer: Signer, kind: str, body: dict[str, Any], actor: str) -> None:
            log.append_local(signer, code, kind, body, actor=actor)

        super().__init__(db, clock, owner=code, roles=ROLES, write=write)
        self.log = log
        self.code = code

    # -- device tokens --------------------------------------------------------------------

    def add_device(self, name: str, roles: list[str]) -> str:
        """A new device token (shown once); the store keeps only its SHA-256."""
        if not USER_NAME.fullmatch(name or ""):
            raise InputError(
                ErrorCode.FIELD_INVALID, "device name: 2–32 of a-z 0-9 _ . - starting with a letter"
            )
        if not roles or any(r not in ("clerk", "auditor") for r in roles):
            raise InputError(ErrorCode.FIELD_INVALID, "a device may have the roles clerk and auditor")
        token = "tbd_" + secrets.token_urlsafe(32)
        with transaction(self.db):
            if self.db.conn.execute("SELECT 1 FROM device_tokens WHERE name = ?", (name,)).fetchone():
                raise InputError(ErrorCode.ACCOUNT_EXISTS, name)
            self.db.conn.execute(
                "INSERT INTO device_tokens (digest, name, roles, created, active) VALUES (?, ?, ?, ?, 1)",
                (digest(token), name, json.dumps(sorted(set(roles))), self.clock.now()),
            )
        return token

    def disable_device(self, name: str) -> None:
        with transaction(self.db):
            cur = self.db.conn.execute("UPDATE device_tokens SET active = 0 WHERE name = ?", (name,))
            if cur.rowcount == 0:
                raise InputError(ErrorCode.ACCOUNT_UNKNOWN, name)

    def devices(self) -> list[dict[str, object]]:
        rows = self.db.conn.execute(
            "SELECT name, roles, created, active, last_used FROM device_tokens ORDER BY name"
        ).fetchall()
        return [
            {"name": n, "roles": json.loads(r), "created": c, "active": bool(a), "last_used": lu}
            for n, r, c, a, lu in rows
        ]

    def device(self, token: str) -> Principal:
        """The principal of a device token; ``E_TOKEN_INVALID`` when unknown or disabled."""
        row = self.db.conn.execute(
            "SELECT name, roles, active FROM device_tokens WHERE digest = ?", (digest(token),)
        ).fetchone()
        if row is None or not row[2]:
            raise AuthorityError(ErrorCode.TOKEN_INVALID)
        return Principal(f"device:{row[0]}", str(row[0]), frozenset(json.loads(row[1])))
