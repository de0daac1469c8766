"""An in-memory side of the files phase for the pure session tests (a
:class:`sync.link.files_flow.FilePeer`): files held, parts kept, what records list."""

from __future__ import annotations

import hashlib
from collections import Counter

from core.errors import ErrorCode, SyncError, error
from sync.link.files_flow import Want


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeFiles:
    """``listed``: hash → the scope the listing record's case lies in (True: within)."""

    def __init__(
        self,
        held: list[bytes] | None = None,
        listed: dict[str, bool] | None = None,
        root: list[str] | None = None,
    ) -> None:
        self.blobs = {sha_of(b): b for b in held or []}
        self.listed = dict(listed or {})
        self.sizes: dict[str, int] = {}
        self.parts: dict[str, bytes] = {}
        self.root = list(root or [])
        self.marked: list[str] = []
        self.counted: Counter[str] = Counter()
        self.reads: list[tuple[str, int]] = []

    def expect(self, data: bytes, within: bool = True) -> str:
        """A record held lists ``data``'s file (of a case within the scope or not)."""
        sha = sha_of(data)
        self.listed[sha] = within
        self.sizes[sha] = len(data)
        return sha

    # -- FilePeer ----------------------------------------------------------------------

    def wants(self) -> list[Want]:
        return [
            Want(sha, self.sizes[sha], len(self.parts.get(sha, b"")))
            for sha, within in sorted(self.listed.items())
            if within and sha not in self.blobs and sha in self.sizes
        ]

    def at_root(self, is_root: bool) -> list[str]:
        return self.root

    def mark_at_root(self, shas: list[str]) -> None:
        self.marked.extend(shas)

    def servable(self, wants: list[Want]) -> list[Want]:
        return [w for w in wants if w.sha in self.blobs]

    def read_chunk(self, sha: str, offset: int, size: int) -> bytes | None:
        if sha not in self.blobs:
            return None
        self.reads.append((sha, offset))
        return self.blobs[sha][offset : offset + size]

    def admit(self, sha: str, size: int) -> str | None:
        if sha not in self.listed:
            raise SyncError(ErrorCode.FILE_UNREFERENCED, sha)
        if not self.listed[sha]:
            raise error(ErrorCode.FILE_SCOPE, sha)
        return "image/jpeg"

    def type_of(self, sha: str) -> str:
        return "image/jpeg"

    def held(self, sha: str) -> bool:
        return sha in self.blobs

    def offset(self, sha: str) -> int:
        return len(self.parts.get(sha, b""))

    def append(self, sha: str, offset: int, data: bytes) -> int:
        assert offset == self.offset(sha)
        self.parts[sha] = self.parts.get(sha, b"") + data
        return len(self.parts[sha])

    def finish(self, sha: str, size: int, type_: str) -> None:
        data = self.parts.pop(sha)
        if len(data) != size or sha_of(data) != sha:
            raise error(ErrorCode.FILE_HASH, sha)
        self.blobs[sha] = data

    def refused(self, codes: dict[str, int]) -> None:
        self.counted.update(codes)
