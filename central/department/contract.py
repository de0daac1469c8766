"""The contract between central and a department: broker names, the event, the RPC calls.

``docs/departments.md`` is this module in prose, for a department that connects its own
system instead of running ours. Everything a message carries is JSON (nameko's default
serializer); a record travels as its signed bytes, base64, and is verified by the
receiver like any record.

Names (``CODE`` is the department's code, e.g. ``330481GA``)::

    exchange      tongban_central.events   topic, durable (nameko's events exchange of SERVICE)
    event type    records.CODE             the routing key of CODE's events
    queue         tongban.department.CODE  durable quorum queue, x-delivery-limit, dead-letters
    dead letters  tongban.dead  →  tongban.dead.CODE
    RPC           tongban_central.submit(record), tongban_central.contact(department),
                  tongban_central.file_chunk(sha, offset, size),
                  tongban_central.submit_file(sha, offset, data, digest)

Event (one record central holds that CODE must see; ``message_id`` is the record id)::

    {"seq": int,            # central's outbox number: increasing per department
     "id": hex,             # the record id (SHA-256 of its prefixed payload)
     "kind": str,           # case.intake, case.event, or any kind of central's chain
     "case": str | null,    # the case number, for case records
     "record": base64}      # the envelope [payload, sig] as signed

``submit(record: base64) -> Reply`` hands central one record the department signed (its
decisions, its accounts, its first record): central checks it all (signature,
certificate, not revoked, the broker user is the signer, the decider of the case, an item
the department decides, a step the case allows) before it stores anything. ``contact
(department) -> {"department", "head", "at"}`` says central heard from it and how far it
holds the department's chain.

Files travel in chunks of at most :data:`MAX_CHUNK` bytes, each with the SHA-256 of its
bytes (``digest``), and each whole file is checked against its own SHA-256 (its name).
``file_chunk(sha, offset, size) -> Chunk`` gives the department a part of a file a record
of one of its cases lists (``E_FILE_SCOPE`` for any other); ``submit_file(sha, offset,
data, digest) -> FileAnswer`` hands central a part of a file a decision of the department
lists (``E_FILE_UNREFERENCED`` when no record central holds lists it), taken only where
central's partial copy ends (``E_FILE_OFFSET`` with that offset otherwise: resume there).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from core.errors import ErrorCode, RecordError, TongbanError, error
from sync.record.envelope import MAX_RECORD_SIZE

SERVICE = "tongban_central"
"""Central's nameko service for departments: the source of the events, the RPC target."""
EVENTS_EXCHANGE = f"{SERVICE}.events"
DEAD_EXCHANGE = "tongban.dead"
DELIVERY_LIMIT = 5
"""Deliveries of one message before the broker dead-letters it (a handler failing on it)."""
RPC_TIMEOUT = 10.0
"""Seconds a department waits for central's reply to one call."""

APPENDED, HELD, REFUSED = "appended", "held", "refused"
"""The statuses of a :class:`Reply`."""


def event_type(department: str) -> str:
    """The event type (and routing key) of ``department``'s events."""
    return f"records.{department}"


def queue_name(department: str) -> str:
    return f"tongban.department.{department}"


def dead_queue_name(department: str) -> str:
    return f"tongban.dead.{department}"


def reply_service(department: str) -> str:
    """The service name a department's RPC client replies under: its reply queues are
    ``rpc.reply-CODE-UUID``, which its broker user alone may read."""
    return department


def broker_user(uri: str) -> str:
    """The user an AMQP URI logs in as (what the broker validates ``user_id`` against)."""
    return unquote(urlsplit(uri).username or "")


def _malformed(detail: str) -> RecordError:
    return RecordError(ErrorCode.RECORD_MALFORMED, detail)


def _envelope(text: object) -> bytes:
    if not isinstance(text, str) or len(text) > MAX_RECORD_SIZE * 2:
        raise _malformed("record: base64 text of at most the record size")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _malformed("record: not base64") from exc


def encode_record(envelope: bytes) -> str:
    return base64.b64encode(envelope).decode("ascii")


def decode_record(text: object) -> bytes:
    """The envelope a ``submit`` call or an event carries (``E_RECORD_MALFORMED`` otherwise)."""
    return _envelope(text)


@dataclass(frozen=True)
class RecordEvent:
    """One event: a record for one department, numbered by central's outbox."""

    seq: int
    record_id: bytes
    kind: str
    case: str | None
    envelope: bytes

    def to_message(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.record_id.hex(),
            "kind": self.kind,
            "case": self.case,
            "record": encode_record(self.envelope),
        }

    @classmethod
    def from_message(cls, body: object) -> RecordEvent:
        """The event in ``body``, checked strictly (``E_RECORD_MALFORMED``: a poison message)."""
        if not isinstance(body, dict) or set(body) != {"seq", "id", "kind", "case", "record"}:
            raise _malformed("event: fields must be exactly seq, id, kind, case, record")
        seq, rid, kind, case = body["seq"], body["id"], body["kind"], body["case"]
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise _malformed("event: seq must be a positive integer")
        if not isinstance(kind, str) or not kind or (case is not None and not isinstance(case, str)):
            raise _malformed("event: kind and case must be text")
        try:
            record_id = bytes.fromhex(rid) if isinstance(rid, str) else b""
        except ValueError:
            record_id = b""
        if len(record_id) != 32:
            raise _malformed("event: id must be 64 hex digits")
        return cls(seq, record_id, kind, case, _envelope(body["record"]))


