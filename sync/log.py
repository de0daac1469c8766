"""The record log: an append-only, signed, hash-chained log of records in SQLite.

All state of a node or of central is a projection of this log. A record arrives through
exactly one door, :meth:`RecordLog.ingest` (its own records too, via
:meth:`RecordLog.append_local`), and passes every check in this order, each with a stable
code (docs/record-format.md):

1. size cap, strict decode of ``[payload, sig]``;           E_RECORD_TOO_LARGE / _MALFORMED
2. already held by id → duplicate, nothing changes;
3. strict decode of the header, version, network;           E_SCHEMA / E_VERSION_UNSUPPORTED / E_NET_MISMATCH
4. key for (origin, kid), else **held** until the certificate arrives;   E_KEY_UNKNOWN
5. signature over the exact payload bytes;                   E_SIGNATURE_INVALID
6. kind and body schema;                                     E_KIND_UNKNOWN / E_SCHEMA
7. chain: same (origin, seq) different id → **fork evidence**; a gap → **held**;
   ``prev`` must be the id of (origin, seq-1) (for seq 1: a certificate of origin);  E_CHAIN_*
8. authority: the signer's certificate not revoked before ``seq``; root-only kinds
   from central;                                             E_CERT_REVOKED / E_AUTHORITY
9. append and update every projection in one transaction (a projector may still refuse,
   e.g. a catalog rollback, and then nothing is written).

A refused record is never dropped silently: it is kept in ``rejected`` with its code,
reason and bytes (counted, once per distinct bytes and code). Held records are retried
when what they wait for arrives. Update and delete on ``records`` are refused by triggers.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlite_utils import Database

from core.clock import Clock
from core.errors import ErrorCode, RecordError
from sync import kinds
from sync.case_projection import CaseProjector, ClerkProjector, GrantProjector
from sync.db import transaction
from sync.envelope import (
    PREFIX_RECORD,
    ZERO_ID,
    Payload,
    Record,
    Signer,
    key_id,
    read_header,
    record_id,
    seal,
    split,
    verify_signature,
)
from sync.projections import CatalogProjector, Projector, TrustProjector

MAX_HELD_GAP = 100_000
"""Cap on verified records waiting for earlier records of their origin."""
MAX_HELD_UNVERIFIED = 10_000
MAX_HELD_UNVERIFIED_BYTES = 64 * 1024 * 1024
"""Caps on records waiting for a certificate: their signatures cannot be checked yet, so
anyone could send them; beyond the caps they are refused (and kept in ``rejected``)."""


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


class RecordLog:
    """The log of one store. One instance per database connection; not thread-safe."""

    def __init__(self, db: Database, clock: Clock, projectors: Sequence[Projector] = ()) -> None:
        self.db = db
        self.clock = clock
        self.projectors: tuple[Projector, ...] = (
            TrustProjector(),
            CatalogProjector(),
            GrantProjector(),
            CaseProjector(),
            ClerkProjector(),
            *projectors,
        )

    # -- reading -------------------------------------------------------------------------

    def anchor(self) -> Anchor | None:
        rows = dict(self.db.conn.execute("SELECT key, value FROM meta").fetchall())
        if "anchor_id" not in rows:
            return None
        return Anchor(
            net=rows["net"].decode(), origin=rows["anchor_origin"].decode(), genesis_id=rows["anchor_id"]
        )

    def head(self, origin: str) -> Head | None:
        row = self.db.conn.execute(
            "SELECT seq, id FROM records WHERE origin = ? ORDER BY seq DESC LIMIT 1", (origin,)
        ).fetchone()
        return Head(row[0], row[1]) if row else None

    def heads(self) -> dict[str, Head]:
        rows = self.db.conn.execute("SELECT origin, max(seq) FROM records GROUP BY origin").fetchall()
        return {origin: self.head(origin) or Head(0, ZERO_ID) for origin, _ in rows}

    def has(self, rid: bytes) -> bool:
        return self.db.conn.execute("SELECT 1 FROM records WHERE id = ?", (rid,)).fetchone() is not None

    def get(self, rid: bytes) -> Record | None:
        row = self.db.conn.execute("SELECT envelope FROM records WHERE id = ?", (rid,)).fetchone()
        return decode_stored(row[0]) if row else None

    def envelopes(self, after: int = 0, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(arrival, envelope) in arrival order after ``after``."""
        sql = "SELECT arrival, envelope FROM records WHERE arrival > ? ORDER BY arrival"
        params: tuple[Any, ...] = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        yield from self.db.conn.execute(sql, params)

    def count(self, table: str = "records") -> int:
        if table not in {"records", "rejected", "held", "forks"}:
            raise ValueError(table)
        return int(self.db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def public_key_for(self, payload: Payload) -> bytes | None:
        row = self.db.conn.execute(
            "SELECT sign_pk FROM certs WHERE code = ? AND kid = ?", (payload.origin, payload.kid)
        ).fetchone()
        return bytes(row[0]) if row else None

    # -- writing -------------------------------------------------------------------------

    def install_anchor(
        self, envelope: bytes, *, expected_id: bytes | None = None, source: str = "anchor"
    ) -> Record:
        """Pin central's self-signed genesis record as this log's trust anchor.

        Raises:
            RecordError: the genesis is malformed or its self-signature is bad.
            EnrollmentError-like ``E_ENROLL_ANCHOR`` (as RecordError) when it is not the
            expected anchor or a different anchor is already installed.
        """
        record = open_genesis(envelope)
        if expected_id is not None and record.id != expected_id:
            raise RecordError(ErrorCode.ENROLL_ANCHOR, "genesis id differs from the expected fingerprint")
        current = self.anchor()
        if current is not None:
            if current.genesis_id != record.id:
                raise RecordError(ErrorCode.ENROLL_ANCHOR, "a different trust anchor is installed already")
            return record
        with transaction(self.db):
            self.db.conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("anchor_id", record.id),
                    ("net", record.payload.net.encode()),
                    ("anchor_origin", record.origin.encode()),
                ],
            )
            self._append(record, source)
        return record

    def ingest(self, envelope: bytes, source: str) -> Outcome:
        """Check and store one envelope from ``source`` (a peer code, "bundle", "local")."""
        try:
            with transaction(self.db):
                outcome = self._ingest(envelope, source)
                if outcome.status is Status.APPENDED and outcome.record_id is not None:
                    released = self._release_held(outcome.record_id)
                    outcome = Outcome(Status.APPENDED, outcome.record_id, released=released)
                return outcome
        except RecordError as exc:
            self._reject(envelope, source, exc)
            return Outcome(Status.REJECTED, code=exc.code, reason=exc.detail)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            # A shape no check anticipated: still the sender's fault, never a crash.
            error = RecordError(ErrorCode.RECORD_MALFORMED, f"{type(exc).__name__}: {exc}"[:200])
            self._reject(envelope, source, error)
            return Outcome(Status.REJECTED, code=error.code, reason=error.detail)

    def append_local(
        self,
        signer: Signer,
        origin: str,
        kind: str,
        body: dict[str, Any],
        *,
        actor: str | None = None,
        refs: dict[str, Any] | None = None,
    ) -> Record:
        """Author, sign and append a record of this store's own origin.

        It passes exactly the checks a record from elsewhere passes. Runs in the caller's
        transaction if there is one (so a local action is one transaction).
        """
        anchor = self._require_anchor()
        with transaction(self.db):
            head = self.head(origin)
            prev = head.id if head else self._first_prev(origin, signer.kid)
            payload = Payload(
                net=anchor.net,
                kind=kind,
                origin=origin,
                kid=signer.kid,
                seq=head.seq + 1 if head else 1,
                prev=prev,
                ts=self.clock.now(),
                body=body,
                refs=refs or {},
                actor=actor,
            )
            record = seal(payload, signer)
            outcome = self._ingest(record.envelope, "local")
            if outcome.status is not Status.APPENDED:
                raise RecordError(outcome.code or ErrorCode.SCHEMA, f"local record {outcome.status.value}")
        return record

    def rebuild(self) -> None:
        """Clear every projection table and replay the log into them."""
        with transaction(self.db):
            for projector in self.projectors:
                for table in projector.tables:
                    self.db.conn.execute(f"DELETE FROM {table}")
            for _, envelope in list(self.envelopes()):
                self._project(decode_stored(envelope))

    # -- internals -----------------------------------------------------------------------

    def _require_anchor(self) -> Anchor:
        anchor = self.anchor()
        if anchor is None:
            raise RecordError(ErrorCode.KEY_UNKNOWN, "no trust anchor installed: enroll the node first")
        return anchor

    def _ingest(self, envelope: bytes, source: str) -> Outcome:
        payload_bytes, sig = split(envelope)
        rid = record_id(payload_bytes)
        if self.has(rid):
            return Outcome(Status.DUPLICATE, rid)
        payload = read_header(payload_bytes)
        anchor = self._require_anchor()
        if payload.net != anchor.net:
            raise RecordError(ErrorCode.NET_MISMATCH, f"{payload.net!r}, this network is {anchor.net!r}")
        public_key = self.public_key_for(payload)
        if public_key is None:
            return self._hold(rid, payload, envelope, source, ErrorCode.KEY_UNKNOWN)
        verify_signature(public_key, PREFIX_RECORD + payload_bytes, sig)
        kind = kinds.check_body(payload.kind, payload.body)
        record = Record(rid, payload, payload_bytes, sig, envelope)
        other = self.db.conn.execute(
            "SELECT id FROM records WHERE origin = ? AND seq = ?", (payload.origin, payload.seq)
        ).fetchone()
        if other is not None:
            return self._fork(record, other[0], source)
        head = self.head(payload.origin)
        expected = head.seq + 1 if head else 1
        if payload.seq > expected:
            return self._hold(rid, payload, envelope, source, ErrorCode.CHAIN_GAP)
        if head is not None and payload.prev != head.id:
            raise RecordError(ErrorCode.CHAIN_PREV, f"{payload.origin} #{payload.seq}")
        if head is None and not self._is_cert_of(payload.prev, payload.origin):
            raise RecordError(ErrorCode.CHAIN_PREV, f"{payload.origin} #1 must link to its certificate")
        self._check_authority(record, kind, anchor)
        self._append(record, source)
        return Outcome(Status.APPENDED, rid)

    def _check_authority(self, record: Record, kind: kinds.Kind, anchor: Anchor) -> None:
        payload = record.payload
        cert = self.db.conn.execute(
            "SELECT c.cert_id, r.last_good_seq FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id"
            " WHERE c.code = ? AND c.kid = ?",
            (payload.origin, payload.kid),
        ).fetchone()
        if cert[1] is not None and payload.seq > cert[1]:
            raise RecordError(
                ErrorCode.CERT_REVOKED, f"{payload.origin} #{payload.seq} > last good #{cert[1]}"
            )
        if kind.author is kinds.Author.ROOT and payload.origin != anchor.origin:
            raise RecordError(ErrorCode.AUTHORITY, f"{payload.kind} from {payload.origin}")
        if kind.name == kinds.NET_GENESIS:
            raise RecordError(ErrorCode.AUTHORITY, "a second genesis record")
        if kind.name == kinds.NODE_ENROLLED and not self._is_cert_of(record.body["cert"], payload.origin):
            raise RecordError(ErrorCode.AUTHORITY, "node.enrolled names a certificate of another node")

    def _is_cert_of(self, cert_id: bytes, origin: str) -> bool:
        row = self.db.conn.execute("SELECT 1 FROM certs WHERE cert_id = ? AND code = ?", (cert_id, origin))
        return row.fetchone() is not None

    def _first_prev(self, origin: str, kid: bytes) -> bytes:
        row = self.db.conn.execute(
            "SELECT cert_id FROM certs WHERE code = ? AND kid = ?", (origin, kid)
        ).fetchone()
        if row is None:
            raise RecordError(ErrorCode.CERT_UNKNOWN, f"{origin} key {kid.hex()}")
        return bytes(row[0])

    def _append(self, record: Record, source: str) -> None:
        payload = record.payload
        self.db.conn.execute(
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
                self.clock.now(),
                source,
            ),
        )
        self._project(record)

    def _project(self, record: Record) -> None:
        for projector in self.projectors:
            if record.kind in projector.kinds:
                projector.apply(self.db, record)

    def _hold(self, rid: bytes, payload: Payload, envelope: bytes, source: str, code: ErrorCode) -> Outcome:
        count, size = self.db.conn.execute(
            "SELECT count(*), coalesce(sum(length(envelope)), 0) FROM held WHERE code = ?", (code.value,)
        ).fetchone()
        if code is ErrorCode.KEY_UNKNOWN:
            full = count >= MAX_HELD_UNVERIFIED or size + len(envelope) > MAX_HELD_UNVERIFIED_BYTES
        else:
            full = count >= MAX_HELD_GAP
        if full:
            raise RecordError(code, "too many records waiting; refused instead of held")
        # Keyed by the envelope's bytes, not the record id: an unverified copy with a bad
        # signature must not take the place of the genuine one.
        self.db.conn.execute(
            "INSERT OR IGNORE INTO held (digest, id, origin, seq, code, envelope, received_at, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                hashlib.sha256(envelope).digest(),
                rid,
                payload.origin,
                payload.seq,
                code.value,
                envelope,
                self.clock.now(),
                source,
            ),
        )
        return Outcome(Status.HELD, rid, code=code)

    def _fork(self, record: Record, held_id: bytes, source: str) -> Outcome:
        self.db.conn.execute(
            "INSERT OR IGNORE INTO forks"
            " (origin, seq, held_id, other_id, other_envelope, detected_at, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.origin, record.seq, held_id, record.id, record.envelope, self.clock.now(), source),
        )
        return Outcome(Status.FORK, record.id, code=ErrorCode.CHAIN_FORK)

    def _release_held(self, appended: bytes) -> int:
        """Retry held records that the record just appended may have unblocked."""
        released = 0
        queue: deque[bytes] = deque([appended])
        while queue:
            record = self.get(queue.popleft())
            if record is None:  # pragma: no cover - appended in this transaction
                continue
            waiting_origin = record.body["node"] if record.kind == kinds.NODE_CERT else None
            rows = self.db.conn.execute(
                "SELECT digest, id, envelope, source FROM held WHERE (origin = ? AND seq = ?)"
                " OR (origin = ? AND code = ?) ORDER BY seq",
                (record.origin, record.seq + 1, waiting_origin, ErrorCode.KEY_UNKNOWN.value),
            ).fetchall()
            for digest, rid, envelope, source in rows:
                self.db.conn.execute("DELETE FROM held WHERE digest = ?", (digest,))
                try:
                    with transaction(self.db):
                        outcome = self._ingest(envelope, source)
                except RecordError as exc:
                    self._reject(envelope, source, exc)
                    continue
                if outcome.status is Status.APPENDED:
                    released += 1
                    queue.append(rid)
        return released

    def _reject(self, envelope: bytes, source: str, exc: RecordError) -> None:
        data = bytes(envelope) if isinstance(envelope, bytes | bytearray | memoryview) else b""
        origin, seq, kind, rid = _best_effort_header(data)
        now = self.clock.now()
        with transaction(self.db):
            self.db.conn.execute(
                "INSERT INTO rejected (digest, code, reason, origin, seq, kind, record_id, size, envelope,"
                " source, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (digest, code) DO UPDATE SET times = times + 1, last_at = excluded.last_at",
                (
                    hashlib.sha256(data).digest(),
                    exc.code.value,
                    exc.text("en"),
                    origin,
                    seq,
                    kind,
                    rid,
                    len(data),
                    data[: 2 * 64 * 1024],
                    source,
                    now,
                    now,
                ),
            )


