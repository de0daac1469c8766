"""The node's file store: the scanned pages of its cases, on disk, by SHA-256.

Each file is kept once, named by the hex SHA-256 of its bytes, under
``<store dir>/files/<sha[:2]>/<sha>``. A file is written atomically — a temporary file in
the same directory, flushed to disk, renamed over the name, the directory flushed — so a
crash leaves either the whole file or none, never a torn one; putting the same bytes again
changes nothing.

A file that arrives in chunks (over a sync link) grows in ``files/partial/<sha>.part``: a
chunk is taken only where the part ends (:meth:`FileStore.append`, ``E_FILE_OFFSET``
otherwise), so a transfer cut off resumes at :meth:`FileStore.partial_offset`. When the
last chunk is in, :meth:`FileStore.finish` checks the length and the SHA-256 and moves the
part to its name; a part whose bytes do not match is dropped (``E_FILE_HASH``).

What the store should hold — which records refer to which files, which files are held —
is the bookkeeping of :mod:`sync.projection.files`; this module keeps only the bytes, and
translates the operating system's errors into the store's (``E_STORE_FULL``,
``E_STORE_IO``).

The pages are residents' papers: the store's directories are made 0700 and its files 0600,
owned by the account the node runs as, whatever the umask.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import ErrorCode, StoreError, error

_SHA = re.compile(r"[0-9a-f]{64}")
PARTIAL = "partial"
DIR_MODE = 0o700
FILE_MODE = 0o600


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """The one boundary where the file system's errors become the store's."""
    try:
        yield
    except OSError as exc:
        code = ErrorCode.STORE_FULL if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ErrorCode.STORE_IO
        raise error(code, f"file store: {what}: {exc.strerror or exc}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_sha(sha: str) -> str:
    """``sha`` if it is a hex SHA-256 (lower case); ``E_FILE_MISSING`` otherwise, since no
    file can have that name."""
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise StoreError(ErrorCode.FILE_MISSING, f"{sha!r} is not a SHA-256 in hex")
    return sha


def beside(database: Path) -> FileStore:
    """The file store of the store whose database is ``database``: ``files`` beside it."""
    return FileStore(Path(database).parent / "files")


class FileStore:
    """The content-addressed files under ``root`` (a node's ``<store dir>/files``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)  # made on the first write: a store opened to read makes nothing

    # -- whole files ---------------------------------------------------------------------

    def path(self, sha: str) -> Path:
        """Where the file of ``sha`` is (or would be) kept."""
        check_sha(sha)
        return self.root / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def size(self, sha: str) -> int:
        """The size of the held file ``sha`` (``E_FILE_MISSING`` when not held)."""
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError as exc:
            raise StoreError(ErrorCode.FILE_MISSING, sha) from exc

    def read(self, sha: str, offset: int = 0, size: int = -1) -> bytes:
        """``size`` bytes (all to the end: -1) of the held file ``sha`` from ``offset``."""
        if offset < 0:
            raise StoreError(ErrorCode.FILE_OFFSET, f"offset {offset}")
        try:
            with self.path(sha).open("rb") as handle:
                handle.seek(offset)
                return handle.read(size)
        except FileNotFoundError as exc:
            raise StoreError(ErrorCode.FILE_MISSING, sha) from exc
        except OSError as exc:
            raise StoreError(ErrorCode.STORE_IO, f"file store: {sha}: {exc.strerror or exc}") from exc

    def _folder(self, path: Path) -> None:
        """Make ``path`` (the store's root or a folder right under it), each 0700."""
        for folder in (self.root, path):
            if not folder.is_dir():
                folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                os.chmod(folder, DIR_MODE)  # mkdir's mode is masked by the umask

    def put(self, data: bytes) -> str:
        """Keep ``data``; its hex SHA-256. Atomic, and idempotent: the same bytes again
        change nothing."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.is_file() and target.stat().st_size == len(data):
            return sha
        with _os_errors(sha):
            self._folder(target.parent)
            self._write_atomic(target, data)
        return sha

    def _write_atomic(self, target: Path, data: bytes) -> None:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def remove(self, sha: str) -> None:
        """Forget the file ``sha`` (nothing when not held)."""
        target = self.path(sha)
        with _os_errors(sha):
            target.unlink(missing_ok=True)

    def shas(self) -> Iterator[str]:
        """The hashes of every whole file held, in no particular order."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.name == PARTIAL or not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if _SHA.fullmatch(entry.name) and entry.name[:2] == folder.name and entry.is_file():
                    yield entry.name

    def used_bytes(self) -> int:
        """The bytes of every whole file and every partial one held."""
        total = sum(self.path(sha).stat().st_size for sha in self.shas())
        return total + sum(p.stat().st_size for p in self._partials())

    # -- files arriving in chunks --------------------------------------------------------

    def _part(self, sha: str) -> Path:
        return self.root / PARTIAL / f"{check_sha(sha)}.part"

    def _partials(self) -> Iterator[Path]:
        folder = self.root / PARTIAL
        return (p for p in folder.iterdir() if p.suffix == ".part") if folder.is_dir() else iter(())

    def partials(self) -> Iterator[tuple[str, Path]]:
        """Every unfinished transfer: its hash and its part file."""
        for part in self._partials():
            if _SHA.fullmatch(part.stem):
                yield part.stem, part

    def partial_offset(self, sha: str) -> int:
        """The bytes of an unfinished transfer of ``sha`` kept so far (0: none)."""
        try:
            return self._part(sha).stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, sha: str, offset: int, chunk: bytes) -> int:
        """Add ``chunk`` at ``offset`` to the transfer of ``sha``; the new offset.

        ``offset`` must be where the part ends (:meth:`partial_offset`): a chunk sent twice
        or out of order is refused with ``E_FILE_OFFSET`` and nothing changes.
        """
        held = self.partial_offset(sha)
        if offset != held:
            raise StoreError(ErrorCode.FILE_OFFSET, f"{sha}: chunk at {offset}, the part held ends at {held}")
        part = self._part(sha)
        with _os_errors(sha):
            self._folder(part.parent)
        with (
            _os_errors(sha),
            os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE), "ab") as handle,
        ):
            handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        return held + len(chunk)

    def finish(self, sha: str, size: int) -> None:
        """Check the finished transfer of ``sha`` (``size`` bytes, hashing to ``sha``) and
        keep it; a part that does not match is dropped (``E_FILE_HASH``)."""
        part = self._part(sha)
        if not part.is_file():
            raise StoreError(ErrorCode.FILE_MISSING, f"{sha}: no transfer under way")
        digest = hashlib.sha256()
        with _os_errors(sha), part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            length = handle.tell()
        if length != size or digest.hexdigest() != sha:
            self.drop_partial(sha)
            raise StoreError(
                ErrorCode.FILE_HASH,
                f"{sha}: {length} bytes received (of {size}) hash to {digest.hexdigest()}",
            )
        target = self.path(sha)
        with _os_errors(sha):
            self._folder(target.parent)
            os.replace(part, target)
            _fsync_dir(target.parent)

    def drop_partial(self, sha: str) -> None:
        """Forget the unfinished transfer of ``sha`` (nothing when there is none)."""
        with _os_errors(sha):
            self._part(sha).unlink(missing_ok=True)

    # -- checks --------------------------------------------------------------------------

    def check(self, sha: str) -> ErrorCode | None:
        """Whether the held file ``sha`` is whole: ``None``, or ``E_FILE_MISSING`` /
        ``E_FILE_HASH``."""
        digest = hashlib.sha256()
        try:
            with self.path(sha).open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except FileNotFoundError:
            return ErrorCode.FILE_MISSING
        except OSError:
            return ErrorCode.FILE_HASH
        return None if digest.hexdigest() == sha else ErrorCode.FILE_HASH
