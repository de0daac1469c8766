"""Dependency providers of central's web service: an opened central per worker.

The pool and the provider are the kit's (:mod:`web.deps`): each worker gets its own
:class:`central.authority.Central` (config, keys, its own SQLite connection), and slow
work (password hashing, verifying the whole log) runs off the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlite_utils import Database

from central import config as central_config
from central.authority import Central, open_central
from core.clock import Clock
from web.deps import Pool, PoolProvider, Unavailable, handle_or_raise
from web.render import WebOptions


class CentralPool(Pool[Central]):
    """Opened centrals for one directory, handed out one per worker."""

    def __init__(self, home: Path, clock: Clock) -> None:
        super().__init__(home, clock)
        self.options = WebOptions.of(central_config.load(home).web)

    def open_one(self) -> Central:
        return open_central(self.home, self.clock)

    def db_of(self, handle: Central) -> Database:
        return handle.store.db

    def close_one(self, handle: Central) -> None:
        handle.close()


class CentralProvider(PoolProvider):
    """Injects a :class:`WorkerCentral` (central + pool) into each worker."""

    def make_pool(self, home: Path) -> CentralPool:
        return CentralPool(home, self.clock)

    def worker(self, handle: Any, pool: Any) -> WorkerCentral:
        return WorkerCentral(handle, pool)


class WorkerCentral:
    """A worker's opened central (or why there is none: :class:`web.deps.Unavailable`) and
    the pool."""

    def __init__(self, central: Central | Unavailable, pool: CentralPool) -> None:
        self._central = central
        self.pool = pool

    @property
    def central(self) -> Central:
        """The opened central; raises what kept it from being opened."""
        return handle_or_raise(self._central)
