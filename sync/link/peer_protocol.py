"""The wire protocol of the link between two cities' centrals, defined once.

A central pushes what it owes a peer city over a CURVE DEALER to the peer central's ROUTER
(docs/federation.md, "The link between centrals"). Every message is three ZeroMQ frames
(the ROUTER adds the routing id in front)::

    frame 0   protocol id and version     b"tongban-peer/1"
    frame 1   message type, ASCII          b"HELLO", b"BATCH", ...
    frame 2   body, canonical CBOR map     sync.record.codec, capped at MAX_MESSAGE bytes

=========  ========  ==========================================================
type       sender    body
=========  ========  ==========================================================
HELLO      pusher    v uint, net tstr (from), to tstr, serial uint (the pusher's
                     newest cross-certification of the receiver)
WELCOME    receiver  v uint, net tstr, have uint (the highest seq received from
                     the pusher), credit uint, partials [[sha tstr, offset uint]]
REFUSE     receiver  code tstr, detail tstr (the session ends)
BATCH      pusher    n uint, acked uint, items [item]
ACK        receiver  n uint, have uint, codes {code: uint}
BYE        pusher    {}
=========  ========  ==========================================================

An item is a message ``{seq, data}`` (``data`` at most :data:`MAX_DATA` bytes) or a file's
chunk ``{seq, sha, size, offset, chunk}`` (``sha`` the file's hex SHA-256, ``chunk`` at
most :data:`CHUNK_BYTES`). One sequence numbers both kinds per pair of cities. ``n``
numbers the session's batches from 1; ``acked`` is the highest ACK the pusher had when it
sent the batch (``n - acked <= credit``); ``have`` in an ACK is the receiver's high-water
mark once the batch's transaction committed; ``codes`` counts the items it refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.errors import ErrorCode, RecordError, SyncError, TongbanError
from sync.record import codec

PROTOCOL = b"tongban-peer"
VERSION = 1
MAX_DATA = 1024 * 1024
"""The largest message a link carries (bytes)."""
CHUNK_BYTES = 64 * 1024
"""A file crosses in chunks of this many bytes (the last one shorter)."""
BATCH_BYTES = 1024 * 1024
"""A batch closes at this many bytes of data (one message may reach :data:`MAX_DATA`)."""
BATCH_ITEMS = 256
MAX_MESSAGE = 4 * 1024 * 1024
MAX_TRANSPORT = 2 * MAX_MESSAGE
"""Transport cap (ZMQ_MAXMSGSIZE): beyond it libzmq drops the connection unread."""
CREDIT = 4
"""Batches the receiver lets the pusher have in flight."""
MAX_CREDIT = 64
MAX_PARTIALS = 1024
"""Partly received files a WELCOME names at most."""


class Type(StrEnum):
    HELLO = "HELLO"
    WELCOME = "WELCOME"
    REFUSE = "REFUSE"
    BATCH = "BATCH"
    ACK = "ACK"
    BYE = "BYE"


@dataclass(frozen=True)
class Message:
    type: Type
    body: dict[str, Any]


def encode(message: Message) -> list[bytes]:
    """The three frames of ``message``."""
    head = PROTOCOL + b"/" + str(VERSION).encode()
    return [head, message.type.value.encode(), codec.encode(message.body)]


def decode(frames: list[bytes]) -> Message:
    """Check and decode three frames; every fault is a :class:`SyncError` with its code."""
    if len(frames) != 3:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"{len(frames)} frames, expected 3")
    head, kind, body = frames
    protocol, _, version = head.partition(b"/")
    if protocol != PROTOCOL or not version.isdigit() or len(version) > 4:
        raise SyncError(ErrorCode.SYNC_PROTOCOL, f"not a tongban-peer frame: {head[:30]!r}")
    if int(version) != VERSION:
        raise SyncError(ErrorCode.SYNC_VERSION, f"version {int(version)}, this side speaks {VERSION}")
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
    return Message(message_type, value)


def refuse_message(exc: TongbanError) -> Message:
    return Message(Type.REFUSE, {"code": exc.code.value, "detail": exc.detail[:500]})


def code_of(text: str) -> ErrorCode:
    """The :class:`ErrorCode` a REFUSE names (an unknown one reads as a protocol error)."""
    try:
        return ErrorCode(text)
    except ValueError:
        return ErrorCode.SYNC_PROTOCOL


# -- body shapes --------------------------------------------------------------------------


def _fault(detail: str) -> SyncError:
    return SyncError(ErrorCode.SYNC_PROTOCOL, detail)


def _exact(body: dict[str, Any], *names: str) -> None:
    if set(body) != set(names):
        raise _fault(f"fields must be exactly {', '.join(sorted(names))}")


def _uint(body: dict[str, Any], name: str) -> int:
    value = body[name]
    if type(value) is not int or value < 0:
        raise _fault(f"field {name!r} must be a non-negative integer")
    return value


def _text(body: dict[str, Any], name: str, longest: int = 200) -> str:
    value = body[name]
    if not isinstance(value, str) or len(value) > longest:
        raise _fault(f"field {name!r} must be text of at most {longest} characters")
    return value


def is_sha(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _hello(body: dict[str, Any]) -> None:
    _exact(body, "v", "net", "to", "serial")
    _uint(body, "v")
    _uint(body, "serial")
    if not _text(body, "net") or not _text(body, "to"):
        raise _fault("net and to name cities")


def _welcome(body: dict[str, Any]) -> None:
    _exact(body, "v", "net", "have", "credit", "partials")
    _uint(body, "v")
    _text(body, "net")
    _uint(body, "have")
    if not 1 <= _uint(body, "credit") <= MAX_CREDIT:
        raise _fault(f"credit must be 1..{MAX_CREDIT}")
    partials = body["partials"]
    if not isinstance(partials, list) or len(partials) > MAX_PARTIALS:
        raise _fault(f"partials must be a list of at most {MAX_PARTIALS}")
    for entry in partials:
        if not (isinstance(entry, list) and len(entry) == 2 and is_sha(entry[0])):
            raise _fault("a partial is [sha, offset]")
        if type(entry[1]) is not int or entry[1] < 0:
            raise _fault("a partial's offset is a non-negative integer")


def _refuse(body: dict[str, Any]) -> None:
    _exact(body, "code", "detail")
    _text(body, "code", 64)
    _text(body, "detail", 500)


def check_item(item: object) -> dict[str, Any]:
    """A batch's item checked: a message or a file's chunk (see the module docstring)."""
    if not isinstance(item, dict):
        raise _fault("an item is a map")
    if set(item) == {"seq", "data"}:
        if not isinstance(item["data"], bytes) or len(item["data"]) > MAX_DATA:
            raise _fault(f"a message's data is at most {MAX_DATA} bytes")
    elif set(item) == {"seq", "sha", "size", "offset", "chunk"}:
        if not is_sha(item["sha"]):
            raise _fault("a chunk's sha is a hex SHA-256")
        chunk = item["chunk"]
        if not isinstance(chunk, bytes) or len(chunk) > CHUNK_BYTES:
            raise _fault(f"a chunk holds at most {CHUNK_BYTES} bytes")
        if _uint(item, "offset") + len(chunk) > _uint(item, "size"):
            raise _fault("a chunk ends past its file's size")
    else:
        raise _fault("an item is {seq, data} or {seq, sha, size, offset, chunk}")
    if _uint(item, "seq") < 1:
        raise _fault("items are numbered from 1")
    return item


def _batch(body: dict[str, Any]) -> None:
    _exact(body, "n", "acked", "items")
    if _uint(body, "n") < 1:
        raise _fault("batches are numbered from 1")
    _uint(body, "acked")
    items = body["items"]
    if not isinstance(items, list) or not 1 <= len(items) <= BATCH_ITEMS:
        raise _fault(f"a batch holds 1..{BATCH_ITEMS} items")
    for item in items:
        check_item(item)


def _ack(body: dict[str, Any]) -> None:
    _exact(body, "n", "have", "codes")
    _uint(body, "n")
    _uint(body, "have")
    codes = body["codes"]
    if not isinstance(codes, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in codes.items()
    ):
        raise _fault("codes must map codes to counts")


def _bye(body: dict[str, Any]) -> None:
    _exact(body)


_SHAPES = {
    Type.HELLO: _hello,
    Type.WELCOME: _welcome,
    Type.REFUSE: _refuse,
    Type.BATCH: _batch,
    Type.ACK: _ack,
    Type.BYE: _bye,
}
