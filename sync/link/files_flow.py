"""Files over a link in chunks under credit, shared by both sides of the files phase.

The receiver names what it wants (``WANT``: each file's hash, size and the offset of the
part it kept from a transfer that was cut), the sender streams :data:`CHUNK_BYTES` chunks
from there with at most ``credit`` unacknowledged (as :mod:`sync.link.flow` does batches).
Each chunk carries its SHA-256; the receiver checks it, appends the chunk to the file's
part and acknowledges it (``CACK``) with the part's new offset — the part is on disk
before the ACK goes back, so a transfer killed anywhere resumes at the chunk it reached.
A whole file is checked against its hash and committed to the file store atomically.

A refused chunk (a bad hash, ``E_FILE_HASH``; an offset that is not the part's,
``E_FILE_OFFSET``) is dropped and its ACK names the code and the part's offset; the sender
goes on from there (a few times per file at most). Chunks of that file already in flight
when the sender learned of it are dropped quietly: they are not counted against it.

The storage each side needs is behind :class:`FileSource` and :class:`FileSink`
(:mod:`sync.link.file_link`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import ErrorCode, SyncError, TongbanError, error
from sync.link.protocol import CHUNK_BYTES, FILE_CREDIT, Message, Phase, Type

RETRIES = 3
"""Times a sender starts a file again after a refused chunk before it gives the file up
for this session."""
UNASKED_FILES = 8
UNASKED_BYTES = 32 * 1024 * 1024
"""Files (and bytes) a receiver takes in one session beyond what it asked for; more ends the
session (``E_FILE_FLOOD``)."""
REFUSED_CHUNKS = 64
"""Chunks a receiver refuses in one session before it ends it (``E_FILE_FLOOD``)."""


@dataclass(frozen=True)
class Want:
    """A file the receiver asks for: its hash (hex), size and the offset to send from."""

    sha: str
    size: int
    offset: int = 0

    def wire(self) -> list[Any]:
        return [bytes.fromhex(self.sha), self.size, self.offset]


def read_wants(files: list[list[Any]]) -> list[Want]:
    return [Want(bytes(sha).hex(), size, offset) for sha, size, offset in files]


def want_message(phase: Phase, wants: list[Want], at_root: list[str], version: int) -> Message:
    body = {
        "phase": phase.value,
        "files": [w.wire() for w in wants],
        "at_root": [bytes.fromhex(s) for s in at_root],
    }
    return Message(Type.WANT, body, version)


class FileSource(Protocol):
    def read_chunk(self, sha: str, offset: int, size: int) -> bytes | None:
        """``size`` bytes of the held file ``sha`` from ``offset``; None: not held."""


class FileSink(Protocol):
    def admit(self, sha: str, size: int) -> str | None:
        """The type of a file nobody asked for if it may be taken; else raises the refusal
        (``E_FILE_UNREFERENCED``, ``E_FILE_SCOPE``, ``E_FILE_TOO_LARGE``)."""

    def type_of(self, sha: str) -> str: ...
    def held(self, sha: str) -> bool: ...
    def offset(self, sha: str) -> int: ...
    def append(self, sha: str, offset: int, data: bytes) -> int: ...
    def finish(self, sha: str, size: int, type_: str) -> None:
        """Check the whole file against its hash and commit it (raises ``E_FILE_HASH``)."""

    def refused(self, codes: dict[str, int]) -> None:
        """Count refusals against the peer."""


class FilePeer(FileSource, FileSink, Protocol):
    """A store's files for one session with one peer (:class:`sync.link.file_link.FileLink`)."""

    def wants(self) -> list[Want]:
        """What this side lacks of its scope's files, with the offsets of kept parts."""

    def at_root(self, is_root: bool) -> list[str]:
        """The scope's files the root holds (hex)."""

    def mark_at_root(self, shas: list[str]) -> None: ...
    def servable(self, wants: list[Want]) -> list[Want]:
        """Of what the peer asks for, what it may have (the rest refused, counted)."""


@dataclass
class _Outgoing:
    sha: str
    size: int
    offset: int
    epoch: int = 0
    retries: int = 0


