"""The scanned pages of the cases at one node: taken in with their record, shown, kept tidy.

``scan`` / ``attach``
    what the clerk uploads is normalised (:func:`core.scans.normalise`: the type judged from
    the bytes, metadata dropped, scaled) and checked against the caps — a file, a record
    (:mod:`core.files`), the case's files together, and the node's disk budget
    (``[files] budget_mb``) — before anything is stored.
``Attachment.storing``
    the blobs go into the file store before the record is appended; the record's
    transaction notes them held. When the record is refused, the blobs it put that nothing
    else refers to are removed: a file whose record was refused is not kept.
``sweep``
    orphans — files held that no record refers to, older than :data:`ORPHAN_AGE` — and
    transfers left unfinished for :data:`PARTIAL_AGE` are removed.
``retain``
    at a village, a file central holds (``at_root``) whose cases have all been closed for
    ``[files] keep_days`` days is removed: the town and central keep it.
``carry_pages``
    a key rotation's new store takes the pages of the directory moved aside.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.cases import Event
from core.catalog import Item
from core.clock import Clock
from core.errors import ErrorCode, InputError, StoreError
from core.files import (
    DECISION_MATERIAL,
    MAX_FILES_PER_RECORD,
    MAX_RECORD_FILE_BYTES,
    PART_SUPPLEMENT_MATERIAL,
    FileRef,
    check_case_total,
)
from core.intake import materials_for
from core.scans import Scan, normalise
from node.config import FilesSection
from node.store import NodeStore
from sync.projection import case_queries, files
from sync.projection.case_queries import CaseRow
from sync.projection.files import CaseFile
from sync.record.db import transaction

MIB = 1024 * 1024
DAY = 86_400
ORPHAN_AGE = 3600
"""Seconds a file no record refers to is kept (a record being written refers to it soon)."""
PARTIAL_AGE = 7 * DAY
"""Seconds an unfinished transfer is kept for the link to resume it."""
BUDGET_WARNING = 0.9
"""The share of ``[files] budget_mb`` at which every page warns."""


@dataclass(frozen=True)
class Upload:
    """A page as the clerk uploaded it: the material it belongs to, its name, its bytes."""

    material: str
    name: str
    data: bytes


@dataclass(frozen=True)
class ShownFile:
    """A file of a case as the node shows it: its ref, whether this node holds it yet, and
    the record that lists it (``intake`` or the event's name)."""

    ref: FileRef
    held: bool
    event: str
    record_id: bytes
    origin: str
    ts: int
    page: int


class Attachment:
    """Pages checked and ready to go into the store with their record (see the module)."""

    def __init__(self, case_files: CaseFiles, refs: tuple[FileRef, ...], blobs: tuple[bytes, ...]) -> None:
        self.case_files = case_files
        self.refs = refs
        self.blobs = blobs

    @contextmanager
    def storing(self) -> Iterator[None]:
        """Put the blobs; wrap the record's transaction. If it fails, remove the blobs put
        here that no record held refers to."""
        store = self.case_files.store
        new = [ref.hex for ref in self.refs if not store.files.has(ref.hex)]
        try:
            for blob in self.blobs:
                store.files.put(blob)
            yield
        except BaseException:
            for sha in new:
                if not files.referenced(store.db, sha):
                    store.files.remove(sha)
            raise

    def note_held(self) -> None:
        """Inside the record's transaction: the store holds the pages now."""
        now = self.case_files.clock.now()
        for ref in self.refs:
            files.note_held(self.case_files.store.db, ref.hex, ref.size, ref.type, now)


class CaseFiles:
    """The files of the cases of the node whose store, settings and tier are given."""

    def __init__(self, store: NodeStore, config: FilesSection, tier: str, clock: Clock) -> None:
        self.store = store
        self.db = store.db
        self.config = config
        self.tier = tier
        self.clock = clock
        self._held = files.HeldFiles(self.db, self.store.files)

    @property
    def budget_bytes(self) -> int:
        return self.config.budget_mb * MIB

    # -- taking pages in --------------------------------------------------------------------

    def scan(self, uploads: Iterable[Upload]) -> list[tuple[str, Scan]]:
        """Each upload normalised, with its material; the first bad one refuses them all."""
        return [(upload.material, normalise(upload.data, upload.name)) for upload in uploads]

    def attach(
        self, scanned: list[tuple[str, Scan]], allowed: Collection[str], case_no: str | None
    ) -> Attachment:
        """The pages of one record, checked: each material in ``allowed``, the record's and
        the case's caps, the budget. The same page twice is kept once."""
        refs: list[FileRef] = []
        blobs: list[bytes] = []
        for material, scan in scanned:
            if material not in allowed:
                raise InputError(
                    ErrorCode.FIELD_INVALID,
                    f"files: {material!r} is not a material of this case",
                    zh=f"上传的文件所属材料“{material}”不属于本办件",
                    field="files",
                )
            ref = FileRef(hashlib.sha256(scan.data).digest(), len(scan.data), scan.type, material)
            if any(r.sha256 == ref.sha256 for r in refs):
                continue
            refs.append(ref)
            blobs.append(scan.data)
        self._check_record(refs)
        if case_no is not None:
            held = self._case_refs(case_no)
            check_case_total(held, refs)
        self._check_budget(refs)
        return Attachment(self, tuple(refs), tuple(blobs))

    def _check_record(self, refs: list[FileRef]) -> None:
        total = sum(r.size for r in refs)
        if len(refs) > MAX_FILES_PER_RECORD or total > MAX_RECORD_FILE_BYTES:
            raise InputError(
                ErrorCode.FILE_CASE_TOO_LARGE,
                f"{len(refs)} files of {total} bytes in one step, at most {MAX_FILES_PER_RECORD}"
                f" files and {MAX_RECORD_FILE_BYTES} bytes",
                zh=f"一次最多上传 {MAX_FILES_PER_RECORD} 个文件、共 {MAX_RECORD_FILE_BYTES // MIB} MB",
                field="files",
            )

    def _case_refs(self, case_no: str) -> list[FileRef]:
        return [row.ref for row in files.refs_of_case(self.db, case_no)]

    def _check_budget(self, refs: list[FileRef]) -> None:
        adding = sum(r.size for r in refs if not self.store.files.has(r.hex))
        used = files.held_bytes(self.db)
        if adding and used + adding > self.budget_bytes:
            raise StoreError(
                ErrorCode.FILE_BUDGET,
                f"{used + adding} bytes would pass the budget of {self.budget_bytes} ([files] budget_mb)",
                zh=f"材料文件已用 {used / MIB:.0f} MB，上限 {self.config.budget_mb} MB",
            )

    # -- showing them -----------------------------------------------------------------------

    def of_case(self, case_no: str) -> list[ShownFile]:
        """Every file the records of ``case_no`` list, in record then page order."""
        return [self._shown(row) for row in files.refs_of_case(self.db, case_no)]

    def _shown(self, row: CaseFile) -> ShownFile:
        held = self.store.files.has(row.ref.hex)
        return ShownFile(row.ref, held, row.event, row.record_id, row.origin, row.ts, row.page)

    def file(self, case_no: str, sha: str) -> tuple[Path, FileRef, bool]:
        """The held file ``sha`` of ``case_no`` (:meth:`sync.projection.files.HeldFiles.file`)."""
        return self._held.file(case_no, sha)

    def active(self, sha: str, kind: str) -> bool:
        return self._held.active(sha, kind)

    # -- the budget -------------------------------------------------------------------------

    def used(self) -> tuple[int, int]:
        """Bytes of files held, and the budget."""
        return files.held_bytes(self.db), self.budget_bytes

    def near_budget(self) -> bool:
        used, budget = self.used()
        return used >= BUDGET_WARNING * budget

    # -- housekeeping -----------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove orphans older than :data:`ORPHAN_AGE` (by when the store noted them, else
        by the file's time) and transfers unfinished for :data:`PARTIAL_AGE`; how many went."""
        now = self.clock.now()
        gone = 0
        for sha in files.orphans(self.db, list(self.store.files.shas())):
            stored = files.stored_at(self.db, sha)
            if now - (stored if stored is not None else _mtime(self.store.files.path(sha))) >= ORPHAN_AGE:
                with transaction(self.db):
                    if files.referenced(self.db, sha):
                        continue  # a record came for it meanwhile
                    files.note_removed(self.db, sha)
                    self.store.files.remove(sha)
                gone += 1
        with transaction(self.db):
            for sha in files.orphans(self.db, files.held(self.db)):
                if not self.store.files.has(sha):
                    files.note_removed(self.db, sha)  # bookkeeping of a file no longer there
        for sha, part in list(self.store.files.partials()):
            if now - _mtime(part) >= PARTIAL_AGE:
                self.store.files.drop_partial(sha)
                gone += 1
        return gone

    def retain(self) -> int:
        """At a village: remove each file central holds whose cases have all been closed
        ``[files] keep_days`` days or more; how many went. Elsewhere nothing."""
        if self.tier != "village":
            return 0
        cutoff = self.clock.now() - self.config.keep_days * DAY
        gone = 0
        for sha, cases in files.releasable(self.db):
            rows = [case_queries.case(self.db, case_no) for case_no in cases]
            if all(r is not None and r.closed_at is not None and r.closed_at <= cutoff for r in rows):
                with transaction(self.db):
                    files.note_released(self.db, sha, self.clock.now())
                    self.store.files.remove(sha)
                gone += 1
        return gone


def step_materials(kind: Event, case: CaseRow, item: Item | None, agent: bool) -> frozenset[str]:
    """The materials the pages of step ``kind`` on ``case`` may belong to: the decision's
    document for a decision; for a supplement, the materials of the case's item (the
    release it was taken in under, when held), those it has and those asked for."""
    if kind in (Event.APPROVE, Event.REJECT):
        return frozenset({DECISION_MATERIAL})
    if kind is Event.PART_SUPPLY:  # another city's materials: its own item's, not ours
        return frozenset({PART_SUPPLEMENT_MATERIAL})
    if kind is not Event.SUPPLY:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"files: the step {kind.value} takes no files (supply, approve and reject do)",
            zh=f"“{kind.zh}”不能附带材料文件",
            field="files",
        )
    listed = {m.code for m in materials_for(item, agent)} if item is not None else set()
    asked = set(case.missing.missing) if case.missing is not None else set()
    return frozenset(listed | set(case.materials) | asked)


def carry_pages(source: NodeStore, target: NodeStore, at: int) -> int:
    """Put every page ``source`` (the store a key rotation moved aside) holds whole and its
    records list into ``target`` (the same node's new store), noted held (and at central,
    when ``source`` knew it was); how many were not there yet. A page that does not match
    its hash stays behind (``tongban verify`` of the old directory names it)."""
    carried = 0
    for sha in sorted(source.files.shas()):
        if not files.referenced(source.db, sha) or files.is_held(target.db, sha):
            continue
        if source.files.check(sha) is not None:
            continue
        data = source.files.read(sha)
        target.files.put(data)
        kind = files.refs_of_sha(source.db, sha)[0].ref.type
        with transaction(target.db):
            files.note_held(target.db, sha, len(data), kind, at)
            if files.at_root(source.db, sha):
                files.mark_at_root(target.db, [sha])
        carried += 1
    return carried


def _mtime(path: Path) -> int:
    try:
        return int(path.stat().st_mtime)
    except FileNotFoundError:
        return 0
