"""The child's sync agent: a session every ``interval`` seconds, backing off after failures.

A node that cannot reach its parent keeps working; the agent tries again after 5, 10, 20 …
seconds, at most ``max_backoff``, and at the normal interval again after a success. The
same class runs under nameko's timer (:mod:`sync.services`) and in ``tongban node sync``.
After a good session a town renews the sub-grants that are due (:func:`renew_after_sync`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from core.errors import TongbanError
from sync.delegation import renew_grants
from sync.ingest import SERIAL, Verifier
from sync.transport import Home, SyncResult, Upstream, sync_once

log = logging.getLogger(__name__)

FIRST_BACKOFF = 5.0
MAX_BACKOFF = 600.0


def renew_after_sync(home: Home) -> int:
    """A town renews the sub-grants it gave its villages once its own grants are renewed
    (they arrive in a session); the renewals go up at the next session. How many."""
    try:
        return len(renew_grants(home.log, home.keys, home.code))
    except TongbanError as exc:  # a grant that cannot be renewed is left to expire, visibly
        log.warning("renewing grants: %s", exc.render("en"))
        return 0


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
            if result.ok:
                renew_after_sync(home)
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
