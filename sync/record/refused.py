"""What ingest keeps of the records it refuses: the ``rejected`` table, bounded per source.

A refused record is never dropped silently. Its row says why (the code and a readable
reason), what it was as far as its bytes can say (origin, seq, kind, record id), how large
it was, from where it came (the source: the peer that sent it, ``bundle``, ``local`` …),
when, and how often (``tongban log DIR --rejected``). What is kept is bounded per source,
so that one enrolled key sending garbage cannot fill a parent's disk:

* at most :data:`MAX_REJECTED_ROWS` rows and :data:`MAX_REJECTED_BYTES` bytes of kept
  envelopes per source;
* bytes that do not decode as an envelope keep only their digest, their size and their
  first :data:`KEPT_PREFIX` bytes; an envelope that decodes is evidence (who claims to have
  signed what) and is kept whole, up to :data:`KEPT_ENVELOPE` bytes;
* past a source's bound nothing more is stored. The same bytes refused again still count
  on their row (``times``), and a sync link counts every refusal per peer and code
  (``link_rejections``, :mod:`sync.link.store`), so a flood is counted, never stored.

The rows of one source are found through the ``rejected_source`` index (migration
``log/0008_rejected_by_source``), once per ingest pass: a :class:`Refusals` keeps the
source's figures up to date as it writes, inside the pass's transaction; :func:`rejections`
reads them back for the operator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlite_utils import Database

from core.errors import RecordError, TongbanError
from sync.record.db import transaction
from sync.record.envelope import read_header, record_id, split

MAX_REJECTED_ROWS = 1000
"""Rows of ``rejected`` kept per source."""
MAX_REJECTED_BYTES = 4 * 1024 * 1024
"""Bytes of refused envelopes kept per source."""
KEPT_PREFIX = 256
"""What is kept of bytes that do not decode as an envelope: their first bytes."""
KEPT_ENVELOPE = 128 * 1024
"""What is kept of an envelope that decodes: up to this many bytes."""


class Refusals:
    """The refusals of one ingest pass, written to ``rejected`` within the source's bound."""

    def __init__(self, db: Database, now: int) -> None:
        self.db = db
        self.now = now
        self._used: dict[str, list[int]] = {}  # source → [rows, bytes] kept

    def keep(self, envelope: bytes, source: str, exc: TongbanError) -> bool:
        """Count ``envelope``'s refusal, keeping it if the source's bound allows; whether
        the same bytes were refused for the same reason before (their row counts one more)."""
        data = bytes(envelope) if isinstance(envelope, bytes | bytearray | memoryview) else b""
        digest = hashlib.sha256(data).digest()
        conn = self.db.conn
        with transaction(self.db):
            again = conn.execute(
                "UPDATE rejected SET times = times + 1, last_at = ? WHERE digest = ? AND code = ?",
                (self.now, digest, exc.code.value),
            )
            if again.rowcount:
                return True
            origin, seq, kind, rid = best_effort_header(data)
            kept = data[:KEPT_ENVELOPE] if origin is not None else data[:KEPT_PREFIX]
            used = self._used_by(source)
            if used[0] >= MAX_REJECTED_ROWS or used[1] + len(kept) > MAX_REJECTED_BYTES:
                return False  # counted by the link only
            conn.execute(
                "INSERT INTO rejected (digest, code, reason, origin, seq, kind, record_id, size, envelope,"
                " source, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    exc.code.value,
                    exc.text("en")[:500],
                    origin,
                    seq,
                    kind,
                    rid,
                    len(data),
                    kept,
                    source,
                    self.now,
                    self.now,
                ),
            )
            used[0] += 1
            used[1] += len(kept)
        return False

    def _used_by(self, source: str) -> list[int]:
        if source not in self._used:
            rows, size = self.db.conn.execute(
                "SELECT count(*), coalesce(sum(length(envelope)), 0) FROM rejected WHERE source = ?",
                (source,),
            ).fetchone()
            self._used[source] = [int(rows), int(size)]
        return self._used[source]


def best_effort_header(data: bytes) -> tuple[str | None, int | None, str | None, bytes | None]:
    """Whatever can be read of a refused envelope, for the operator's table."""
    try:
        payload_bytes, _ = split(data, max_size=max(len(data), 1))
        payload = read_header(payload_bytes)
        return payload.origin, payload.seq, payload.kind, record_id(payload_bytes)
    except RecordError:
        return None, None, None, None


@dataclass(frozen=True)
class Rejection:
    """One row of ``rejected``: what was refused, why, from where, and how often."""

    code: str
    reason: str
    source: str
    origin: str | None  # None: the bytes did not decode far enough to say
    seq: int | None
    kind: str | None
    times: int
    last_at: int


def rejections(db: Database, *, newest: int | None = None) -> list[Rejection]:
    """The records ``db`` refused: all of them in the order they were first refused, or
    the ``newest`` (by their last arrival) newest first."""
    columns = "code, reason, source, origin, seq, kind, times, last_at"
    if newest is None:
        rows = db.conn.execute(f"SELECT {columns} FROM rejected ORDER BY n")
    else:
        rows = db.conn.execute(f"SELECT {columns} FROM rejected ORDER BY last_at DESC LIMIT ?", (newest,))
    return [Rejection(*row) for row in rows]


REJECTED_BY_SOURCE = ("CREATE INDEX rejected_source ON rejected (source)",)
"""Migration ``log/0008_rejected_by_source``: a source's kept refusals, found by index."""
