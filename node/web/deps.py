"""Dependency providers of the node's web service: the desk (store, keys, clock) per worker.

The pool and the provider are the kit's (:mod:`web.deps`): one desk per worker, each with
its own SQLite connection; password hashing off the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlite_utils import Database

from core.clock import Clock
from node import config as node_config
from node.desk import Desk
from node.store import NodeStore
from sync.record import keys
from web.deps import HOME_KEY, Pool, PoolProvider, Unavailable, handle_or_raise
from web.render import WebOptions

__all__ = ["HOME_KEY", "DeskProvider", "WorkerDesk"]


class DeskPool(Pool[Desk]):
    """Desks for one node directory, handed out one per worker."""

    def __init__(self, home: Path, clock: Clock) -> None:
        super().__init__(home, clock)
        self.config = node_config.load(home)
        self.keys = keys.load_key_file(self.config.key_path)
        self.options = WebOptions.of(self.config.web)
        self.housekeeping_due: float | None = None  # monotonic time of the next housekeeping

    def open_one(self) -> Desk:
        store = NodeStore.open(self.config.database_path, self.clock)
        return Desk(store, self.keys, self.config, self.clock)

    def db_of(self, handle: Desk) -> Database:
        return handle.db

    def close_one(self, handle: Desk) -> None:
        handle.close()


class DeskProvider(PoolProvider):
    """Injects a :class:`WorkerDesk` (desk + pool) into each worker of the web service."""

    def make_pool(self, home: Path) -> DeskPool:
        return DeskPool(home, self.clock)

    def worker(self, handle: Any, pool: Any) -> WorkerDesk:
        return WorkerDesk(handle, pool)


class WorkerDesk:
    """A worker's desk (or why there is none: :class:`web.deps.Unavailable`) and the pool."""

    def __init__(self, desk: Desk | Unavailable, pool: DeskPool) -> None:
        self._desk = desk
        self.pool = pool

    @property
    def desk(self) -> Desk:
        """The desk; raises what kept the store from being opened."""
        return handle_or_raise(self._desk)
