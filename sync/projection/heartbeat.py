"""Central's signed heartbeat as every store keeps it, and what it says about the node's time.

A ``central.heartbeat`` (signed by central's heartbeat key, :mod:`sync.record.trust`)
carries central's time, an expiry and the head of every central stream. Table
``heartbeat`` holds the newest one held (one row, by central's seq, so any arrival order
gives the same row).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.errors import ErrorCode
from sync.record import codec, kinds
from sync.record.envelope import Record

CLOCK_TOLERANCE = 300
"""Seconds a node's clock may lag the newest heartbeat before it raises a clock alarm."""


@dataclass(frozen=True)
class Heartbeat:
    record_id: bytes
    seq: int
    time: int
    exp: int
    heads: dict[str, int]


class HeartbeatProjector:
    """Keeps ``heartbeat`` at the newest ``central.heartbeat`` held."""

    kinds = frozenset({kinds.HEARTBEAT})
    tables: tuple[str, ...] = ("heartbeat",)
    contained = kinds  # one upsert, never a refusal

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        db.conn.execute(
            "INSERT INTO heartbeat (one, record_id, seq, time, exp, heads) VALUES (1, ?, ?, ?, ?, ?)"
            " ON CONFLICT (one) DO UPDATE SET record_id = excluded.record_id, seq = excluded.seq,"
            " time = excluded.time, exp = excluded.exp, heads = excluded.heads"
            " WHERE excluded.seq > heartbeat.seq",
            (record.id, record.seq, body["time"], body["exp"], codec.encode(body["heads"])),
        )


def latest_heartbeat(db: Database) -> Heartbeat | None:
    row = db.conn.execute("SELECT record_id, seq, time, exp, heads FROM heartbeat").fetchone()
    if row is None:
        return None
    return Heartbeat(bytes(row[0]), row[1], row[2], row[3], codec.decode(bytes(row[4])))


def heartbeat_flags(latest: Heartbeat | None, now: int) -> list[ErrorCode]:
    """What the newest heartbeat says about ``now`` at a node: expired, or a clock behind."""
    if latest is None:
        return []
    flags = []
    if now > latest.exp:
        flags.append(ErrorCode.HEARTBEAT_STALE)
    if now < latest.time - CLOCK_TOLERANCE:
        flags.append(ErrorCode.CLOCK_BEHIND)
    return flags


HEARTBEAT_TABLE = (
    """
    CREATE TABLE heartbeat (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        record_id BLOB NOT NULL,
        seq INTEGER NOT NULL,
        time INTEGER NOT NULL,
        exp INTEGER NOT NULL,
        heads BLOB NOT NULL
    )
    """,
)
"""Migration ``log/0007_central_keys``, its second part."""
