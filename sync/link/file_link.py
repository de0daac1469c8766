"""What the files phase takes from a store and gives it, on either side of a link.

:class:`FileLink` is one store's view for one session with one peer: the files it wants
(those its records list, that it lacks, of cases within ``scope``), what it serves, the
chunks it keeps (:class:`sync.record.filestore.FileStore`, with the bookkeeping of
:mod:`sync.projection.files`), and which of the peer's subtree's files the root holds.
A parent's scope is the child's subtree; a child's is its own.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database

from core.admin import within
from core.errors import ErrorCode, InputError, SyncError, error
from core.files import MAX_FILE_BYTES
from core.intake import case_node
from sync.link.files_flow import Want
from sync.link.protocol import MAX_AT_ROOT, MAX_WANTS
from sync.projection import case_queries
from sync.projection import files as file_rows
from sync.record.db import transaction
from sync.record.filestore import FileStore
from sync.record.log import RecordLog


def _within(case_no: str, scope: str) -> bool:
    try:
        return within(case_node(case_no), scope)
    except InputError:
        return False


class _Scope:
    """Whether a case concerns a scope: taken in within it, or decided within it (a case
    central took in, for another city's window, goes to the town that decides it)."""

    def __init__(self, db: Database, scope: str) -> None:
        self.db, self.scope = db, scope
        self.deciders: dict[str, str | None] = {}

    def __call__(self, case_no: str) -> bool:
        if _within(case_no, self.scope):
            return True
        if case_no not in self.deciders:
            row = case_queries.case(self.db, case_no)
            self.deciders[case_no] = row.decider if row is not None else None
        decider = self.deciders[case_no]
        return decider is not None and within(decider, self.scope)


class FileLink:
    """One store's files for a session with ``peer`` (the :class:`FileSource` and
    :class:`FileSink` of :mod:`sync.link.files_flow`)."""

    def __init__(
        self,
        log: RecordLog,
        files: FileStore | None,
        scope: str,
        peer: str,
        count: Callable[[str, dict[str, int]], None],
        budget: int = 0,
    ) -> None:
        self.log = log
        self.db = log.db
        self.files = files
        self.scope = scope
        self.concerns = _Scope(self.db, scope)
        self.peer = peer
        self.count = count
        self.budget = budget  # bytes the file store may hold (0: no bound)

    # -- what this side asks for and tells ------------------------------------------------

    def wants(self) -> list[Want]:
        """The files records held list, of cases within the scope, that the store lacks,
        with the offset of any part kept from a cut transfer."""
        if self.files is None:
            return []
        out = []
        room = self._room()
        for sha, size, case_no in file_rows.missing_by_case(self.db):
            if size <= MAX_FILE_BYTES and size <= room and self.concerns(case_no):
                room -= size  # what would pass the budget is not asked for (E_FILE_BUDGET)
                out.append(Want(sha, size, self.files.partial_offset(sha)))
                if len(out) >= MAX_WANTS:
                    break
        return out

    def _room(self) -> int:
        """Bytes the budget leaves for files to come (no bound: more than any session moves)."""
        if not self.budget:
            return 1 << 62
        return self.budget - file_rows.held_bytes(self.db)

    def at_root(self, is_root: bool) -> list[str]:
        """The files of the scope's cases the root holds: a root's every one it holds, any
        other store's those its own parent said the root holds."""
        out = [
            sha
            for sha, case_no, root, _, _ in file_rows.held_by_case(self.db)
            if (is_root or root) and self.concerns(case_no)
        ]
        return out[:MAX_AT_ROOT]

    def mark_at_root(self, shas: list[str]) -> None:
        if shas:
            with transaction(self.db):
                file_rows.mark_at_root(self.db, shas)

    def servable(self, wants: list[Want]) -> list[Want]:
        """Of what the peer asks for, what it may have: held here and listed by a record of a
        case within the scope; the rest is refused (``E_FILE_SCOPE``, counted)."""
        out, refused = [], 0
        for want in wants:
            if self.files is None or not self.held(want.sha):
                continue
            refs = file_rows.refs_of_sha(self.db, want.sha)
            if not any(self.concerns(ref.case_no) for ref in refs):
                refused += 1
                continue
            out.append(want)
        if refused:
            self.refused({ErrorCode.FILE_SCOPE.value: refused})
        return out

    # -- FileSource ------------------------------------------------------------------------

    def read_chunk(self, sha: str, offset: int, size: int) -> bytes | None:
        if self.files is None or not self.files.has(sha):
            return None
        return self.files.read(sha, offset, size)

    # -- FileSink --------------------------------------------------------------------------

    def admit(self, sha: str, size: int) -> str | None:
        refs = file_rows.refs_of_sha(self.db, sha)
        if not refs:
            raise SyncError(ErrorCode.FILE_UNREFERENCED, f"no record held lists the file {sha}")
        if not any(self.concerns(ref.case_no) for ref in refs):
            raise error(ErrorCode.FILE_SCOPE, f"the file {sha} is of a case outside {self.scope}")
        if size > MAX_FILE_BYTES or all(ref.ref.size != size for ref in refs):
            raise error(ErrorCode.FILE_TOO_LARGE, f"the file {sha} is not of {size} bytes")
        if size > self._room():
            raise error(ErrorCode.FILE_BUDGET, f"the file {sha} would pass the file store's budget")
        return refs[0].ref.type

    def type_of(self, sha: str) -> str:
        refs = file_rows.refs_of_sha(self.db, sha)
        return refs[0].ref.type if refs else "application/octet-stream"

    def held(self, sha: str) -> bool:
        return self.files is not None and file_rows.is_held(self.db, sha) and self.files.has(sha)

    def offset(self, sha: str) -> int:
        return self.files.partial_offset(sha) if self.files is not None else 0

    def append(self, sha: str, offset: int, data: bytes) -> int:
        if self.files is None:
            raise error(ErrorCode.FILE_MISSING, "this store keeps no files")
        return self.files.append(sha, offset, data)

    def finish(self, sha: str, size: int, type_: str) -> None:
        assert self.files is not None
        self.files.finish(sha, size)
        with transaction(self.db):
            file_rows.note_held(self.db, sha, size, type_, self.log.clock.now())

    def refused(self, codes: dict[str, int]) -> None:
        with transaction(self.db):
            self.count(self.peer, codes)

    # -- for the status line ---------------------------------------------------------------

    def waiting_down(self) -> int:
        """Bytes of the files this store wants (of the scope's cases) and lacks."""
        return sum(w.size - w.offset for w in self.wants())

    def waiting_up(self) -> int:
        """Bytes of the files held that records of the scope's nodes list (their pages,
        their decisions' documents) and the root is not known to hold."""
        return sum(
            size
            for _, _, root, size, origins in file_rows.held_by_case(self.db)
            if not root and any(within(origin, self.scope) for origin in origins)
        )

    def figures(self) -> dict[str, int]:
        """What a ``node.status`` says of the files: bytes waiting up, down, and held."""
        return {"up": self.waiting_up(), "down": self.waiting_down(), "held": file_rows.held_bytes(self.db)}
