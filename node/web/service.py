"""The node's web service: one nameko service with the clerk pages, the admin pages and the API.

Run it with ``tongban node serve DIR`` (or under supervisor with ``tongban node run``).
It needs only the node directory: no broker, no network beyond its own port; every asset
(CSS, the print script) is served by the node itself.
"""

from __future__ import annotations

import logging
import time

from nameko.timer import timer
from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from core.errors import TongbanError
from node.web.admin import Admin
from node.web.api import Api
from node.web.case_pages import CasePages
from node.web.health import HealthPages
from node.web.pages import Pages
from web.pages import static_file

STATIC = {"app.css": "web", "app.js": "web"}
SMS_INTERVAL = 10
log = logging.getLogger(__name__)


class NodeWeb(Pages, CasePages, Admin, Api, HealthPages):
    name = "node_web"

    @http("GET", "/static/<name>")
    def static(self, request: Request, name: str) -> Response:
        return static_file(name, STATIC)

    @timer(interval=1)
    def tick(self) -> None:
        """Wakes the hub each second so SIGTERM stops the service at once (nameko sleeps 60 s)."""

    @timer(interval=SMS_INTERVAL)
    def tell(self) -> None:
        """Queues and sends the residents' SMS messages (:mod:`node.sms`); a store or a
        gateway that fails now is tried again at the next tick."""
        try:
            self.web.desk.tell_residents()
        except TongbanError as exc:
            log.warning("SMS: %s", exc.render("en"))

    @timer(interval=1)
    def housekeep(self) -> None:
        """The file store's housekeeping (:meth:`node.desk.Desk.housekeep`) every ``[files]
        housekeep_seconds`` (ten minutes), the first that long after the start: orphans and
        stale transfers swept, a village's files central holds let go after ``[files]
        keep_days``. The timer looks each second whether it is due (a nameko timer's interval
        is fixed when the class is made, the setting is read with the node's configuration)."""
        pool = self.web.pool
        now = time.monotonic()
        if pool.housekeeping_due is None:
            pool.housekeeping_due = now + pool.config.files.housekeep_seconds
        if now < pool.housekeeping_due:
            return
        pool.housekeeping_due = now + pool.config.files.housekeep_seconds
        try:
            swept, retained = self.web.desk.housekeep()
        except TongbanError as exc:
            log.warning("files: %s", exc.render("en"))
            return
        if swept or retained:
            log.info("files: %d swept, %d removed under the retention rule", swept, retained)
