"""The sync wire protocol, defined once: frames, message types, versions, limits.

Every message on a link is exactly three ZeroMQ frames (the parent's ROUTER adds the
peer's routing id in front, and strips it again)::

    frame 0   protocol id and version     b"tongban-sync/2"
    frame 1   message type, ASCII          b"HELLO", b"BATCH", ...
    frame 2   body, canonical CBOR map     sync.record.codec, capped at MAX_MESSAGE bytes

The child speaks first. Its HELLO carries its highest version in frame 0 and every
version it speaks, best first, in ``versions``; the parent answers WELCOME in the best
version both speak (or ERROR ``E_SYNC_VERSION``), and every later frame 0 of the session
must carry that version.

=========  ========  ==========================================================
type       sender    body
=========  ========  ==========================================================
HELLO      child     versions [uint], node tstr, cert bstr(32), session bstr(16),
                     heads {origin: [seq, id]}, credit uint, arrivals uint
WELCOME    parent    node tstr, session bstr(16), heads {origin: [seq, id]},
                     credit uint, up_from uint, pending uint
BATCH      either    phase "rev" | "news" | "up" | "down", n uint, acked uint,
                     records [bstr], upto uint
ACK        either    phase, n uint, upto uint, heads {origin: [seq, id]},
                     counts {status: uint}, codes {code: uint}
END        either    phase, upto uint
RECEIPT    parent    record bstr | null
BYE        child     {}
ERROR      either    code tstr, detail tstr
WANT       either    phase "files-up" | "files-down", files [[sha256 bstr(32), size
                     uint, offset uint]], at_root [bstr(32)] (v4)
CHUNK      either    phase, n uint, acked uint, sha bstr(32), size uint, offset uint,
                     data bstr (<= CHUNK_BYTES), hash bstr(32): SHA-256 of data (v4)
CACK       either    phase, n uint, offset uint, code tstr ("" or E_FILE_...),
                     stored bool (v4)
=========  ========  ==========================================================

``heads`` maps an origin to its last (seq, record id); ``n`` numbers a phase's batches
from 1; ``acked`` is the highest ACK the sender had received when it sent the batch, so
the receiver can check the credit (``n - acked <= credit``); ``upto`` is the sender's
arrival index scanned through. What each phase carries and in which order is in
:mod:`sync.link.session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.errors import ErrorCode, RecordError, SyncError, TongbanError
from sync.record import codec
from sync.record.outcome import Heads

PROTOCOL = b"tongban-sync"
VERSIONS: tuple[int, ...] = (4, 3, 2, 1)
"""Versions this software speaks, best first. Version 2 adds the news phase: a parent
passes the root's records that reach it during a session to a child still uploading.
Version 3 changes no frame: its parent takes a ``node.status`` that names ``seen``,
``software`` and ``protocol`` (:data:`STATUS_SEEN_FROM`). Version 4 adds the files phase
after the receipt (``WANT``, ``CHUNK``, ``CACK``; :data:`FILES_FROM`)."""

FILES_FROM = 4
"""The first version whose sessions move the cases' files (and whose parent takes a
``node.status`` naming ``files``)."""

STATUS_SEEN_FROM = 3
"""The first version whose parent takes a ``node.status`` naming ``seen``, ``software``
and ``protocol``; a parent of
older software refuses such a record, and a refused record would stop the child's chain
at it, so a child names them only in a session of this version or later."""

MAX_MESSAGE = 4 * 1024 * 1024
"""Cap on one message's body; a bigger one is refused (``E_SYNC_TOO_LARGE``)."""
MAX_TRANSPORT = 2 * MAX_MESSAGE
"""Transport cap (ZMQ_MAXMSGSIZE): beyond it libzmq drops the connection unread."""
BATCH_RECORDS = 256
BATCH_BYTES = 1024 * 1024
"""A batch closes at this many records or bytes (a single record may exceed the bytes)."""
CREDIT = 4
"""Batches a receiver lets a sender have in flight."""
MAX_CREDIT = 64
SESSION_ID_SIZE = 16
CHUNK_BYTES = 64 * 1024
"""A file moves in chunks of this many bytes (the last one shorter)."""
FILE_CREDIT = 4
"""Chunks a receiver lets a sender have in flight."""
MAX_WANTS = 2048
"""Files one WANT names at most (the rest wait for the next session)."""
MAX_AT_ROOT = 20_000
"""Hashes one WANT may say the root holds."""


