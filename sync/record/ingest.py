"""The ingest checks of :mod:`sync.record.log`, run inside one transaction with caches valid in it.

A :class:`Pass` is one transaction's worth of ingest. Inside ``BEGIN IMMEDIATE`` no other
writer can change the store, so what a pass has looked up — the anchor, the key and
revocation of an (origin, kid), an origin's head, whether anything is held — stays true
until the pass itself writes, and the pass updates its caches when it does. A batch of a
few hundred records then costs one ``INSERT`` per record (plus the projections' own
statements, and a savepoint when a projection could leave writes behind on a refusal)
instead of a dozen statements.

Signatures of a batch can be checked before the sequential part, by a
:class:`sync.record.verify.Verifier` that may spread them over threads (libsodium releases
the GIL). A record whose key arrives inside the same batch is verified in line, when its
turn comes.

The log drives ingest and never the other way round: a :class:`Pass` sees its log only
through :class:`LogView`, what it needs of it.

**Dense and sparse origins.** A store holds every record of some origins (dense: central
holds all; a node holds the root's and its own subtree's) and only the records that
concern it of the others (sparse: a village holds its town's grants and decisions but not
the town's other work). For a dense origin a gap in ``seq`` holds the record until the gap
fills; for a sparse origin a gap is normal and the record is accepted once its signature,
certificate and authority pass. Forks are caught either way: the same (origin, seq) with
another id, a ``prev`` that differs from the id of the held predecessor, or a held
successor whose ``prev`` is not this record.
"""

from __future__ import annotations

import functools
import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlite_utils import Database

from core.errors import AuthorityError, ErrorCode, RecordError, TongbanError, error
from sync.record import kinds, trust
from sync.record.db import transaction
from sync.record.envelope import (
    PREFIX_RECORD,
    Payload,
    Record,
    read_header,
    record_id,
    split,
    verify_signature,
)
from sync.record.outcome import REFUSALS, Anchor, Head, Outcome, Status
from sync.record.projector import Projectors
from sync.record.refused import Refusals
from sync.record.trust import SigningKey, role_of
from sync.record.verify import Pending, SignatureJob, Verifier

MAX_HELD_GAP = 100_000
"""Cap on verified records waiting for earlier records of their origin."""
MAX_HELD_UNVERIFIED = 10_000
MAX_HELD_UNVERIFIED_BYTES = 64 * 1024 * 1024
"""Caps on records waiting for a certificate: their signatures cannot be checked yet, so
anyone could send them; beyond the caps they are refused (and kept in ``rejected``, within
the source's bound: :mod:`sync.record.refused`)."""
MAX_HELD_SOURCE_BYTES = 64 * 1024 * 1024
"""Cap on the bytes held from one source, whatever they wait for: a key that signs records
with gaps in its own chain cannot fill the disk with them either."""


class LogView(Protocol):
    """What a :class:`Pass` needs of its log (:class:`sync.record.log.RecordLog`)."""

    db: Database
    projectors: Projectors

    def dense(self, origin: str) -> bool: ...
    def anchor(self) -> Anchor | None: ...
    def require_anchor(self) -> Anchor: ...
    def head(self, origin: str) -> Head | None: ...
    def frozen_from(self, origin: str) -> int | None: ...


@dataclass(frozen=True)
class Parsed:
    """An envelope split and its header read, or the error that stopped it."""

    envelope: bytes
    rid: bytes | None = None
    payload_bytes: bytes = b""
    sig: bytes = b""
    payload: Payload | None = None
    error: RecordError | None = None


def parse(envelope: bytes) -> Parsed:
    """Steps 1–3 without the store: the outer array, the id, the header (errors kept)."""
    try:
        payload_bytes, sig = split(envelope)
    except RecordError as exc:
        return Parsed(envelope, error=exc)
    rid = record_id(payload_bytes)
    try:
        payload = read_header(payload_bytes)
    except RecordError as exc:
        # Reported only if the id is not held: a duplicate never fails a later check.
        return Parsed(envelope, rid, payload_bytes, sig, error=exc)
    return Parsed(envelope, rid, payload_bytes, sig, payload)


