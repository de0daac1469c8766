"""Which of a parent's records concern a child: the down phase's filter.

A parent's down scan reads the columns of every arrival after the child's checkpoint and
sends what concerns the child (``sync.record.kinds.concerns``). The root's records and the
child's own subtree's always do (the child holds those origins whole); the columns decide
for a kind scoped by the tree's root or by its origin; any other kind (a grant, a case
step, a kind added later) is decided by its body's scope, which :class:`Concerns` decodes
once and :class:`Scopes` remembers compactly for every child's scan after.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

from core.admin import within
from sync.record import kinds
from sync.record.log import decode_stored

ORIGIN_SCOPED = frozenset({kinds.NODE_ENROLLED, kinds.CLERK_SET, kinds.LINK_RECEIPT, kinds.NODE_STATUS})
"""Kinds that concern their origin's subtree only: the columns decide, no body is read.
Any other kind (a grant, a case step, a kind added later) is decided by its body."""
SCOPES_KEPT = 1 << 20
"""Arrivals whose scope a parent remembers, the newest (see :class:`Scopes`)."""


class Concerns:
    """Whether a record a parent holds concerns a child: by the record's columns where they
    decide, else by its scope (:func:`sync.record.kinds.scope_of`), decoded once per parent
    and not once per child that scans it — a record's scope never changes.

    ``envelope_at`` reads the stored envelope at an arrival (the parent's store does: this
    module reads no table); ``root`` is the code of the tree's root.
    """

    def __init__(self, root: str, envelope_at: Callable[[int], bytes], window: int = SCOPES_KEPT) -> None:
        self.root = root
        self.envelope_at = envelope_at
        self.scopes = Scopes(window)

    def __call__(self, origin: str, kind: str, arrival: int, child: str) -> bool:
        if origin == self.root or within(origin, child):
            # The child holds these origins whole: it must never see a gap in them.
            return True
        if kind in kinds.ROOT_SCOPED:
            return True
        if kind in ORIGIN_SCOPED:
            return False
        # kinds.concerns for a record not of the root, by the record's remembered scope.
        return kinds.reaches(kind, self.scope(kind, origin, arrival), child)

    def scope(self, kind: str, origin: str, arrival: int) -> str | None:
        """The scope of the record at ``arrival``, remembered once decoded."""
        known, scope = self.scopes.get(arrival)
        if known:
            return scope
        scope = kinds.scope_of(kind, origin, decode_stored(self.envelope_at(arrival)).body)
        self.scopes.put(arrival, scope)
        return scope


class Scopes:
    """The scope of each body-scoped record a parent holds, by arrival: decoded once per
    parent, not once per child that scans it (a record's scope never changes, nor its
    arrival in a store). Two bytes per arrival over a window of :data:`SCOPES_KEPT`
    arrivals, and the few hundred distinct scopes (node codes) once each: a dictionary by
    record id took 135 bytes a record, 7 MB at central after a month of a whole city."""

    def __init__(self, window: int = SCOPES_KEPT) -> None:
        self.window = window
        self.base = 0
        self.ids = array("H")
        self.names: list[str | None] = [None]  # id 0: not known yet
        self.known: dict[str | None, int] = {}

    def get(self, arrival: int) -> tuple[bool, str | None]:
        """(known, scope) of the record at ``arrival``."""
        at = arrival - self.base
        if 0 <= at < len(self.ids) and self.ids[at]:
            return True, self.names[self.ids[at]]
        return False, None

    def put(self, arrival: int, scope: str | None) -> None:
        if arrival < self.base:
            return
        if scope not in self.known:
            if len(self.names) >= 0xFFFF:
                return  # more scopes than a city has nodes: not kept
            self.known[scope] = len(self.names)
            self.names.append(scope)
        at = arrival - self.base
        if at >= self.window:  # slide: keep the newest three quarters
            drop = at - self.window * 3 // 4
            del self.ids[: min(drop, len(self.ids))]
            self.base += drop
            at -= drop
        if at >= len(self.ids):
            self.ids.frombytes(bytes(2 * (at + 1 - len(self.ids))))
        self.ids[at] = self.known[scope]
