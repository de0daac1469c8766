"""Who may do what: the roles of a node's accounts, of central's operators, of devices.

A node's accounts (its clerks) have the roles :data:`NODE_ROLES`: ``clerk`` (全岗通
intake), ``approver`` (decides cases routed to the node), ``admin`` (accounts; at a town,
sub-delegation to its villages) and ``auditor`` (read-only, runs the log check). Central's
operators have :data:`CENTRAL_ROLES`, a department's desk accounts
:data:`DEPARTMENT_ROLES` (``approver`` decides the department's cases, ``admin`` keeps its
accounts, ``auditor`` reads). A device token (a kiosk, a script on the API) may
hold :data:`DEVICE_ROLES` only. Which set an account's ``clerk.set`` record may name is
decided by the tier of its origin (:func:`roles_for`).
"""

from __future__ import annotations

from core.admin import Tier, tier_for_code
from core.errors import TongbanError

ROLES = ("clerk", "approver", "admin", "auditor")
"""A node's roles."""
NODE_ROLES = ROLES
CENTRAL_ROLES = ("catalog_admin", "delegation_admin", "auditor", "viewer")
"""Central's operator roles."""
DEPARTMENT_ROLES = ("approver", "admin", "auditor")
"""A department desk's roles."""
DEVICE_ROLES = ("clerk", "auditor")
"""What a device token may be given."""


def roles_for(origin: str) -> tuple[str, ...]:
    """The roles an account of ``origin`` may hold: central's for central, a department's for
    a department, a node's for a node.

    A code that is not a division code names no one: no role fits it.
    """
    try:
        tier = tier_for_code(origin)
    except TongbanError:
        return ()
    if tier is Tier.CENTRAL:
        return CENTRAL_ROLES
    return DEPARTMENT_ROLES if tier is Tier.DEPARTMENT else ROLES
