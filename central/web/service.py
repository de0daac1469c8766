"""Central's operator web service: one nameko http service with every operator page.

Run it with ``tongban central run DIR`` (``--only web``), or under supervisor. It needs
only central's directory and its own port; every asset is served by the service itself.
"""

from __future__ import annotations

from nameko.timer import timer
from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from central.web.catalog import CatalogPages
from central.web.delegation import DelegationPages
from central.web.health import HealthPages
from central.web.pages import Pages
from central.web.peers import PeerPages
from web.pages import static_file

STATIC = {"app.css": "web", "app.js": "web", "central.css": "central.web"}


class CentralWeb(Pages, CatalogPages, DelegationPages, PeerPages, HealthPages):
    name = "central_web"

    @http("GET", "/static/<name>")
    def static(self, request: Request, name: str) -> Response:
        return static_file(name, STATIC)

    @timer(interval=1)
    def tick(self) -> None:
        """Wakes the hub each second so SIGTERM stops the service at once (nameko sleeps 60 s)."""
