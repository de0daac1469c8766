"""Clerk accounts and device tokens of one node: the node's layer over :mod:`web.accounts`.

Roles: ``clerk`` (全岗通 intake), ``approver`` (decides cases routed to this node),
``admin`` (manages accounts; at a town, sub-delegates items to its villages), ``auditor``
(read-only, may run the log verification). Accounts, logins, sessions and the login
backoff are the web kit's; the node signs its ``clerk.set`` records with its own key.

Device tokens (self-service kiosks and scripts on ``/api/v1``) are the node's own: only
their SHA-256 is stored, and a device may have the roles ``clerk`` and ``auditor``.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlite_utils import Database

from core.clock import Clock
from core.errors import AuthorityError, ErrorCode, InputError
from core.roles import ROLES
from node import store as node_store
from node.store import DeviceToken
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

DEVICE_ROLES = ("clerk", "auditor")


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
        if not roles or any(r not in DEVICE_ROLES for r in roles):
            raise InputError(ErrorCode.FIELD_INVALID, "a device may have the roles clerk and auditor")
        token = "tbd_" + secrets.token_urlsafe(32)
        if not node_store.add_device_token(self.db, name, digest(token), roles, self.clock.now()):
            raise InputError(ErrorCode.ACCOUNT_EXISTS, name)
        return token

    def disable_device(self, name: str) -> None:
        if not node_store.disable_device_token(self.db, name):
            raise InputError(ErrorCode.ACCOUNT_UNKNOWN, name)

    def devices(self) -> list[DeviceToken]:
        return node_store.device_tokens(self.db)

    def device(self, token: str) -> Principal:
        """The principal of a device token; ``E_TOKEN_INVALID`` when unknown or disabled."""
        found = node_store.device_of(self.db, digest(token))
        if found is None or not found.active:
            raise AuthorityError(ErrorCode.TOKEN_INVALID)
        return Principal(f"device:{found.name}", found.name, frozenset(found.roles))
