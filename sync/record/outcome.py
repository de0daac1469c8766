"""The value types of the record layer: what ingest did with an envelope, and the anchor.

They sit apart from :mod:`sync.record.log` and :mod:`sync.record.ingest` so that both, and
everything above them, name the same types without importing each other: the log drives
ingest, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import AuthorityError, ErrorCode, InputError, RecordError, TongbanError

REFUSALS: tuple[type[TongbanError], ...] = (RecordError, AuthorityError, InputError)
"""What refuses a record: the record's own fault (its bytes, its authority, its content).
Anything else — the store busy, full or damaged — is the receiver's, and rolls back."""


class Status(StrEnum):
    APPENDED = "appended"
    DUPLICATE = "duplicate"
    HELD = "held"
    FORK = "fork"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Outcome:
    """What ingest did with one envelope."""

    status: Status
    record_id: bytes | None = None
    code: ErrorCode | None = None
    reason: str = ""
    released: int = 0  # held records that this one allowed in
    again: bool = False  # refused before, the same bytes for the same reason: nothing new kept


@dataclass(frozen=True)
class Anchor:
    """The network's trust anchor: central's genesis record."""

    net: str
    origin: str
    genesis_id: bytes


@dataclass(frozen=True)
class Head:
    seq: int
    id: bytes


Heads = dict[str, tuple[int, bytes]]
"""Origin → (seq, record id) of the last record held of it: what two stores compare."""