def open_genesis(envelope: bytes) -> Record:
    """Check a genesis record against the key it carries (it is self-signed)."""
    payload_bytes, sig = split(envelope)
    payload = read_header(payload_bytes)
    if payload.kind != kinds.NET_GENESIS or payload.seq != 1 or payload.prev != ZERO_ID:
        raise RecordError(ErrorCode.ENROLL_ANCHOR, "not a genesis record")
    kinds.check_body(payload.kind, payload.body)
    body = payload.body
    if body["code"] != payload.origin or body["net"] != payload.net or key_id(body["sign_pk"]) != payload.kid:
        raise RecordError(ErrorCode.ENROLL_ANCHOR, "genesis header and body disagree")
    verify_signature(body["sign_pk"], PREFIX_RECORD + payload_bytes, sig)
    return Record(record_id(payload_bytes), payload, payload_bytes, sig, envelope)


def decode_stored(envelope: bytes) -> Record:
    """Decode an envelope already accepted into a log (no key lookup; verify re-checks)."""
    payload_bytes, sig = split(envelope)
    return Record(record_id(payload_bytes), read_header(payload_bytes), payload_bytes, sig, envelope)


def _best_effort_header(data: bytes) -> tuple[str | None, int | None, str | None, bytes | None]:
    """Whatever can be read of a refused envelope, for the operator's table."""
    try:
        payload_bytes, _ = split(data, max_size=max(len(data), 1))
        payload = read_header(payload_bytes)
        return payload.origin, payload.seq, payload.kind, record_id(payload_bytes)
    except RecordError:
        return None, None, None, None