class Type(StrEnum):
    HELLO = "HELLO"
    WELCOME = "WELCOME"
    BATCH = "BATCH"
    ACK = "ACK"
    END = "END"
    RECEIPT = "RECEIPT"
    BYE = "BYE"
    ERROR = "ERROR"
    WANT = "WANT"
    CHUNK = "CHUNK"
    CACK = "CACK"


class Phase(StrEnum):
    REV = "rev"
    NEWS = "news"
    UP = "up"
    DOWN = "down"
    FILES_UP = "files-up"
    FILES_DOWN = "files-down"


@dataclass(frozen=True)
class Message:
    type: Type
    body: dict[str, Any]
    version: int = VERSIONS[0]


def version_frame(version: int) -> bytes:
    return PROTOCOL + b"/" + str(version).encode()


def encode(message: Message) -> list[bytes]:
    """The three frames of ``message``."""
    return [version_frame(message.version), message.type.value.encode(), codec.encode(message.body)]


def decode(frames: list[bytes]) -> Message:
    """Check and decode three frames; every fault is a :class:`SyncError` with its code."""
    if len(frames) != 3:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"{len(frames)} frames, expected 3")
    head, kind, body = frames
    version = _version_of(head)
    try:
        message_type = Type(kind.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"unknown message type {kind[:20]!r}") from None
    if len(body) > MAX_MESSAGE:
        raise SyncError(ErrorCode.SYNC_TOO_LARGE, f"{len(body)} bytes > {MAX_MESSAGE}")
    try:
        value = codec.decode(body, max_size=MAX_MESSAGE)
    except RecordError as exc:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"{message_type.value} body: {exc.code.value}") from exc
    if not isinstance(value, dict):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"{message_type.value} body is not a map")
    _SHAPES[message_type](value)
    return Message(message_type, value, version)


def _version_of(head: bytes) -> int:
    protocol, _, version = head.partition(b"/")
    if protocol != PROTOCOL or not version.isdigit() or len(version) > 4:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"not a tongban-sync frame: {head[:30]!r}")
    return int(version)


def choose_version(offered: list[int]) -> int:
    """The best version both sides speak (the child's ranking wins ties of support)."""
    for version in offered:
        if version in VERSIONS:
            return version
    raise SyncError(ErrorCode.SYNC_VERSION, f"offered {offered}, this side speaks {list(VERSIONS)}")


# -- body shapes --------------------------------------------------------------------------


def _need(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"field {name!r} is missing or has the wrong type")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"field {name!r} is negative")
    return value


def _exact(body: dict[str, Any], *names: str) -> None:
    extra = set(body) - set(names)
    if extra:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"unknown field(s) {sorted(extra)}")


def read_heads(value: Any) -> Heads:
    """``{origin: [seq, id]}`` checked: text origins, seq >= 1, 32-byte ids."""
    if not isinstance(value, dict) or len(value) > 100_000:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "heads must be a map")
    heads: Heads = {}
    for origin, head in value.items():
        if (
            not isinstance(head, list)
            or len(head) != 2
            or not isinstance(head[0], int)
            or isinstance(head[0], bool)
            or head[0] < 1
            or not isinstance(head[1], bytes)
            or len(head[1]) != 32
        ):
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"head of {origin!r} is not [seq, id]")
        heads[origin] = (head[0], head[1])
    return heads


def write_heads(heads: Heads) -> dict[str, list[Any]]:
    return {origin: [seq, rid] for origin, (seq, rid) in heads.items()}


def _phase(body: dict[str, Any]) -> None:
    try:
        Phase(_need(body, "phase", str))
    except ValueError:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "unknown phase") from None


def _hello(body: dict[str, Any]) -> None:
    _exact(body, "versions", "node", "cert", "session", "heads", "credit", "arrivals")
    versions = _need(body, "versions", list)
    if not versions or len(versions) > 16 or not all(type(v) is int for v in versions):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "versions must be a short list of integers")
    _need(body, "node", str)
    if len(_need(body, "cert", bytes)) != 32 or len(_need(body, "session", bytes)) != SESSION_ID_SIZE:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "cert or session id has the wrong length")
    read_heads(body.get("heads"))
    _credit(body)
    _need(body, "arrivals", int)


def _credit(body: dict[str, Any]) -> None:
    if not 1 <= _need(body, "credit", int) <= MAX_CREDIT:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"credit must be 1..{MAX_CREDIT}")


