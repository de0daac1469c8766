"""The catalog draft's tables: the next release, kept while it is prepared on the operator web.

``catalog_draft`` holds the one draft's provenance (the release it started from, the file,
who made and last changed it) and ``catalog_draft_items`` its items, as JSON. The draft is
central's own working state, not a record: nothing of it leaves central until it is
published (:func:`central.drafts.publish_draft`).

Every change is one transaction and is checked in full before anything is written (the
items are :class:`core.catalog.Item` objects, so a bad field is refused with
``E_CATALOG_INVALID`` before it gets here), so a refused import or edit leaves the draft
exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlite_utils import Database

from core.catalog import Item
from core.clock import Clock
from core.errors import ErrorCode, InputError
from sync.projection.catalog import current_catalog, newest_version
from sync.record.db import transaction


@dataclass(frozen=True)
class DraftInfo:
    """Where the draft came from and who touched it last."""

    base_version: int | None
    source: str
    created_at: int
    created_by: str
    changed_at: int
    changed_by: str


class CatalogDraft:
    """The draft kept in central's store ``db``: one import, edit or discard a transaction."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # -- reading ----------------------------------------------------------------------------

    def info(self) -> DraftInfo | None:
        row = self.db.conn.execute(
            "SELECT base_version, source, created_at, created_by, changed_at, changed_by"
            " FROM catalog_draft WHERE id = 1"
        ).fetchone()
        return DraftInfo(*row) if row else None

    def items(self) -> tuple[Item, ...]:
        rows = self.db.conn.execute("SELECT body FROM catalog_draft_items ORDER BY code").fetchall()
        return tuple(Item.from_body(json.loads(r[0])) for r in rows)

    def item(self, code: str) -> Item:
        row = self.db.conn.execute("SELECT body FROM catalog_draft_items WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise InputError(ErrorCode.ITEM_UNKNOWN, f"{code} is not in the draft")
        return Item.from_body(json.loads(row[0]))

    def digest(self) -> str:
        """A fingerprint of the draft's items, for the publish confirmation."""
        return items_digest(self.items())

    # -- changing ---------------------------------------------------------------------------

    def replace(self, items: Iterable[Item], source: str, actor: str) -> None:
        """Make ``items`` the whole draft (an import that replaces)."""
        items = tuple(items)
        with transaction(self.db):
            self.db.conn.execute("DELETE FROM catalog_draft_items")
            self._touch(actor, source=source, restart=True)
            self._write(items)

    def merge(self, items: Iterable[Item], source: str, actor: str) -> None:
        """Add ``items`` to the draft, replacing items with the same code. With no draft,
        the draft begins as the current release: a merge never deletes an item."""
        items = tuple(items)
        with transaction(self.db):
            current = current_catalog(self.db) if self.info() is None else None
            self._touch(actor, source=source)
            if current is not None:
                self._write(current.items)
            self._write(items)

    def start_from_current(self, actor: str) -> None:
        """A draft holding the current release's items, to edit a few of them."""
        current = current_catalog(self.db)
        if current is None:
            raise InputError(ErrorCode.ITEM_UNKNOWN, "no catalog release has been published yet")
        self.replace(current.items, f"v{current.version}", actor)

    def put(self, item: Item, actor: str) -> None:
        """Replace one item of the draft (it must be there: edits do not add items)."""
        with transaction(self.db):
            self.require()
            self.item(item.code)
            self._touch(actor)
            self._write((item,))

    def remove(self, code: str, actor: str) -> None:
        with transaction(self.db):
            self.require()
            self.item(code)
            self.db.conn.execute("DELETE FROM catalog_draft_items WHERE code = ?", (code,))
            self._touch(actor)

    def discard(self) -> None:
        with transaction(self.db):
            self.require()
            self.clear()

    def clear(self) -> None:
        """Empty the draft (a publish does, inside its own transaction)."""
        with transaction(self.db):
            self.db.conn.execute("DELETE FROM catalog_draft_items")
            self.db.conn.execute("DELETE FROM catalog_draft")

    def require(self) -> DraftInfo:
        info = self.info()
        if info is None:
            raise InputError(ErrorCode.DRAFT_NONE)
        return info

    def _touch(self, actor: str, *, source: str | None = None, restart: bool = False) -> None:
        now = self.clock.now()
        info = self.info()
        if info is None or restart:
            base = newest_version(self.db) or None
            self.db.conn.execute(
                "INSERT OR REPLACE INTO catalog_draft (id, base_version, source, created_at, created_by,"
                " changed_at, changed_by) VALUES (1, ?, ?, ?, ?, ?, ?)",
                (base, source or "", now, actor, now, actor),
            )
            return
        self.db.conn.execute(
            "UPDATE catalog_draft SET changed_at = ?, changed_by = ?, source = ? WHERE id = 1",
            (now, actor, source if source is not None else info.source),
        )

    def _write(self, items: tuple[Item, ...]) -> None:
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO catalog_draft_items (code, body) VALUES (?, ?)",
            [(i.code, json.dumps(i.to_body(), ensure_ascii=False, sort_keys=True)) for i in items],
        )


def items_digest(items: Iterable[Item]) -> str:
    text = json.dumps([i.to_body() for i in items], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
