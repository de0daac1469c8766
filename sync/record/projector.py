"""Projectors: what keeps a store's tables in step with its log, inside the append's transaction.

A projection is a set of tables derived only from the log. Each projector says which kinds
it reads and which tables it owns; :meth:`sync.record.log.RecordLog.rebuild` clears those
tables and replays the log, and ``tongban verify`` compares them with a fresh replay. The
record layer runs its own (the key directory, :mod:`sync.record.trust`); a store hands the
log the others it keeps (:mod:`sync.projection`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlite_utils import Database

from sync.record.envelope import Record


class Projector(Protocol):
    """Keeps some tables in step with the log, inside the append's transaction.

    ``apply`` gets, as ``checked``, the object :func:`sync.record.kinds.check` built from
    the record's body when ingest has just built it (``None`` on a rebuild: build it again).

    A projector may also name, as ``contained``, kinds whose ``apply`` refuses (raises)
    only before its first write, or else undoes its own writes: ingest then needs no
    savepoint around such a record (:meth:`sync.record.ingest.Pass.writes_more_than_once`).
    """

    kinds: frozenset[str]
    tables: tuple[str, ...]

    def apply(self, db: Database, record: Record, checked: object = None) -> None: ...


class Projectors:
    """The projectors of one log, in the order they run."""

    def __init__(self, projectors: Iterable[Projector]) -> None:
        self.all: tuple[Projector, ...] = tuple(projectors)
        self.kinds = frozenset(k for p in self.all for k in p.kinds)
        self.contained = frozenset(
            k
            for p in self.all
            for k in getattr(p, "contained", frozenset())
            if k in p.kinds and sum(k in q.kinds for q in self.all) == 1
        )
        """Kinds that one projector alone reads and that it refuses only before writing, or
        else undoes its own writes (see :class:`Projector`)."""
        self.tables = tuple(t for p in self.all for t in p.tables)
        self._by_kind: dict[str, tuple[Projector, ...]] = {
            kind: tuple(p for p in self.all if kind in p.kinds) for kind in self.kinds
        }

    def project(self, db: Database, record: Record, checked: object = None) -> None:
        """Update every projection that reads ``record``'s kind."""
        for projector in self._by_kind.get(record.kind, ()):
            projector.apply(db, record, checked)