def _welcome(body: dict[str, Any]) -> None:
    _exact(body, "node", "session", "heads", "credit", "up_from", "pending")
    _need(body, "node", str)
    if len(_need(body, "session", bytes)) != SESSION_ID_SIZE:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "session id has the wrong length")
    read_heads(body.get("heads"))
    _credit(body)
    _need(body, "up_from", int)
    _need(body, "pending", int)


def _batch(body: dict[str, Any]) -> None:
    _exact(body, "phase", "n", "acked", "records", "upto")
    _phase(body)
    if _need(body, "n", int) < 1:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "batches are numbered from 1")
    _need(body, "acked", int)
    records = _need(body, "records", list)
    if not records or len(records) > BATCH_RECORDS or not all(isinstance(r, bytes) for r in records):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"a batch holds 1..{BATCH_RECORDS} byte strings")
    _need(body, "upto", int)


def _counts(value: Any, name: str) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in value.items()
    ):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"{name} must map text to counts")


def _ack(body: dict[str, Any]) -> None:
    _exact(body, "phase", "n", "upto", "heads", "counts", "codes")
    _phase(body)
    _need(body, "n", int)
    _need(body, "upto", int)
    read_heads(body.get("heads"))
    _counts(body.get("counts"), "counts")
    _counts(body.get("codes"), "codes")


def _end(body: dict[str, Any]) -> None:
    _exact(body, "phase", "upto")
    _phase(body)
    _need(body, "upto", int)


def _receipt(body: dict[str, Any]) -> None:
    _exact(body, "record")
    if body.get("record") is not None and not isinstance(body.get("record"), bytes):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "record must be bytes or null")
    if "record" not in body:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "field 'record' is missing")


def _bye(body: dict[str, Any]) -> None:
    _exact(body)


def _error(body: dict[str, Any]) -> None:
    _exact(body, "code", "detail")
    _need(body, "code", str)
    _need(body, "detail", str)


def _sha(body: dict[str, Any], name: str) -> None:
    if len(_need(body, name, bytes)) != 32:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"field {name!r} is not a SHA-256")


def _files_phase(body: dict[str, Any]) -> None:
    _phase(body)
    if body["phase"] not in (Phase.FILES_UP.value, Phase.FILES_DOWN.value):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "not a files phase")


def _want(body: dict[str, Any]) -> None:
    _exact(body, "phase", "files", "at_root")
    _files_phase(body)
    files = _need(body, "files", list)
    if len(files) > MAX_WANTS or not all(
        isinstance(f, list)
        and len(f) == 3
        and isinstance(f[0], bytes)
        and len(f[0]) == 32
        and all(type(v) is int and v >= 0 for v in f[1:])
        for f in files
    ):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"files must be at most {MAX_WANTS} [sha256, size, offset]")
    at_root = _need(body, "at_root", list)
    if len(at_root) > MAX_AT_ROOT or not all(isinstance(s, bytes) and len(s) == 32 for s in at_root):
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"at_root must be at most {MAX_AT_ROOT} SHA-256")


def _chunk(body: dict[str, Any]) -> None:
    _exact(body, "phase", "n", "acked", "sha", "size", "offset", "data", "hash")
    _files_phase(body)
    if _need(body, "n", int) < 1:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, "chunks are numbered from 1")
    _need(body, "acked", int)
    _sha(body, "sha")
    _need(body, "size", int)
    _need(body, "offset", int)
    if len(_need(body, "data", bytes)) > CHUNK_BYTES:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"a chunk holds at most {CHUNK_BYTES} bytes")
    _sha(body, "hash")


def _cack(body: dict[str, Any]) -> None:
    _exact(body, "phase", "n", "offset", "code", "stored")
    _files_phase(body)
    _need(body, "n", int)
    _need(body, "offset", int)
    _need(body, "code", str)
    _need(body, "stored", bool)


_SHAPES = {
    Type.HELLO: _hello,
    Type.WELCOME: _welcome,
    Type.BATCH: _batch,
    Type.ACK: _ack,
    Type.END: _end,
    Type.RECEIPT: _receipt,
    Type.BYE: _bye,
    Type.ERROR: _error,
    Type.WANT: _want,
    Type.CHUNK: _chunk,
    Type.CACK: _cack,
}


def error_message(exc: TongbanError, version: int = VERSIONS[0]) -> Message:
    return Message(Type.ERROR, {"code": exc.code.value, "detail": exc.detail[:500]}, version)


def code_of(text: str) -> ErrorCode:
    """The :class:`ErrorCode` an ERROR message names (unknown codes read as protocol errors)."""
    try:
        return ErrorCode(text)
    except ValueError:
        return ErrorCode.SYNC_PROTOCOL
