"""The clerk web service's request context: the desk behind every page, and the page frame.

The kit (:mod:`web.render`) reads the language and the session, renders with autoescaping
and sets the security headers; this module adds what a node's pages show on every
screen: the node (from its configuration, so an error page needs no store), and for a
clerk logged in the sync status and the banners (stale catalog, expired grants).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from core.catalog import Item
from core.errors import ErrorCode, error_text
from node.clerks import Clerks
from node.desk import Desk
from node.web.i18n import TEXTS
from web.render import BaseCtx, WebOptions, environment, status_for

__all__ = ["Ctx", "status_for"]


class Ctx(BaseCtx):
    """One request to a node: the desk (store, keys, config, clock) and the clerk asking."""

    env = environment("node.web")
    texts = TEXTS

    def __init__(self, request: Request, desk: Desk) -> None:
        super().__init__(request, WebOptions.of(desk.config.web))
        self.desk = desk

    @classmethod
    def build(cls, request: Request, desk: Desk) -> Ctx:
        """The context of ``request``; the principal is found by :meth:`identify`."""
        return cls(request, desk)

    @property
    def clerks(self) -> Clerks:
        return self.desk.clerks

    @property
    def accounts(self) -> Clerks:
        return self.clerks

    def frame_values(self) -> dict[str, Any]:
        desk = self.desk
        return {
            "node": desk.config.node,
            "banners": [],
            "sync": None,
            "now": desk.clock.now(),
            "item_name": self.item_name,
        }

    def item_name(self, case: Any, item: Item | None = None) -> str:
        """The item's name for the reader: the name the case carries, or in English the
        catalog's English name (the case's own release's, else the newest)."""
        if self.lang != "en":
            return str(case.item_name)
        if item is None:
            release = self.desk.release(case.cat) or self.desk.catalog()
            item = release.get(case.item) if release is not None else None
        return item.name_en if item is not None else str(case.item_name)

    def page_values(self) -> dict[str, Any]:
        values = self.frame_values()
        values["names"] = {}
        values["sync_error"] = ""
        if self.principal is not None:  # only a clerk logged in sees the sync bar and banners
            sync = self.desk.sync_status()
            names = self.desk.node_names()
            values.update(banners=self.desk.banners(), sync=sync, names=names)
            values["sync_error"] = self.sync_error(sync.last_error, names) if sync.last_error else ""
        return values

    def sync_error(self, stored: str, names: dict[str, str]) -> str:
        """The last sync error for the reader: its code's text in the reader's language and
        the parent it was trying to reach by name (the stored text is the log's English)."""
        code = stored.split(":", 1)[0].strip()
        parent = self.desk.config.node.parent
        try:
            text = error_text(ErrorCode(code), self.lang)
        except ValueError:
            return stored if self.lang == "en" else self.t("sync.failed")
        return f"{code} {text}" + self.t("sync.parent", parent=names.get(parent, parent))
