"""File references: how a signed record names the scanned pages of a case.

A record that brings pages (an intake, a supplement, a decision) lists each file by its
SHA-256, size, type and the material it is a page of, in the order the clerk captured the
pages. The signature covers the list, so it covers the scans: a file whose bytes do not
hash to its ref is not the page that was signed.

A file ref in a record body (canonical CBOR, text keys)::

    {"sha256": bstr(32), "size": uint, "type": tstr, "material": tstr}

``type`` is one of :data:`FILE_TYPES`; ``material`` is a material code of the case's item
(the agent's authorization included), :data:`DECISION_MATERIAL` for the document of a
decision, or :data:`PART_SUPPLEMENT_MATERIAL` for the pages of a supplement to another
city's part. A record holds at most :data:`MAX_FILES_PER_RECORD` refs, no hash twice, each file
at most :data:`MAX_FILE_BYTES` and all of them together at most
:data:`MAX_RECORD_FILE_BYTES`; the node checks a case's whole set against
:data:`MAX_CASE_FILE_BYTES` before it appends (:func:`check_case_total`).

This module does no I/O: the bytes are stored by :mod:`sync.record.filestore`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import ErrorCode, InputError, RecordError

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"
FILE_TYPES = frozenset({JPEG, PNG, PDF})
"""The types a file of a case may have (judged from its bytes, :mod:`core.scans`)."""

DECISION_MATERIAL = "decision"
"""The material of a decision's document (a scanned decision letter)."""
PART_SUPPLEMENT_MATERIAL = "part_supplement"
"""The material of the pages our window takes in for another city's part of a joint
application (多地联办, ``part_supply``): what that city asked for, of its own item."""

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_RECORD_FILE_BYTES = 40 * 1024 * 1024
MAX_CASE_FILE_BYTES = 60 * 1024 * 1024
MAX_FILES_PER_RECORD = 50
MAX_MATERIAL = 64
_REF_KEYS = frozenset({"sha256", "size", "type", "material"})


@dataclass(frozen=True)
class FileRef:
    """One file of a record: its SHA-256 (32 bytes), size, type and material."""

    sha256: bytes
    size: int
    type: str
    material: str

    @property
    def hex(self) -> str:
        """The SHA-256 in hex: the file's name in the file store."""
        return self.sha256.hex()

    def to_body(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "type": self.type, "material": self.material}


def _refuse(detail: str) -> RecordError:
    return RecordError(ErrorCode.SCHEMA, f"files: {detail}")


def _ref(value: object, index: int) -> FileRef:
    if not isinstance(value, dict) or set(value) != _REF_KEYS:
        raise _refuse(f"ref {index} must have exactly sha256, size, type, material")
    sha, size, kind, material = value["sha256"], value["size"], value["type"], value["material"]
    if not isinstance(sha, bytes) or len(sha) != 32:
        raise _refuse(f"ref {index}: sha256 must be 32 bytes")
    if type(size) is not int or not 0 < size <= MAX_FILE_BYTES:
        raise _refuse(f"ref {index}: size must be 1 to {MAX_FILE_BYTES} bytes")
    if not isinstance(kind, str) or kind not in FILE_TYPES:
        raise _refuse(f"ref {index}: type {kind!r} is not one of {', '.join(sorted(FILE_TYPES))}")
    if not isinstance(material, str) or not material or len(material) > MAX_MATERIAL:
        raise _refuse(f"ref {index}: material must be a material code")
    return FileRef(sha, size, kind, material)


def check_refs(refs: tuple[FileRef, ...]) -> tuple[FileRef, ...]:
    """``refs`` if they fit one record: at most :data:`MAX_FILES_PER_RECORD`, no hash
    twice, the sum at most :data:`MAX_RECORD_FILE_BYTES` (``E_SCHEMA`` otherwise)."""
    if len(refs) > MAX_FILES_PER_RECORD:
        raise _refuse(f"{len(refs)} files, at most {MAX_FILES_PER_RECORD} in one record")
    if len({r.sha256 for r in refs}) != len(refs):
        raise _refuse("the same file is listed twice")
    total = sum(r.size for r in refs)
    if total > MAX_RECORD_FILE_BYTES:
        raise _refuse(f"{total} bytes of files, at most {MAX_RECORD_FILE_BYTES} in one record")
    return refs


def refs_to_body(refs: Iterable[FileRef]) -> list[dict[str, Any]]:
    """The ``files`` value of a record body, in page order."""
    return [ref.to_body() for ref in refs]


def refs_from_body(value: object) -> tuple[FileRef, ...]:
    """The refs of a body's ``files`` value, checked strictly (``E_SCHEMA``): a non-empty
    list (an empty one is left out of the body), each ref well formed, the record's caps."""
    if not isinstance(value, list) or not value:
        raise _refuse("must be a non-empty list when present")
    if len(value) > MAX_FILES_PER_RECORD:
        raise _refuse(f"{len(value)} files, at most {MAX_FILES_PER_RECORD} in one record")
    return check_refs(tuple(_ref(v, i) for i, v in enumerate(value)))


def check_case_total(held: Iterable[FileRef], adding: Iterable[FileRef]) -> None:
    """Refuse (``E_FILE_CASE_TOO_LARGE``) adding ``adding`` to a case whose records hold
    ``held`` when the case's distinct files would pass :data:`MAX_CASE_FILE_BYTES`."""
    sizes = {r.sha256: r.size for r in held}
    sizes.update((r.sha256, r.size) for r in adding)
    total = sum(sizes.values())
    if total > MAX_CASE_FILE_BYTES:
        mib = MAX_CASE_FILE_BYTES // (1024 * 1024)
        raise InputError(
            ErrorCode.FILE_CASE_TOO_LARGE,
            f"{total} bytes of files in the case, at most {MAX_CASE_FILE_BYTES}",
            zh=f"本办件材料文件共 {total / 1048576:.1f} MB，上限 {mib} MB",
        )
