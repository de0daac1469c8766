"""Time as an injected dependency.

Everything that signs, stamps or checks validity takes a :class:`Clock` so that tests and
golden vectors are byte-exact. Time in signed records is always integer epoch seconds.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Protocol

CHINA = dt.timezone(dt.timedelta(hours=8), "CST")
"""China Standard Time: dates on receipts and deadlines are local dates (UTC+8, no DST)."""


def local_date(ts: int) -> dt.date:
    """The date in China at epoch second ``ts``."""
    return dt.datetime.fromtimestamp(ts, CHINA).date()


def local_time(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, CHINA)


class Clock(Protocol):
    """A source of the current time in integer epoch seconds."""

    def now(self) -> int: ...


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> int:
        return int(time.time())


@dataclass
class FixedClock:
    """A clock that only moves when told to (tests, vectors, simulations)."""

    t: int = 1_764_000_000  # 2025-11-24T16:00:00Z
    step: int = 0
    _calls: int = field(default=0, repr=False)

    def now(self) -> int:
        value = self.t + self._calls * self.step
        self._calls += 1
        return value

    def advance(self, seconds: int) -> None:
        self.t += seconds

    def set(self, ts: int) -> None:
        """Make the next :meth:`now` return ``ts`` (a clock set right, or set wrong)."""
        self.t = ts - self._calls * self.step
