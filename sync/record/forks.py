"""Fork evidence as a store holds it: which forks are open, and where an origin is frozen.

Ingest keeps two records of one origin with one seq as evidence (``forks``, a table of the
log, :mod:`sync.record.log`): the one the store holds, or that a held successor names, and
the other. Here are its readers. A fork is **open** until a revocation settles it — a key
of either record revoked with its last good seq below the fork's (:meth:`Fork.resolved_by`):
records past that cut-off are refused as revoked wherever they go. While a fork of an origin
is open, the store takes none of the origin's records from the fork's seq on
(:func:`frozen_from`, checked by :mod:`sync.record.ingest`). Central's own chain has no key
above it to revoke: a fork of the root stays open, an alarm, until an operator deals with it
(docs/operations.md, "A fork of the root").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Database

from core.errors import ErrorCode
from sync.record import trust
from sync.record.envelope import read_header, split


def refused(db: Database, origin: str, code: ErrorCode) -> int:
    """How many distinct records of ``origin`` ``db`` refused with ``code``."""
    row = db.conn.execute("SELECT count(*) FROM rejected WHERE origin = ? AND code = ?", (origin, code.value))
    return int(row.fetchone()[0])


@dataclass(frozen=True)
class Fork:
    """One row of ``forks``: two records of one origin with one seq, as this store found
    them (the one it holds, or its held successor names, and the other), and the keys that
    signed them."""

    origin: str
    seq: int
    held_id: bytes
    other_id: bytes
    detected_at: int
    source: str  # who brought the other record: a peer's code, "bundle", "local"
    other_envelope: bytes
    held_envelope: bytes | None  # None: only its id is known, from a successor held
    kids: frozenset[bytes]

    def resolved_by(self, cut_off: Callable[[bytes], int | None]) -> bool:
        """Whether a revocation settles it: a key of either record revoked with its last
        good seq below the fork's (``cut_off(kid)``: that key's last good seq, if revoked).
        Records past that cut-off are refused as revoked wherever they go."""
        return any((last := cut_off(kid)) is not None and last < self.seq for kid in self.kids)


def forks(db: Database, origin: str | None = None) -> list[Fork]:
    """Every fork ``db`` holds evidence of (of ``origin`` only, if given), by origin and seq."""
    where, params = ("WHERE f.origin = ?", (origin,)) if origin is not None else ("", ())
    rows = db.conn.execute(
        "SELECT f.origin, f.seq, f.held_id, f.other_id, f.detected_at, f.source, f.other_envelope,"
        f" r.envelope, r.kid FROM forks f LEFT JOIN records r ON r.id = f.held_id {where}"
        " ORDER BY f.origin, f.seq, f.n",
        params,
    ).fetchall()
    found = []
    for origin_, seq, held, other, at, source, other_envelope, held_envelope, held_kid in rows:
        other_kid = read_header(split(bytes(other_envelope))[0]).kid
        kids = frozenset({other_kid} | ({bytes(held_kid)} if held_kid is not None else set()))
        held_bytes = bytes(held_envelope) if held_envelope is not None else None
        found.append(
            Fork(origin_, seq, bytes(held), bytes(other), at, source, bytes(other_envelope), held_bytes, kids)
        )
    return found


def open_forks(db: Database, origin: str | None = None) -> list[Fork]:
    """The forks no revocation has settled (:meth:`Fork.resolved_by`): what keeps an origin
    frozen, and what a node's screens and central's dashboard alarm on."""
    found = forks(db, origin)
    if not found:
        return []

    def cut_off(fork: Fork) -> Callable[[bytes], int | None]:
        def last_good(kid: bytes) -> int | None:
            key = trust.node_signing_key(db, fork.origin, kid)
            return key.last_good_seq if key is not None else None

        return last_good

    return [fork for fork in found if not fork.resolved_by(cut_off(fork))]


def frozen_from(db: Database, origin: str) -> int | None:
    """The lowest seq of an open fork of ``origin``: its records from there on are refused
    (``E_CHAIN_FORK``) until a revocation settles the fork. None: not frozen."""
    seqs = [fork.seq for fork in open_forks(db, origin)]
    return min(seqs) if seqs else None
