"""The clerk web service's request context: the desk behind every page, and the page frame.

The kit (:mod:`web.render`) reads the language and the session, renders with autoescaping
and sets the security headers; this module adds what a node's pages show on every
screen: the node (from its configuration, so an error page needs no store), and for a
clerk logged in the sync status and the banners (stale catalog, expired grants).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

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
        return {"node": desk.config.node, "banners": [], "sync": None, "now": desk.clock.now()}

    def page_values(self) -> dict[str, Any]:
        values = self.frame_values()
        if self.principal is not None:  # only a clerk logged in sees the sync bar and banners
            values.update(banners=self.desk.banners(), sync=self.desk.sync_status())
        return values
