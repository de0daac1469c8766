"""The simulation's clock: pinned to a simulated moment, or running from one at wall speed."""

from __future__ import annotations

import threading
import time


class SimClock:
    """A :class:`core.clock.Clock` for simulated time.

    Pinned, it reads the pinned second and moves one second per reading (as a clerk's
    steps are seconds apart). Running, every process given the same ``(at, wall)`` pair
    reads the same time: ``at`` plus the wall-clock seconds since ``wall``.
    """

    def __init__(self, at: int) -> None:
        self._lock = threading.Lock()
        self._pinned: int | None = at
        self._at = at
        self._wall = 0.0

    def pin(self, at: int) -> None:
        with self._lock:
            self._pinned = at

    def run(self, at: int, wall: float) -> None:
        with self._lock:
            self._pinned, self._at, self._wall = None, at, wall

    def now(self) -> int:
        with self._lock:
            if self._pinned is None:
                return int(self._at + time.time() - self._wall)
            value = self._pinned
            self._pinned += 1
            return value

    def wall_by(self, at: int) -> float:
        """The wall-clock time by which a running clock had read ``at`` to its end (the
        clock reads whole seconds, so this bounds from above when ``at`` was read)."""
        with self._lock:
            if self._pinned is not None:
                raise RuntimeError("a pinned clock does not run at wall speed")
            return self._wall + (at + 1 - self._at)
