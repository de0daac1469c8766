"""Central's operator accounts: the web kit's accounts with central's roles.

Roles (:data:`core.roles.CENTRAL_ROLES`): ``catalog_admin`` (事项管理员: imports,
edits and publishes the catalog), ``delegation_admin`` (授权管理员: grants items to towns
and the city hall, revokes grants and node certificates), ``auditor`` (审计员: reads
rejected records, verifies the log, sees the grants) and ``viewer`` (查看者: the
dashboard and the catalog). Every account change is a ``clerk.set`` record of central,
written with :meth:`central.authority.Central.append`; password hashes, sessions and the
login backoff stay in central's own tables.
"""

from __future__ import annotations

from typing import Any

from central.authority import Central
from core.roles import CENTRAL_ROLES
from web.accounts import Accounts

CATALOG_ADMIN, DELEGATION_ADMIN, AUDITOR, VIEWER = CENTRAL_ROLES


def _write(central: Central, kind: str, body: dict[str, Any], actor: str) -> None:
    central.append(kind, body, actor)


def admins(central: Central) -> Accounts[Central]:
    """The operator accounts of ``central``; pass ``central`` as the signer of changes."""
    return Accounts(
        central.store.db, central.store.log.clock, owner=central.code, roles=CENTRAL_ROLES, write=_write
    )
