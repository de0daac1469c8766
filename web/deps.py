"""Dependency providers of a web service: one store handle per worker, from a small pool.

Each worker gets a handle (a node's desk, an opened central) with its own SQLite
connection, so greenthreads never share a connection. A write transaction never yields to
the hub (nothing inside one does green I/O), so workers of one process cannot wait on each
other's locks; the sync process waits through SQLite's busy timeout. Password hashing is
slow on purpose (argon2id, 64 MiB), so it runs in eventlet's thread pool, at most two at
a time, and the hub keeps serving.

A handle that cannot be opened (the store went missing or unreadable while the service
ran) does not fail the worker: the worker gets :class:`Unavailable` in its place, the page
says what went wrong with its code, and the next request tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import eventlet
from eventlet.tpool import execute as in_real_thread
from nameko.extensions import DependencyProvider
from sqlite_utils import Database

from core.clock import Clock, SystemClock

T = TypeVar("T")
H = TypeVar("H")
HOME_KEY = "TONGBAN_HOME"


class Pool(Generic[H]):
    """Handles of one directory, handed out one per worker; subclasses open and close them."""

    def __init__(self, home: Path, clock: Clock) -> None:
        self.home = home
        self.clock = clock
        self._free: list[H] = []
        self._all: list[H] = []
        self._hash_slots = eventlet.semaphore.Semaphore(2)

    def open_one(self) -> H:
        raise NotImplementedError

    def db_of(self, handle: H) -> Database:
        raise NotImplementedError

    def close_one(self, handle: H) -> None:
        raise NotImplementedError

    def take(self) -> H:
        if self._free:
            return self._free.pop()
        handle = self.open_one()
        self._all.append(handle)
        return handle

    def give_back(self, handle: H) -> None:
        conn = self.db_of(handle).conn
        if conn.in_transaction:  # a handler died mid-transaction: never reuse that state
            conn.rollback()
        self._free.append(handle)

    def slow(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-heavy ``fn`` (password hashing, log verification) off the hub, two at a time."""
        with self._hash_slots:
            return in_real_thread(fn, *args)  # type: ignore[no-any-return]

    def close(self) -> None:
        for handle in self._all:
            self.close_one(handle)
        self._all.clear()
        self._free.clear()


class Unavailable:
    """In place of a handle that could not be opened: what went wrong."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure


def handle_or_raise(handle: H | Unavailable) -> H:
    """``handle``, or raise what kept it from being opened."""
    if isinstance(handle, Unavailable):
        raise handle.failure
    return handle


class PoolProvider(DependencyProvider):  # type: ignore[misc]
    """Injects ``worker(handle, pool)`` into each worker; the directory is ``HOME_KEY``."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.pool: Pool[Any] | None = None
        self._taken: dict[int, Any] = {}

    def make_pool(self, home: Path) -> Pool[Any]:
        raise NotImplementedError

    def worker(self, handle: Any, pool: Pool[Any]) -> Any:
        raise NotImplementedError

    def setup(self) -> None:
        home = self.container.config.get(HOME_KEY)
        if not home:
            raise RuntimeError(f"the service config needs {HOME_KEY}, the directory it serves")
        self.pool = self.make_pool(Path(home))

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def get_dependency(self, worker_ctx: Any) -> Any:
        assert self.pool is not None
        try:
            handle = self.pool.take()
        except Exception as exc:  # shown by the page with its code: see the module docstring
            return self.worker(Unavailable(exc), self.pool)
        self._taken[id(worker_ctx)] = handle
        return self.worker(handle, self.pool)

    def worker_teardown(self, worker_ctx: Any) -> None:
        handle = self._taken.pop(id(worker_ctx), None)
        if handle is not None and self.pool is not None:
            self.pool.give_back(handle)
