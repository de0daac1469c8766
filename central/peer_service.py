"""The link between centrals as a nameko service, run by ``tongban central run`` when
``[peers] listen`` is set (:mod:`tongban.processes`).

Config: ``CENTRAL_HOME`` (central's directory). The receiving side (:func:`central.peer_link.server`)
serves ``[peers] listen`` on a real thread of eventlet's pool with plain pyzmq, its store
opened on that thread; a timer pushes what central owes each linked peer every
``[peers] interval_seconds`` (:func:`central.peer_link.push_all`), on a real thread too.

What a delivered message means is the crossing case's: the hook is
:meth:`central.crossing.Crossing.deliver` (a test may give its own).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from eventlet.tpool import execute as in_real_thread
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from central import config as central_config
from central.authority import Central, open_central
from central.peer_link import Deliver, Pacer, push_all, server
from core.clock import Clock, SystemClock
from sync.link.peer_transport import PeerServer

log = logging.getLogger(__name__)

HOME_KEY = "CENTRAL_HOME"


class PeerLinkProvider(DependencyProvider):  # type: ignore[misc]
    """The receiving side on a real thread, and the pacing of the pushes."""

    def __init__(self, deliver: Deliver | None = None, clock: Clock | None = None) -> None:
        self.deliver = deliver
        self.clock = clock or SystemClock()
        self.home = Path()
        self.server: PeerServer | None = None
        self.pacer = Pacer(5)
        self.pushing = False
        self.opened: Central | None = None

    def setup(self) -> None:
        self.home = Path(self.container.config[HOME_KEY])
        config = central_config.load(self.home)
        self.pacer = Pacer(config.peers.interval_seconds)
        self.server = server(self.home, self.deliver, self.clock)

    def start(self) -> None:
        if self.server is not None:
            self.container.spawn_managed_thread(self._serve)

    def _serve(self) -> None:
        assert self.server is not None
        in_real_thread(self.server.run)
        if self.server.error is not None:
            log.error("the peer endpoint stopped: %s", self.server.error)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stopping = True  # its loop sees it within 200 ms
        if not self.pushing:
            self._close()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> PeerLinkProvider:
        return self

    def push_due(self) -> None:
        """Push to every linked peer when the interval has passed (on a real thread)."""
        now = time.monotonic()
        if self.pushing or not self.pacer.due("*", now):
            return
        self.pushing = True  # one push at a time, however long a transfer takes
        try:
            if self.opened is None:  # opened once: an idle link costs one read, not an open
                self.opened = open_central(self.home, self.clock)
            for result in push_all(self.opened):
                if result.error is not None:
                    log.warning("peer link with %s: %s", result.peer, result.error.render("en"))
                elif result.acked:
                    log.info("peer link with %s: %d delivered", result.peer, result.acked)
        except BaseException:
            self._close()  # opened again at the next push
            raise
        finally:
            self.pushing = False
            self.pacer.pushed("*", time.monotonic())

    def _close(self) -> None:
        opened, self.opened = self.opened, None
        if opened is not None:
            opened.close()


class CentralPeers:
    name = "central_peers"
    link = PeerLinkProvider()

    @timer(interval=1)  # type: ignore[untyped-decorator]
    def push(self) -> None:
        in_real_thread(self.link.push_due)