class Pass:
    """One transaction of ingest over ``log`` (see the module docstring)."""

    def __init__(
        self,
        log: LogView,
        now: int,
        admit: Callable[[str], bool] | None = None,
        signed: tuple[str, int] | None = None,
    ) -> None:
        self.log = log
        self.conn = log.db.conn
        self.now = now
        self.admit = admit
        self.signed = signed
        self.dense = functools.cache(log.dense)  # a policy is a pure function of the code
        self._anchor: Anchor | None = None
        self._keys: dict[tuple[str, bytes], SigningKey | None] = {}
        self._heads: dict[str, Head | None] = {}
        self._known: set[bytes] = set()
        self._held: int | None = None
        self._pending: dict[int, tuple[Pending, int]] = {}
        self._frozen: dict[str, int | None] = {}
        self.refusals = Refusals(log.db, now)

    # -- batch preparation --------------------------------------------------------------

    def prepare(self, parsed: Sequence[Parsed], offset: int, verifier: Verifier) -> None:
        """Note which of ``parsed`` (batch positions from ``offset``) are held already, and
        submit the signatures whose keys are known to ``verifier``."""
        ids = [p.rid for p in parsed if p.rid is not None]
        if ids:
            marks = ",".join("?" * len(ids))
            rows = self.conn.execute(f"SELECT id FROM records WHERE id IN ({marks})", ids)
            self._known.update(bytes(row[0]) for row in rows)
        jobs: list[SignatureJob] = []
        where: list[int] = []
        for index, item in enumerate(parsed, start=offset):
            if item.payload is None or item.rid in self._known:
                continue
            key = self._key(item.payload.origin, item.payload.kid)
            if key is not None:
                jobs.append((key.sign_pk, PREFIX_RECORD + item.payload_bytes, item.sig))
                where.append(index)
        if jobs:
            pending = verifier.submit(jobs)
            for position, index in enumerate(where):
                self._pending[index] = (pending, position)

    def _presigned(self, index: int | None) -> bool | None:
        """The early check's answer for the record at ``index``; None: not checked early."""
        if index is None or index not in self._pending:
            return None
        pending, position = self._pending.pop(index)
        return pending()[position]

    def writes_more_than_once(self, item: Parsed) -> bool:
        """Whether ingesting ``item`` may leave writes behind when it is refused.

        Projections and the release of held records write more, and need a savepoint so
        that a refusal half-way undoes them; a bare append is one statement. So is the
        append of a kind whose projection is contained (it refuses before it writes, or
        undoes its own writes, and the record's row is written after it).
        """
        if item.payload is None:
            return False
        kind = item.payload.kind
        if kind in self.log.projectors.kinds and kind not in self.log.projectors.contained:
            return True
        return self._held_count() > 0

    # -- the checks, in the order of docs/record-format.md ------------------------------

    def ingest(self, item: Parsed, source: str, index: int | None = None) -> Outcome:
        """Check and store one parsed envelope; raises :class:`RecordError` to reject it."""
        if item.rid is None:
            assert item.error is not None
            raise item.error
        rid = item.rid
        if rid in self._known:
            return Outcome(Status.DUPLICATE, rid)
        if item.error is not None or item.payload is None:
            raise item.error or RecordError(ErrorCode.SCHEMA)
        payload = item.payload
        if self.admit is not None and not self.admit(payload.origin):
            raise RecordError(ErrorCode.SYNC_NOT_CHILD, f"{payload.origin} is not in the sender's subtree")
        anchor = self.anchor()
        if payload.net != anchor.net:
            raise RecordError(ErrorCode.NET_MISMATCH, f"{payload.net!r}, this network is {anchor.net!r}")
        key = self._key(payload.origin, payload.kid)
        if key is None:
            return self._hold(rid, payload, item.envelope, source, ErrorCode.KEY_UNKNOWN)
        checked = self._presigned(index)
        if checked is None:
            verify_signature(key.sign_pk, PREFIX_RECORD + item.payload_bytes, item.sig)
        elif not checked:
            raise RecordError(ErrorCode.SIGNATURE_INVALID)
        kind, value = kinds.check(payload.kind, payload.body)
        record = Record(rid, payload, item.payload_bytes, item.sig, item.envelope)
        verdict = self._chain(record, source)
        if verdict is not None:
            return verdict
        self._check_authority(record, kind, key, anchor)
        self.append(record, source, value)
        return Outcome(Status.APPENDED, rid)

    def _chain(self, record: Record, source: str) -> Outcome | None:
        payload = record.payload
        origin, seq = payload.origin, payload.seq
        self._check_fork_freeze(origin, seq, source)
        if self.dense(origin):
            head = self.head(origin)
            if head is None or seq > head.seq:
                if seq > (head.seq + 1 if head else 1):
                    return self._hold(record.id, payload, record.envelope, source, ErrorCode.CHAIN_GAP)
                if head is not None and payload.prev != head.id:
                    raise RecordError(ErrorCode.CHAIN_PREV, f"{origin} #{seq}")
                if head is None and not self.is_cert_of(payload.prev, origin):
                    raise RecordError(ErrorCode.CHAIN_PREV, f"{origin} #1 must link to its certificate")
                return None
            other = self._id_at(origin, seq)
            if other is not None:
                return self.fork(record, other, source)
            # A hole in an origin held densely can only come from an older sparse policy:
            # judge it by its neighbours, as for a sparse origin.
        else:
            other = self._id_at(origin, seq)
            if other is not None:
                return self.fork(record, other, source)
        if seq == 1:
            if not self.is_cert_of(payload.prev, origin):
                raise RecordError(ErrorCode.CHAIN_PREV, f"{origin} #1 must link to its certificate")
        else:
            before = self._id_at(origin, seq - 1)
            if before is not None and payload.prev != before:
                raise RecordError(ErrorCode.CHAIN_PREV, f"{origin} #{seq}")
        after = self._prev_of(origin, seq + 1)
        if after is not None and after != record.id:
            # The origin's next record links to another #seq: it signed two of them.
            return self.fork(record, after, source)
        return None

    def _check_fork_freeze(self, origin: str, seq: int, source: str) -> None:
        """Refuse what a fork freezes (``E_CHAIN_FORK``, kept in ``rejected``).

        Once this store holds evidence that ``origin`` signed two records with one seq, it
        takes none of its records from that seq on until a revocation settles the fork
        (:meth:`LogView.frozen_from`): the origin's key may be in two hands. The
        store's own signing is no exception — except central's, the root, which goes on
        signing and alarms (there is no one above it to revoke its key). And a record of
        this store's own origin beyond what it has signed (``signed``: its watermark) that
        comes from elsewhere was signed with its key by someone else.
        """
        if self.signed is not None and source != "local":
            own, through = self.signed
            if origin == own and seq > through:
                raise RecordError(
                    ErrorCode.CHAIN_FORK,
                    f"{origin} #{seq} is signed with this node's key; this node signed up to #{through}",
                )
        if origin not in self._frozen:
            self._frozen[origin] = self.log.frozen_from(origin)
        floor = self._frozen[origin]
        if floor is None or seq < floor:
            return
        if source == "local" and origin == self._root():
            return
        raise RecordError(
            ErrorCode.CHAIN_FORK, f"{origin} is frozen from #{floor} (a fork) until a revocation settles it"
        )

    def _check_authority(self, record: Record, kind: kinds.Kind, key: SigningKey, anchor: Anchor) -> None:
        payload = record.payload
        if key.last_good_seq is not None and payload.seq > key.last_good_seq:
            raise AuthorityError(
                ErrorCode.CERT_REVOKED, f"{payload.origin} #{payload.seq} > last good #{key.last_good_seq}"
            )
        if key.role is not None:
            if key.retired_after is not None and payload.seq > key.retired_after:
                raise RecordError(
                    ErrorCode.KEY_RETIRED,
                    f"central's {key.role} key {payload.kid.hex()} was retired after #{key.retired_after}",
                )
            role = role_of(payload.kind)
            if role != key.role and not (key.role == "root" and role is not None and not self._named(role)):
                raise RecordError(ErrorCode.KEY_ROLE, f"central's {key.role} key signed a {payload.kind}")
        if kind.author is kinds.Author.ROOT and payload.origin != anchor.origin:
            raise RecordError(ErrorCode.AUTHORITY, f"{payload.kind} from {payload.origin}")
        if kind.name == kinds.NET_GENESIS:
            raise RecordError(ErrorCode.AUTHORITY, "a second genesis record")
        if kind.name == kinds.NODE_ENROLLED and not self.is_cert_of(record.body["cert"], payload.origin):
            raise RecordError(ErrorCode.AUTHORITY, "node.enrolled names a certificate of another node")

    # -- writing ------------------------------------------------------------------------

    def append(self, record: Record, source: str, checked: object = None) -> None:
        """Project ``record``, then write its row: a projection's refusal comes first."""
        payload = record.payload
        self.log.projectors.project(self.log.db, record, checked)
        self.conn.execute(
            "INSERT INTO records (id, origin, seq, kind, kid, ts, actor, envelope, received_at, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                payload.origin,
                payload.seq,
                payload.kind,
                payload.kid,
                payload.ts,
                payload.actor,
                record.envelope,
                self.now,
                source,
            ),
        )
        self._known.add(record.id)
        head = self._heads.get(payload.origin)
        if payload.origin in self._heads and (head is None or payload.seq > head.seq):
            self._heads[payload.origin] = Head(payload.seq, record.id)
        if payload.kind in trust.TRUST_KINDS:
            self._keys.clear()
            self._frozen.clear()  # a revocation may settle a fork

    def _hold(self, rid: bytes, payload: Payload, envelope: bytes, source: str, code: ErrorCode) -> Outcome:
        count, size, from_source = self.conn.execute(
            "SELECT coalesce(sum(code = ?), 0),"
            " coalesce(sum(CASE WHEN code = ? THEN length(envelope) END), 0),"
            " coalesce(sum(CASE WHEN source = ? THEN length(envelope) END), 0) FROM held",
            (code.value, code.value, source),
        ).fetchone()
        if code is ErrorCode.KEY_UNKNOWN:
            full = count >= MAX_HELD_UNVERIFIED or size + len(envelope) > MAX_HELD_UNVERIFIED_BYTES
        else:
            full = count >= MAX_HELD_GAP
        full = full or from_source + len(envelope) > MAX_HELD_SOURCE_BYTES
        if full:
            raise error(code, "too many records waiting; refused instead of held")
        # Keyed by the envelope's bytes, not the record id: an unverified copy with a bad
        # signature must not take the place of the genuine one.
        self.conn.execute(
            "INSERT OR IGNORE INTO held (digest, id, origin, seq, code, envelope, received_at, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                hashlib.sha256(envelope).digest(),
                rid,
                payload.origin,
                payload.seq,
                code.value,
                envelope,
                self.now,
                source,
            ),
        )
        self._held = None
        return Outcome(Status.HELD, rid, code=code)

    def fork(self, record: Record, held_id: bytes, source: str) -> Outcome:
        self.conn.execute(
            "INSERT OR IGNORE INTO forks"
            " (origin, seq, held_id, other_id, other_envelope, detected_at, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.origin, record.seq, held_id, record.id, record.envelope, self.now, source),
        )
        self._frozen.pop(record.origin, None)
        return Outcome(Status.FORK, record.id, code=ErrorCode.CHAIN_FORK)

    def release_held(self, appended: Record) -> int:
        """Retry held records that the record just appended may have unblocked."""
        if self._held_count() == 0:
            return 0
        released = 0
        queue: deque[Record] = deque([appended])
        while queue:
            record = queue.popleft()
            waiting_origin = trust.certified_code(record.kind, record.body) or (
                record.origin if record.kind in (kinds.KEY_ROLE, kinds.ROOT_ROTATE) else None
            )
            rows = self.conn.execute(
                "SELECT digest, envelope, source FROM held WHERE (origin = ? AND seq = ?)"
                " OR (origin = ? AND code = ?) ORDER BY seq",
                (record.origin, record.seq + 1, waiting_origin, ErrorCode.KEY_UNKNOWN.value),
            ).fetchall()
            for digest, envelope, source in rows:
                self.conn.execute("DELETE FROM held WHERE digest = ?", (digest,))
                self._held = None
                item = parse(bytes(envelope))
                try:
                    with transaction(self.log.db):
                        outcome = self.ingest(item, source)
                except REFUSALS as exc:
                    self.reject(bytes(envelope), source, exc)
                    continue
                if outcome.status is Status.APPENDED and item.payload is not None and item.rid is not None:
                    released += 1
                    queue.append(Record(item.rid, item.payload, item.payload_bytes, item.sig, item.envelope))
        return released

    def reject(self, envelope: bytes, source: str, exc: TongbanError) -> bool:
        """Keep the refusal of ``envelope`` in ``rejected``, within ``source``'s bound
        (:mod:`sync.record.refused`); whether the same bytes were refused so before."""
        return self.refusals.keep(envelope, source, exc)

    # -- cached lookups -----------------------------------------------------------------

    def anchor(self) -> Anchor:
        if self._anchor is None:
            self._anchor = self.log.require_anchor()
        return self._anchor

    def _named(self, role: str) -> bool:
        """Whether central's log has ever named a key for ``role``: until it has, the root
        key signs that role's records itself (a network bootstraps with one key)."""
        return trust.role_named(self.log.db, role)

    def _root(self) -> str | None:
        """The anchor's origin (central's code), or None before an anchor is installed."""
        if self._anchor is None:
            self._anchor = self.log.anchor()
        return self._anchor.origin if self._anchor else None

    def head(self, origin: str) -> Head | None:
        if origin not in self._heads:
            self._heads[origin] = self.log.head(origin)
        return self._heads[origin]

    def _key(self, origin: str, kid: bytes) -> SigningKey | None:
        cache_key = (origin, kid)
        if cache_key not in self._keys:
            if origin == self._root():
                self._keys[cache_key] = trust.central_signing_key(self.log.db, kid)
            else:
                self._keys[cache_key] = trust.node_signing_key(self.log.db, origin, kid)
        return self._keys[cache_key]

    def _held_count(self) -> int:
        if self._held is None:
            self._held = int(self.conn.execute("SELECT count(*) FROM held").fetchone()[0])
        return self._held

    def _id_at(self, origin: str, seq: int) -> bytes | None:
        row = self.conn.execute("SELECT id FROM records WHERE origin = ? AND seq = ?", (origin, seq))
        found = row.fetchone()
        return bytes(found[0]) if found else None

    def _prev_of(self, origin: str, seq: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT envelope FROM records WHERE origin = ? AND seq = ?", (origin, seq)
        ).fetchone()
        if row is None:
            return None
        payload_bytes, _ = split(bytes(row[0]))
        return read_header(payload_bytes).prev

    def is_cert_of(self, cert_id: bytes, origin: str) -> bool:
        return trust.is_cert_of(self.log.db, cert_id, origin)