@dataclass(frozen=True)
class Reply:
    """Central's answer to ``submit``: the record appended, held (an earlier one of the
    department is missing), or refused with a stable code."""

    status: str
    record_id: str = ""
    seq: int = 0
    code: str = ""
    detail: str = ""

    def to_message(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "id": self.record_id,
            "seq": self.seq,
            "code": self.code,
            "detail": self.detail,
        }

    @classmethod
    def from_message(cls, body: object) -> Reply:
        if not isinstance(body, dict) or body.get("status") not in (APPENDED, HELD, REFUSED):
            raise _malformed("reply: not a submit reply")
        return cls(
            str(body["status"]),
            str(body.get("id", "")),
            int(body.get("seq", 0)),
            str(body.get("code", "")),
            str(body.get("detail", "")),
        )


# -- files --------------------------------------------------------------------------------

MAX_CHUNK = 256 * 1024
"""Bytes of a file one ``file_chunk`` or ``submit_file`` call carries at most."""
PARTIAL, STORED = "partial", "stored"
"""The statuses of a :class:`FileAnswer` besides ``refused``."""


def _hash_error(detail: str) -> TongbanError:
    return error(ErrorCode.FILE_HASH, detail, zh="文件分块与其校验值不符，未保存")


def encode_chunk(data: bytes) -> tuple[str, str]:
    """A chunk as a call carries it: base64 and the hex SHA-256 of its bytes."""
    return base64.b64encode(data).decode("ascii"), hashlib.sha256(data).hexdigest()


def decode_chunk(text: object, digest: object) -> bytes:
    """The bytes of a chunk that hash to ``digest`` (``E_FILE_HASH`` otherwise;
    ``E_RECORD_MALFORMED`` for what is not a chunk at all)."""
    if not isinstance(text, str) or len(text) > MAX_CHUNK * 2:
        raise _malformed(f"chunk: base64 text of at most {MAX_CHUNK} bytes")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _malformed("chunk: not base64") from exc
    if len(data) > MAX_CHUNK:
        raise _malformed(f"chunk: {len(data)} bytes, at most {MAX_CHUNK}")
    if not isinstance(digest, str) or hashlib.sha256(data).hexdigest() != digest:
        raise _hash_error(f"chunk of {len(data)} bytes does not hash to {str(digest)[:64]!r}")
    return data


@dataclass(frozen=True)
class Chunk:
    """Central's answer to ``file_chunk``: ``data`` from ``offset`` of the file ``sha`` of
    ``size`` bytes, or a refusal with its code (``data`` empty)."""

    sha: str
    offset: int
    data: bytes
    size: int
    code: str = ""
    detail: str = ""

    def to_message(self) -> dict[str, Any]:
        text, digest = encode_chunk(self.data)
        return {
            "sha": self.sha,
            "offset": self.offset,
            "size": self.size,
            "data": text,
            "digest": digest,
            "code": self.code,
            "detail": self.detail,
        }

    @classmethod
    def from_message(cls, body: object) -> Chunk:
        """The answer in ``body``; its bytes checked against their digest (``E_FILE_HASH``)."""
        if not isinstance(body, dict) or not {"sha", "offset", "size", "data", "digest"} <= set(body):
            raise _malformed("file_chunk: not a chunk")
        offset, size = body["offset"], body["size"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, size)):
            raise _malformed("file_chunk: offset and size must be whole numbers")
        data = decode_chunk(body["data"], body["digest"])
        code, detail = str(body.get("code", "")), str(body.get("detail", ""))
        return cls(str(body["sha"]), offset, data, size, code, detail)


@dataclass(frozen=True)
class FileAnswer:
    """Central's answer to ``submit_file``: the part kept so far (``partial``, up to
    ``offset``), the file whole (``stored``), or ``refused`` with a code — with
    ``E_FILE_OFFSET``, ``offset`` is where central's copy ends."""

    sha: str
    status: str
    offset: int = 0
    code: str = ""
    detail: str = ""

    def to_message(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "status": self.status,
            "offset": self.offset,
            "code": self.code,
            "detail": self.detail,
        }

    @classmethod
    def from_message(cls, body: object) -> FileAnswer:
        if not isinstance(body, dict) or body.get("status") not in (PARTIAL, STORED, REFUSED):
            raise _malformed("submit_file: not an answer")
        offset = body.get("offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise _malformed("submit_file: offset must be a whole number")
        return cls(
            str(body.get("sha", "")),
            str(body["status"]),
            offset,
            str(body.get("code", "")),
            str(body.get("detail", "")),
        )
