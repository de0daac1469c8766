"""The child's sync agent: a session every ``interval`` seconds, backing off after failures.

A node that cannot reach its parent keeps working; the agent tries again after 5, 10, 20 …
seconds, at most ``max_backoff``, and at the normal interval again after a success. While
it backs off because the parent was unreachable, a :class:`sync.link.transport.LinkWatch` keeps
a connection attempt standing: when the link comes back, the next session starts within
seconds (at most one every :data:`FIRST_BACKOFF` on a link that comes and goes), not at the
end of its back-off (which grows to the interval, a minute by default). The same class
runs under nameko's timer
(:mod:`sync.link.services`) and in ``tongban node sync``. After a good session the agent
tells its home (:meth:`sync.link.transport.Home.synced`): a town renews the sub-grants that
are due then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from core.errors import ErrorCode
from sync.link.transport import Home, LinkWatch, SyncResult, Upstream, sync_once
from sync.record.verify import SERIAL, Verifier

log = logging.getLogger(__name__)

FIRST_BACKOFF = 5.0
MAX_BACKOFF = 600.0


class Agent:
    """Decides when the next session is due and runs it."""

    def __init__(
        self,
        opener: Callable[[], Home],
        upstreams: Callable[[Home], list[Upstream]],
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        verifier: Verifier = SERIAL,
        max_backoff: float = MAX_BACKOFF,
        monotonic: Callable[[], float] = time.monotonic,
        watcher: Callable[[Any, Upstream], LinkWatch] | None = LinkWatch,
    ) -> None:
        self.opener = opener
        self.upstreams = upstreams
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.verifier = verifier
        self.max_backoff = max_backoff
        self.monotonic = monotonic
        self.watcher = watcher
        self.watch: LinkWatch | None = None
        self.failures = 0
        self.next_due = 0.0
        self.last_end = float("-inf")
        self.last: SyncResult | None = None

    def tick(self) -> SyncResult | None:
        """Run a session if one is due; its result, or None when none was due."""
        if self.monotonic() < self.next_due and not self._link_back():
            return None
        home = self.opener()
        try:
            interval = max(1, home.settings.interval)
            upstreams = self.upstreams(home)
            result = sync_once(
                home,
                upstreams,
                timeout=self.timeout,
                connect_timeout=self.connect_timeout,
                verifier=self.verifier,
            )
            if result.ok:
                home.synced(result)
            self._watch(home, upstreams, result)
        finally:
            home.close()
        if result.ok:
            self.failures = 0
            delay = float(interval)
        else:
            self.failures += 1
            delay = min(
                self.max_backoff, FIRST_BACKOFF * 2 ** (self.failures - 1), max(interval, FIRST_BACKOFF)
            )
            delay = max(delay, FIRST_BACKOFF)
        self.last_end = self.monotonic()
        self.next_due = self.last_end + delay
        self.last = result
        return result

    def _link_back(self) -> bool:
        """Whether the watched link came back (and the last attempt is long enough ago)."""
        if self.watch is None or self.monotonic() < self.last_end + FIRST_BACKOFF:
            return False
        if not self.watch.came_up():
            return False
        log.info("the link to %s is back: syncing now", self.watch.upstream.code)
        self.close()
        return True

    def _watch(self, home: Home, upstreams: list[Upstream], result: SyncResult) -> None:
        """Watch the first upstream after a session that found no parent; else stop watching."""
        unreachable = bool(result.attempts) and all(
            code == ErrorCode.SYNC_UNREACHABLE.value for _, code in result.attempts
        )
        if not unreachable or not upstreams or self.watcher is None:
            self.close()
        elif self.watch is None:
            try:
                self.watch = self.watcher(home.keys, upstreams[0])
            except Exception as exc:  # a watch is an optimisation: the back-off still holds
                log.warning("cannot watch the link to %s: %s", upstreams[0].code, exc)

    def close(self) -> None:
        """Stop watching the link (the agent goes on: a later failure watches again)."""
        if self.watch is not None:
            self.watch.close()
            self.watch = None
