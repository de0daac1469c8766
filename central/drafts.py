"""The catalog draft: the next release, prepared on the operator web before it is signed.

There is one draft at a time (:class:`central.draft_store.CatalogDraft`). An operator starts
it by importing a catalog file (replacing the draft, or merging items into it by code) or
from the current release, edits single items, and then publishes it as the next release
(:func:`publish_draft`) or discards it. Nothing leaves central until the publish, which is
one signed ``catalog.release`` naming the operator as its actor.

The publish confirms what the operator saw: the draft's digest and the current release's
version at the time of the confirmation page (:func:`preview`); if either moved since, it
is refused with ``E_DRAFT_STALE``.
"""

from __future__ import annotations

from central.authority import CATALOG_VALIDITY_DAYS, DAY, Central, publish_catalog
from central.draft_store import CatalogDraft, items_digest
from core.catalog import CatalogRelease
from core.errors import ErrorCode, InputError
from sync.projection.catalog import current_catalog
from sync.record.db import transaction
from sync.record.envelope import Record


def preview(draft: CatalogDraft, valid_days: int = CATALOG_VALIDITY_DAYS) -> CatalogRelease:
    """The release a publish now would make (for the differences; never signed)."""
    draft.require()
    items = draft.items()
    if not items:
        raise InputError(ErrorCode.CATALOG_INVALID, "the draft has no items")
    current = current_catalog(draft.db)
    now = draft.clock.now()
    version = (current.version if current else 0) + 1
    return CatalogRelease(version=version, issued_at=now, expires_at=now + valid_days * DAY, items=items)


def publish_draft(
    central: Central, *, digest: str, base: int, valid_days: int, actor: str
) -> tuple[Record, CatalogRelease]:
    """Publish the draft as the next release and clear it, in one transaction.

    ``digest`` and ``base`` are the draft's digest and the current release's version (0:
    none) the operator confirmed; ``E_DRAFT_STALE`` when either has moved since.
    """
    if not 1 <= valid_days <= 400:
        raise InputError(ErrorCode.FIELD_INVALID, "valid days: 1 to 400")
    db = central.store.db
    draft = CatalogDraft(db, central.store.log.clock)
    with transaction(db):
        draft.require()
        items = draft.items()
        current = current_catalog(db)
        if items_digest(items) != digest or (current.version if current else 0) != base:
            raise InputError(ErrorCode.DRAFT_STALE)
        if not items:
            raise InputError(ErrorCode.CATALOG_INVALID, "the draft has no items")
        published = publish_catalog(central, items, valid_days=valid_days, actor=actor)
        draft.clear()
    return published
