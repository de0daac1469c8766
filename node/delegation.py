"""A town's sub-delegation to its villages (the node admin's page).

A town passes down items of a grant it holds — valid now, with depth left, not revoked —
to an enrolled village of its own, one grant per mode the catalog allows at village level,
never wider or longer than the grant it derives from; and it revokes what it issued.
"""

from __future__ import annotations

from core.clock import Clock
from core.errors import AuthorityError, ErrorCode, InputError
from core.grants import Grant
from node.store import NodeStore
from sync.projection.catalog import catalog_release
from sync.projection.delegation import issue_grant, revoke_grant, split_by_mode
from sync.projection.grants import StoreGrants
from sync.record import trust
from sync.record.db import transaction
from sync.record.keys import NodeKeys
from sync.record.trust import Certificate

MAX_VALID_DAYS = 366


class Delegation:
    """The grants the node ``code`` passes down; records signed with ``node_keys``."""

    def __init__(self, store: NodeStore, node_keys: NodeKeys, code: str, clock: Clock) -> None:
        self.store = store
        self.db = store.db
        self.keys = node_keys
        self.code = code
        self.clock = clock

    def parents(self) -> list[Grant]:
        """This node's grants that may be passed down: valid now, depth left, not revoked."""
        now = self.clock.now()
        source = StoreGrants(self.db)
        return [
            grant
            for grant in source.held_by(self.code)
            if grant.depth >= 1
            and grant.nbf <= now <= grant.exp
            and not list(source.revocations_of(grant.id))
        ]

    def children(self) -> list[Certificate]:
        """The villages enrolled under this node (unrevoked certificates), by code."""
        return trust.children_of(self.db, self.code)

    def delegate(
        self, village: str, parent: bytes, items: list[str], valid_days: int, actor: str
    ) -> list[bytes]:
        """Sub-grant ``items`` of grant ``parent`` to ``village``, one grant per mode; the ids."""
        if village not in {c.code for c in self.children()}:
            raise AuthorityError(
                ErrorCode.GRANT_AUDIENCE, f"{village} is not an enrolled village of {self.code}"
            )
        grant = next((g for g in self.parents() if g.id == parent), None)
        if grant is None:
            raise AuthorityError(
                ErrorCode.GRANT_CHAIN_BROKEN, "that grant cannot be passed down (expired, revoked or depth 0)"
            )
        catalog = catalog_release(self.db, grant.cat)
        if catalog is None:
            raise InputError(ErrorCode.GRANT_CATALOG, f"catalog version {grant.cat} is not held")
        if not items or not set(items) <= set(grant.items):
            raise AuthorityError(ErrorCode.GRANT_WIDENS, "only items of the parent grant can be passed down")
        if not 1 <= valid_days <= MAX_VALID_DAYS:
            raise InputError(ErrorCode.FIELD_INVALID, f"valid days: 1 to {MAX_VALID_DAYS}")
        now = self.clock.now()
        ids = []
        with transaction(self.db):
            for mode, codes in split_by_mode(catalog, "village", items, grant.mode).items():
                record = issue_grant(
                    self.store.log,
                    self.keys,
                    self.code,
                    aud=village,
                    items=codes,
                    mode=mode,
                    nbf=max(grant.nbf, now - 86_400),
                    exp=min(grant.exp, now + valid_days * 86_400),
                    depth=0,
                    cat=grant.cat,
                    parent=grant.id,
                    actor=actor,
                )
                ids.append(record.id)
        if not ids:
            raise AuthorityError(ErrorCode.GRANT_MODE, "none of these items is offered at village level")
        return ids

    def issued(self) -> list[tuple[Grant, bool]]:
        """Every grant this node issued, newest first, with whether it has been revoked."""
        return StoreGrants(self.db).issued_by(self.code)

    def revoke(self, grant_id: bytes, reason: str, actor: str) -> None:
        with transaction(self.db):
            revoke_grant(self.store.log, self.keys, self.code, grant_id, reason, actor)