class FileSender:
    """Chunks of the wanted files under credit; what was sent, what was acknowledged."""

    def __init__(
        self, phase: Phase, wants: list[Want], source: FileSource, version: int, credit: int = FILE_CREDIT
    ) -> None:
        self.phase = phase
        self.source = source
        self.version = version
        self.credit = credit
        self.queue = [_Outgoing(w.sha, w.size, w.offset) for w in wants if w.offset <= w.size]
        self.sent = 0
        self.acked = 0
        self.in_flight: dict[int, tuple[_Outgoing, int, int]] = {}  # n → file, epoch, bytes
        self.bytes_sent = 0
        self.stored = 0  # files the receiver said it committed

    def fill(self) -> list[Message]:
        out: list[Message] = []
        while self.queue and self.sent - self.acked < self.credit:
            item = self.queue[0]
            data = self.source.read_chunk(item.sha, item.offset, min(CHUNK_BYTES, item.size - item.offset))
            if data is None:  # not held (any more): the receiver asks again another time
                self.queue.pop(0)
                continue
            self.sent += 1
            body = {
                "phase": self.phase.value,
                "n": self.sent,
                "acked": self.acked,
                "sha": bytes.fromhex(item.sha),
                "size": item.size,
                "offset": item.offset,
                "data": data,
                "hash": hashlib.sha256(data).digest(),
            }
            self.in_flight[self.sent] = (item, item.epoch, len(data))
            self.bytes_sent += len(data)
            item.offset += len(data)
            if item.offset >= item.size:
                self.queue.pop(0)
            out.append(Message(Type.CHUNK, body, self.version))
        return out

    def on_ack(self, body: dict[str, Any]) -> None:
        if body["n"] != self.acked + 1 or body["n"] > self.sent:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"CACK {body['n']} after {self.acked} of {self.sent}")
        self.acked += 1
        item, epoch, _ = self.in_flight.pop(self.acked)
        self.stored += bool(body["stored"])
        if not body["code"] or epoch != item.epoch or item.retries >= RETRIES:
            return
        # Refused: start the file again where the receiver's part ends.
        item.epoch += 1
        item.retries += 1
        item.offset = min(body["offset"], item.size)
        if item not in self.queue:
            self.queue.insert(0, item)

    @property
    def finished(self) -> bool:
        return not self.queue and self.acked == self.sent


class FileReceiver:
    """Checks and keeps incoming chunks: order, credit, each chunk's hash, the part's offset,
    each whole file's hash; refusals counted and bounded."""

    def __init__(
        self, phase: Phase, wants: list[Want], sink: FileSink, version: int, credit: int = FILE_CREDIT
    ):
        self.phase = phase
        self.sink = sink
        self.version = version
        self.credit = credit
        self.wanted = {w.sha: w.size for w in wants}
        self.received = 0
        self.unasked: dict[str, int] = {}
        self.refusals: Counter[str] = Counter()
        self.refused_at: dict[str, int] = {}  # sha → n of its last refused chunk
        self.bytes_received = 0
        self.stored = 0
        self.types: dict[str, str] = {}

    def take(self, body: dict[str, Any]) -> Message:
        """Check and keep one CHUNK; its CACK."""
        n, acked = body["n"], body["acked"]
        if n != self.received + 1:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"chunk {n} after {self.received}")
        if acked > self.received or n - acked > self.credit:
            raise SyncError(
                ErrorCode.SYNC_CREDIT, f"chunk {n} with {acked} acknowledged, credit {self.credit}"
            )
        self.received = n
        self.bytes_received += len(body["data"])
        sha = bytes(body["sha"]).hex()
        try:
            code, offset, stored = self._keep(sha, body)
        except TongbanError as exc:
            if isinstance(exc, SyncError) and exc.code is ErrorCode.FILE_FLOOD:
                raise
            code, offset, stored = exc.code.value, 0, False
        if code:
            self._refused(sha, n, acked, code)
        reply = {"phase": self.phase.value, "n": n, "offset": offset, "code": code, "stored": stored}
        return Message(Type.CACK, reply, self.version)

    def _keep(self, sha: str, body: dict[str, Any]) -> tuple[str, int, bool]:
        size = self._size(sha, body["size"])
        if self.sink.held(sha):
            return "", size, False
        data, offset = bytes(body["data"]), body["offset"]
        held = self.sink.offset(sha)
        if hashlib.sha256(data).digest() != body["hash"]:
            return ErrorCode.FILE_HASH.value, held, False
        if offset != held or offset + len(data) > size or (not data and size):
            return ErrorCode.FILE_OFFSET.value, held, False
        reached = self.sink.append(sha, offset, data)
        if reached < size:
            return "", reached, False
        try:
            self.sink.finish(sha, size, self.types.get(sha) or self.sink.type_of(sha))
        except TongbanError as exc:
            if exc.code is not ErrorCode.FILE_HASH:
                raise
            return exc.code.value, 0, False
        self.stored += 1
        return "", size, True

    def _size(self, sha: str, size: int) -> int:
        if sha in self.wanted:
            if size != self.wanted[sha]:
                raise error(ErrorCode.FILE_OFFSET, f"{sha}: {size} bytes, {self.wanted[sha]} asked for")
            return size
        if sha not in self.unasked:
            type_ = self.sink.admit(sha, size)  # raises the refusal
            if len(self.unasked) >= UNASKED_FILES or sum(self.unasked.values()) + size > UNASKED_BYTES:
                raise SyncError(ErrorCode.FILE_FLOOD, f"more than {UNASKED_FILES} files not asked for")
            self.unasked[sha] = size
            if type_:
                self.types[sha] = type_
        return self.unasked[sha]

    def _refused(self, sha: str, n: int, acked: int, code: str) -> None:
        """Count a refused chunk — unless it was in flight before the sender heard of the
        file's last refusal (it is dropped, not held against the sender)."""
        before = self.refused_at.get(sha)
        self.refused_at[sha] = n
        if before is not None and acked < before and code == ErrorCode.FILE_OFFSET.value:
            return
        self.refusals[code] += 1
        self.sink.refused({code: 1})
        if sum(self.refusals.values()) > REFUSED_CHUNKS:
            raise SyncError(
                ErrorCode.FILE_FLOOD, f"{sum(self.refusals.values())} chunks refused in this session"
            )
