"""The files of a department's cases: fetched from central, shown on the desk, sent back.

The records of a case list its files (:mod:`core.files`); the bytes travel apart from them,
over RPC in chunks (:mod:`central.department.contract`), and are kept in the department's
file store (:mod:`sync.record.filestore`), noted held in ``files_held``
(:mod:`sync.projection.files`).

``Transfers.fetch``
    down: each file a record of the department's cases lists and the store does not hold,
    read from central chunk by chunk (``file_chunk``). Each chunk is checked against its
    digest before it is appended to the partial copy, the whole file against its SHA-256
    before it takes its name (``E_FILE_HASH``: the partial copy is dropped and the file
    fetched again later); a cut link leaves the partial copy, and the next round resumes at
    its end. A file central does not hold yet is asked for again later.
``Transfers.send``
    up: each decision letter the department signed that central has not confirmed
    (``at_root``), in chunks (``submit_file``), from where central's partial copy ends.
    Central takes a file only once it holds the decision that lists it; until then the
    letter waits (``E_FILE_UNREFERENCED``) and is sent again.

Both are bounded per round (:data:`CHUNKS_PER_ROUND`) so the link's timer never runs long.

``DepartmentFiles``
    what the desk shows of a case's files (each with whether it has arrived), the file a
    clerk opens, and the decision letter a clerk attaches: normalised (:func:`core.scans.
    normalise`), put in the store before its record is appended, noted held in the record's
    transaction, removed again when the record is not appended.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.department.contract import MAX_CHUNK, REFUSED, STORED, Chunk, FileAnswer, encode_chunk
from central.department.store import DepartmentStore
from core.errors import ErrorCode, StoreError, TongbanError
from core.files import DECISION_MATERIAL, PDF, FileRef
from core.scans import Scan, normalise
from sync.projection import files
from sync.record.db import transaction

log = logging.getLogger(__name__)

CHUNKS_PER_ROUND = 8
"""Chunks one round of the link moves at most, down and up each (2 MiB)."""
RETRY_AFTER = 5.0
"""Seconds before a file that could not move (not at central yet, its decision not there
yet, a bad copy) is tried again; doubled at each failure up to :data:`RETRY_MAX`."""
RETRY_MAX = 300.0


@dataclass(frozen=True)
class DeskFile:
    """A file of a case as the desk shows it: its ref, whether it has arrived, and the
    record that lists it (``intake`` or the event's name) and its place there."""

    ref: FileRef
    held: bool
    event: str
    page: int


class Transfers:
    """The link's file transfers (see the module docstring); one per process."""

    def __init__(self, code: str) -> None:
        self.code = code
        self._later: dict[str, tuple[float, float]] = {}  # sha -> (when to try again, the wait)
        self._offsets: dict[str, int] = {}  # sha -> where central's copy ends, as it said

    def _due(self, sha: str) -> bool:
        return self._later.get(sha, (0.0, 0.0))[0] <= time.monotonic()

    def _wait(self, sha: str) -> None:
        _, waited = self._later.get(sha, (0.0, 0.0))
        wait = min(RETRY_MAX, waited * 2) if waited else RETRY_AFTER
        self._later[sha] = (time.monotonic() + wait, wait)

    def _done(self, sha: str) -> int:
        self._later.pop(sha, None)
        self._offsets.pop(sha, None)
        return 1

    # -- down -----------------------------------------------------------------------------

    def fetch(self, store: DepartmentStore, central: Any, budget: int = CHUNKS_PER_ROUND) -> int:
        """One round down; how many files arrived whole."""
        arrived = 0
        for sha, size in files.missing(store.db):
            if budget <= 0:
                break
            if not self._due(sha):
                continue
            done, budget = self._fetch_one(store, central, sha, size, budget)
            arrived += done
        return arrived

    def _fetch_one(
        self, store: DepartmentStore, central: Any, sha: str, size: int, budget: int
    ) -> tuple[int, int]:
        offset = store.files.partial_offset(sha)
        while budget > 0:
            budget -= 1
            try:
                chunk = Chunk.from_message(central.file_chunk(sha, offset, MAX_CHUNK))
            except TongbanError as exc:
                if exc.code is not ErrorCode.FILE_HASH:
                    raise  # the link itself: the round stops, the sender backs off
                log.warning("file %s from central: %s", sha, exc.render("en"))
                self._wait(sha)
                return 0, budget
            if chunk.code:
                if chunk.code != ErrorCode.FILE_MISSING.value:
                    log.warning("central refused file %s: %s %s", sha, chunk.code, chunk.detail)
                self._wait(sha)
                return 0, budget
            if chunk.size != size or chunk.offset != offset or not chunk.data:
                log.warning("file %s: central has %d bytes, the record says %d", sha, chunk.size, size)
                self._wait(sha)
                return 0, budget
            offset = store.files.append(sha, offset, chunk.data)
            if offset >= size:
                return self._finish(store, sha, size), budget
        return 0, budget

    def _finish(self, store: DepartmentStore, sha: str, size: int) -> int:
        try:
            store.files.finish(sha, size)
        except StoreError as exc:
            log.warning("file %s: %s", sha, exc.render("en"))
            self._wait(sha)
            return 0
        kind = next((r.ref.type for r in files.refs_of_sha(store.db, sha)), PDF)
        with transaction(store.db):
            files.note_held(store.db, sha, size, kind, store.log.clock.now())
            files.mark_at_root(store.db, [sha])  # central has it: it came from there
        return self._done(sha)

    # -- up -------------------------------------------------------------------------------

    def unsent(self, store: DepartmentStore) -> list[str]:
        """The department's own files central has not confirmed yet."""
        own = files.listed_by(store.db, self.code)
        return sorted(sha for sha in own if files.is_held(store.db, sha) and not files.at_root(store.db, sha))

    def send(self, store: DepartmentStore, central: Any, budget: int = CHUNKS_PER_ROUND) -> int:
        """One round up; how many files central took whole."""
        sent = 0
        for sha in self.unsent(store):
            if budget <= 0:
                break
            if not self._due(sha):
                continue
            done, budget = self._send_one(store, central, sha, budget)
            sent += done
        return sent

    def _send_one(self, store: DepartmentStore, central: Any, sha: str, budget: int) -> tuple[int, int]:
        size = store.files.size(sha)
        offset = self._offsets.get(sha, 0)
        while budget > 0:
            budget -= 1
            data, digest = encode_chunk(store.files.read(sha, offset, MAX_CHUNK))
            answer = FileAnswer.from_message(central.submit_file(sha, offset, data, digest))
            if answer.status == STORED:
                with transaction(store.db):
                    files.mark_at_root(store.db, [sha])
                return self._done(sha), budget
            if answer.status == REFUSED and answer.code == ErrorCode.FILE_OFFSET.value:
                offset = answer.offset  # resume where central's copy ends
            elif answer.status == REFUSED:
                if answer.code != ErrorCode.FILE_UNREFERENCED.value:
                    log.warning("central refused file %s: %s %s", sha, answer.code, answer.detail)
                self._offsets.pop(sha, None)
                self._wait(sha)
                return 0, budget
            else:
                offset = answer.offset
            self._offsets[sha] = offset
            if offset > size:  # pragma: no cover - central's copy never passes the ref's size
                self._wait(sha)
                return 0, budget
        return 0, budget


class DepartmentFiles:
    """The files of the cases of one department's store, as its desk shows and takes them."""

    def __init__(self, store: DepartmentStore) -> None:
        self.store = store
        self._held = files.HeldFiles(self.store.db, self.store.files)

    def of_case(self, case_no: str) -> list[DeskFile]:
        """Every file the records of ``case_no`` list, in record then page order."""
        return [
            DeskFile(row.ref, self.store.files.has(row.ref.hex), row.event, row.page)
            for row in files.refs_of_case(self.store.db, case_no)
        ]

    def file(self, case_no: str, sha: str) -> tuple[Path, FileRef, bool]:
        """The held file ``sha`` of ``case_no`` (:meth:`sync.projection.files.HeldFiles.file`)."""
        return self._held.file(case_no, sha)

    def active(self, sha: str, kind: str) -> bool:
        return self._held.active(sha, kind)

    def letter(self, name: str, data: bytes) -> tuple[FileRef, Scan]:
        """The decision letter a clerk uploaded, normalised, as the decision's ref."""
        scan = normalise(data, name)
        return FileRef(hashlib.sha256(scan.data).digest(), len(scan.data), scan.type, DECISION_MATERIAL), scan

    @contextmanager
    def storing(self, ref: FileRef, scan: Scan) -> Iterator[None]:
        """Put the letter; wrap the record's transaction (which calls :meth:`note_held`).
        If the record is not appended, the letter goes again unless a record held lists it."""
        new = not self.store.files.has(ref.hex)
        self.store.files.put(scan.data)
        try:
            yield
        except BaseException:
            if new and not files.referenced(self.store.db, ref.hex):
                self.store.files.remove(ref.hex)
            raise

    def note_held(self, ref: FileRef) -> None:
        """Inside the record's transaction: the store holds the letter now."""
        files.note_held(self.store.db, ref.hex, ref.size, ref.type, self.store.log.clock.now())
