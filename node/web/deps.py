"""Dependency providers of the node's web service: the desk (store, keys, clock) per worker.

Each worker gets a :class:`node.desk.Desk` with its own SQLite connection from a small
pool, so greenthreads never share a connection. A write transaction never yields to the
hub (nothing inside one does green I/O), so workers of one process cannot wait on each
other's locks; the sync agent is another process and waits through SQLite's busy timeout.
Password hashing is slow on purpose (argon2id, 64 MiB), so it runs in eventlet's thread
pool, at most two at a time, and the hub keeps serving.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import eventlet
from eventlet import tpool
from nameko.extensions import DependencyProvider

from core.clock import Clock, SystemClock
from node import config as node_config
from node.desk import Desk
from node.store import NodeStore
from sync import keys

T = TypeVar("T")
HOME_KEY = "TONGBAN_HOME"


class DeskPool:
    """Desks for one node directory, handed out one per worker."""

    def __init__(self, home: Path, clock: Clock) -> None:
        self.home = home
        self.clock = clock
        self.config = node_config.load(home)
        self.keys = keys.load_key_file(self.config.key_path)
        self._free: list[Desk] = []
        self._all: list[Desk] = []
        self._hash_slots = eventlet.semaphore.Semaphore(2)

    def take(self) -> Desk:
        if self._free:
            return self._free.pop()
        store = NodeStore.open(self.config.database_path, self.clock)
        desk = Desk(store, self.keys, self.config, self.clock)
        self._all.append(desk)
        return desk

    def give_back(self, desk: Desk) -> None:
        if desk.db.conn.in_transaction:  # a handler died mid-transaction: never reuse that state
            desk.db.conn.rollback()
        self._free.append(desk)

    def slow(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-heavy ``fn`` (password hashing) off the hub, two at a time."""
        with self._hash_slots:
            return tpool.execute(fn, *args)  # type: ignore[no-any-return]

    def close(self) -> None:
        for desk in self._all:
            desk.store.close()
        self._all.clear()
        self._free.clear()


class DeskProvider(DependencyProvider):  # type: ignore[misc]
    """Injects a :class:`WorkerDesk` (desk + pool) into each worker of the web service."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.pool: DeskPool | None = None
        self._taken: dict[int, Desk] = {}

    def setup(self) -> None:
        home = self.container.config.get(HOME_KEY)
        if not home:
            raise RuntimeError(f"the service config needs {HOME_KEY}, the node's directory")
        self.pool = DeskPool(Path(home), self.clock)

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def get_dependency(self, worker_ctx: Any) -> WorkerDesk:
        assert self.pool is not None
        desk = self.pool.take()
        self._taken[id(worker_ctx)] = desk
        return WorkerDesk(desk, self.pool)

    def worker_teardown(self, worker_ctx: Any) -> None:
        desk = self._taken.pop(id(worker_ctx), None)
        if desk is not None and self.pool is not None:
            self.pool.give_back(desk)


class WorkerDesk:
    def __init__(self, desk: Desk, pool: DeskPool) -> None:
        self.desk = desk
        self.pool = pool
