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

    A projector whose ``refuses`` is False never refuses a record (only the store itself
    can fail under it, which undoes the whole transaction): it runs after every projector
    that may refuse, and does not count against their ``contained`` kinds.
    """

    kinds: frozenset[str]
    tables: tuple[str, ...]

    def apply(self, db: Database, record: Record, checked: object = None) -> None: ...


class Projectors:
    """The projectors of one log, in the order they run."""

    def __init__(self, projectors: Iterable[Projector]) -> None:
        given = tuple(projectors)
        refusing = tuple(p for p in given if getattr(p, "refuses", True))
        self.all: tuple[Projector, ...] = refusing + tuple(p for p in given if p not in refusing)
        self.kinds = frozenset(k for p in self.all for k in p.kinds)

        def contained(kind: str) -> bool:
            readers = [p for p in refusing if kind in p.kinds]
            return not readers or (
                len(readers) == 1 and kind in getattr(readers[0], "contained", frozenset())
            )

        self.contained = frozenset(k for k in self.kinds if contained(k))
        """Kinds that no projector that may refuse reads, or that one alone reads and
        refuses only before writing, or else undoes its own writes (see :class:`Projector`)."""
        self.tables = tuple(t for p in self.all for t in p.tables)
        self._by_kind: dict[str, tuple[Projector, ...]] = {
            kind: tuple(p for p in self.all if kind in p.kinds) for kind in self.kinds
        }

    def project(self, db: Database, record: Record, checked: object = None) -> None:
        """Update every projection that reads ``record``'s kind."""
        for projector in self._by_kind.get(record.kind, ()):
            projector.apply(db, record, checked)
