"""The files of a department's cases at central: given out in chunks, taken in in chunks.

Central holds every file of the city (the sync links bring them up with their records). A
department reads the scans of the cases it decides and hands central the documents of its
decisions, both over RPC (:mod:`central.department_link`), in chunks of at most
:data:`central.department.contract.MAX_CHUNK` bytes, each with the SHA-256 of its bytes.

``chunk`` (``file_chunk``)
    a part of a file central holds, for a department whose broker user asks and that
    decides a case one of whose records lists the file; any other file is ``E_FILE_SCOPE``
    (whether central holds it or not: a department learns nothing of other cases), one
    central does not hold yet ``E_FILE_MISSING`` (ask again later).
``receive`` (``submit_file``)
    a part of a file a decision (``approve`` / ``reject``) of the department lists, in a
    record central holds; a file no record lists is ``E_FILE_UNREFERENCED``, one listed
    only by others' records ``E_FILE_SCOPE``. The chunk must hash to its digest
    (``E_FILE_HASH``: nothing kept) and start where central's partial copy ends
    (``E_FILE_OFFSET``, with that offset: resume there); the last one completes the file,
    which is checked against its SHA-256 (``E_FILE_HASH``: the partial copy is dropped)
    before it takes its name in central's file store and is noted held.

The decision and its document may reach central in either order: a decision whose document
has not arrived is stored and its file shows as not held yet; a document that arrives before
its decision is refused (``E_FILE_UNREFERENCED``) and the department sends it again once the
record is in. Either way central never keeps a file nothing refers to.
"""

from __future__ import annotations

from central.department.contract import MAX_CHUNK, PARTIAL, REFUSED, STORED, Chunk, FileAnswer, decode_chunk
from central.store import CentralStore
from core.admin import is_department
from core.cases import Event
from core.errors import AuthorityError, ErrorCode, TongbanError, error
from sync.projection import case_queries, files
from sync.projection.files import CaseFile
from sync.record import trust
from sync.record.db import transaction
from sync.record.filestore import check_sha

DECISION_EVENTS = frozenset({Event.APPROVE.value, Event.REJECT.value})


def _department(store: CentralStore, broker_user: str | None) -> str:
    """The department whose broker user called (``E_DEPARTMENT_USER`` for any other)."""
    if broker_user is None or not is_department(broker_user) or not trust.certificates(store.db, broker_user):
        raise AuthorityError(ErrorCode.DEPARTMENT_USER, f"{broker_user!r} is not an enrolled department")
    return broker_user


def _scope(sha: str, department: str) -> TongbanError:
    return error(ErrorCode.FILE_SCOPE, f"{sha} is not a file of a case {department} decides")


def chunk(store: CentralStore, broker_user: str | None, sha: object, offset: object, size: object) -> Chunk:
    """``file_chunk`` (see the module docstring); a refusal is a :class:`Chunk` with a code."""
    text = str(sha)
    at = offset if isinstance(offset, int) and not isinstance(offset, bool) else -1
    try:
        department = _department(store, broker_user)
        check_sha(text)
        listings = files.refs_of_sha(store.db, text)
        if not any(_decides(store, row, department) for row in listings):
            raise _scope(text, department)
        if not store.files.has(text):
            raise error(ErrorCode.FILE_MISSING, f"{text}: not at central yet", zh="市中心尚未收到该文件")
        total = store.files.size(text)
        if at < 0 or at > total or not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise error(ErrorCode.FILE_OFFSET, f"{text}: {size!r} bytes at {offset!r} of {total}")
        return Chunk(text, at, store.files.read(text, at, min(size, MAX_CHUNK)), total)
    except TongbanError as exc:
        return Chunk(text, max(at, 0), b"", 0, exc.code.value, exc.detail)


def _decides(store: CentralStore, row: CaseFile, department: str) -> bool:
    case = case_queries.case(store.db, row.case_no)
    return case is not None and case.decider == department


def receive(
    store: CentralStore, broker_user: str | None, sha: object, offset: object, data: object, digest: object
) -> FileAnswer:
    """``submit_file`` (see the module docstring)."""
    text = str(sha)
    try:
        department = _department(store, broker_user)
        check_sha(text)
        part = decode_chunk(data, digest)
        return _take(store, department, text, offset, part)
    except TongbanError as exc:
        held = store.files.partial_offset(text) if exc.code is ErrorCode.FILE_OFFSET else 0
        return FileAnswer(text, REFUSED, held, exc.code.value, exc.detail)


def _take(store: CentralStore, department: str, sha: str, offset: object, part: bytes) -> FileAnswer:
    listings = files.refs_of_sha(store.db, sha)
    own = [r for r in listings if r.origin == department and r.event in DECISION_EVENTS]
    if not own:
        if listings:
            raise _scope(sha, department)
        raise error(ErrorCode.FILE_UNREFERENCED, f"{sha}: no record central holds lists it")
    ref = own[0].ref
    if store.files.has(sha):
        _note_held(store, own[0])
        return FileAnswer(sha, STORED, ref.size)
    held = store.files.partial_offset(sha)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset != held:
        raise error(ErrorCode.FILE_OFFSET, f"{sha}: a chunk at {offset!r}, central's copy ends at {held}")
    if not part or held + len(part) > ref.size:
        raise error(ErrorCode.FILE_OFFSET, f"{sha}: {len(part)} bytes at {held} of {ref.size}")
    now_at = store.files.append(sha, held, part)
    if now_at < ref.size:
        return FileAnswer(sha, PARTIAL, now_at)
    store.files.finish(sha, ref.size)  # E_FILE_HASH drops the partial copy
    _note_held(store, own[0])
    return FileAnswer(sha, STORED, ref.size)


def _note_held(store: CentralStore, row: CaseFile) -> None:
    with transaction(store.db):
        files.note_held(store.db, row.ref.hex, row.ref.size, row.ref.type, store.log.clock.now())
