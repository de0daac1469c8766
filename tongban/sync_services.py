"""The sync services bound to Tongban's directories: run with ``nameko run``.

``nameko run --config sync.yaml tongban.sync_services:SyncEndpoint`` serves a town's or
central's children; ``…:SyncAgent`` runs a node's agent; a town runs both. The config
needs ``SYNC_HOME`` (the directory) and may set ``SYNC_LISTEN`` and ``SYNC_TIMEOUT``
(:mod:`sync.link.services`).
"""

from __future__ import annotations

from sync.link import services
from tongban.homes import open_home


class SyncEndpoint(services.SyncEndpoint):
    link = services.ParentLinkProvider(open_home)


class SyncAgent(services.SyncAgent):
    agent = services.AgentProvider(open_home)
