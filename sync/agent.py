"""The child's sync agent: a session every ``interval`` seconds, backing off after failures.

A node that cannot reach its parent keeps working; the agent tries again after 5, 10, 20 …
seconds, at most ``max_backoff``, and at the normal interval again after a success. The
same class runs under nameko's timer (:mod:`sync.services`) and in ``tongban node sync``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sync.ingest import SERIAL, Verifier
from sync.transport import Home, SyncResult, Upstream, sync_once

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
        verifier: Verifier = SERIAL,
        max_backoff: float = MAX_BACKOFF,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.opener = opener
        self.upstreams = upstreams
        self.timeout = timeout
        self.verifier = verifier
        self.max_backoff = max_backoff
        self.monotonic = monotonic
        self.failures = 0
        self.next_due = 0.0
        self.last: SyncResult | None = None

    def tick(self) -> SyncResult | None:
        """Run a session if one is due; its result, or None when none was due."""
        if self.monotonic() < self.next_due:
            return None
        home = self.opener()
        try:
            interval = max(1, home.settings.interval)
            result = sync_once(home, self.upstreams(home), timeout=self.timeout, verifier=self.verifier)
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
        self.next_due = self.monotonic() + delay
        self.last = result
        return result
