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
7. chain: same (origin, seq) different id → **fork evidence**; a gap → **held** for an
   origin the store holds whole (dense), accepted for one it holds in part (sparse,
   :mod:`sync.record.ingest`); ``prev`` must be the id of (origin, seq-1) when that is held
   (for seq 1: a certificate of origin);                     E_CHAIN_*
8. authority: the signer's certificate not revoked before ``seq``; root-only kinds
   from central;                                             E_CERT_REVOKED / E_AUTHORITY
9. append and update every projection in one transaction (a projector may still refuse,
   e.g. a catalog rollback, and then nothing is written).

A refused record is never dropped silently: it is kept in ``rejected`` with its code,
reason and bytes (counted, once per distinct bytes and code), within a bound per source
(:mod:`sync.record.refused`). Held records are retried
when what they wait for arrives. Update and delete on ``records`` are refused by triggers.

:meth:`RecordLog.ingest_many` runs a whole batch in one transaction (a savepoint per
record that may write more than once); the checks themselves live in
:mod:`sync.record.ingest`, which sees the log only through :class:`~sync.record.ingest.LogView`.

The log always runs the projectors of the key directory (:mod:`sync.record.trust`): its
own checks read those tables. Everything else a store derives from its records, it hands
to the log as projectors (:mod:`sync.projection`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlite_utils import Database

from core.admin import is_within
from core.clock import Clock
from core.errors import AuthorityError, EnrollmentError, ErrorCode, RecordError, TongbanError, error
from sync.record import forks, kinds, trust
from sync.record.db import transaction
from sync.record.envelope import (
    PREFIX_RECORD,
    ZERO_ID,
    Keyring,
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
from sync.record.ingest import Parsed, Pass, parse
from sync.record.outcome import REFUSALS, Anchor, Head, Outcome, Status
from sync.record.projector import Projector, Projectors
from sync.record.verify import CHUNK, SERIAL, Verifier

__all__ = ["Anchor", "Head", "Outcome", "Projector", "RecordLog", "Status"]

DensePolicy = Callable[[str], bool]
"""Whether a store holds every record of an origin (see :mod:`sync.record.ingest`)."""


def all_dense(origin: str) -> bool:
    """Every origin is held whole: central's policy, and the default."""
    return True


def dense_for(node: str, root: str) -> DensePolicy:
    """The policy of node ``node``: the root's chain and its own subtree are held whole."""

    def dense(origin: str) -> bool:
        if origin == root:
            return True
        try:
            return is_within(origin, node)
        except TongbanError:
            return False

    return dense


def dense_policy_of(db: Database) -> DensePolicy:
    """The policy a store's own records imply: whose log it is, and under which root.

    The store's own origin is the one it authors (``source = 'local'``); a store that
    authored nothing yet, or central's, holds every origin whole.
    """
    anchor = anchor_of(db)
    own = db.conn.execute("SELECT origin FROM records WHERE source = 'local' LIMIT 1").fetchone()
    if anchor is None or own is None or own[0] == anchor.origin:
        return all_dense
    return dense_for(own[0], anchor.origin)


def anchor_of(db: Database) -> Anchor | None:
    """The trust anchor pinned in ``db``, or None before enrollment."""
    rows = dict(db.conn.execute("SELECT key, value FROM meta").fetchall())
    if "anchor_id" not in rows:
        return None
    return Anchor(
        net=rows["net"].decode(), origin=rows["anchor_origin"].decode(), genesis_id=rows["anchor_id"]
    )


class RecordLog:
    """The log of one store. One instance per database connection; not thread-safe."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        projectors: Sequence[Projector] = (),
        *,
        dense: DensePolicy = all_dense,
    ) -> None:
        self.db = db
        self.clock = clock
        self.dense = dense
        self.projectors = Projectors((trust.TrustProjector(), trust.CentralKeysProjector(), *projectors))

    # -- reading -------------------------------------------------------------------------

    def anchor(self) -> Anchor | None:
        return anchor_of(self.db)

    def head(self, origin: str) -> Head | None:
        row = self.db.conn.execute(
            "SELECT seq, id FROM records WHERE origin = ? ORDER BY seq DESC LIMIT 1", (origin,)
        ).fetchone()
        return Head(row[0], row[1]) if row else None

    def frozen_from(self, origin: str) -> int | None:
        return forks.frozen_from(self.db, origin)  # where a fork freezes origin, if one does

    def heads(self) -> dict[str, Head]:
        rows = self.db.conn.execute("SELECT origin, max(seq) FROM records GROUP BY origin").fetchall()
        return {origin: self.head(origin) or Head(0, ZERO_ID) for origin, _ in rows}

    def id_at(self, origin: str, seq: int) -> bytes | None:
        """The id of ``origin``'s record ``seq``, if this store holds it."""
        row = self.db.conn.execute(
            "SELECT id FROM records WHERE origin = ? AND seq = ?", (origin, seq)
        ).fetchone()
        return bytes(row[0]) if row else None

    def has(self, rid: bytes) -> bool:
        return self.db.conn.execute("SELECT 1 FROM records WHERE id = ?", (rid,)).fetchone() is not None

    def get(self, rid: bytes) -> Record | None:
        return stored_record(self.db, rid)

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

    # -- writing -------------------------------------------------------------------------

    def install_anchor(
        self, envelope: bytes, *, expected_id: bytes | None = None, source: str = "anchor"
    ) -> Record:
        """Pin central's self-signed genesis record as this log's trust anchor.

        Raises:
            RecordError: the genesis is malformed or its self-signature is bad.
            EnrollmentError: ``E_ENROLL_ANCHOR`` when it is not the expected anchor, not a
            genesis record, or a different anchor is already installed.
        """
        record = open_genesis(envelope)
        if expected_id is not None and record.id != expected_id:
            raise EnrollmentError(ErrorCode.ENROLL_ANCHOR, "genesis id differs from the expected fingerprint")
        current = self.anchor()
        if current is not None:
            if current.genesis_id != record.id:
                raise EnrollmentError(
                    ErrorCode.ENROLL_ANCHOR, "a different trust anchor is installed already"
                )
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
            Pass(self, self.clock.now()).append(record, source)
        return record

    def ingest(self, envelope: bytes, source: str) -> Outcome:
        """Check and store one envelope from ``source`` (a peer code, "bundle", "local")."""
        return self.ingest_many([envelope], source)[0]

    def ingest_many(
        self,
        envelopes: Sequence[bytes],
        source: str,
        *,
        verifier: Verifier = SERIAL,
        admit: Callable[[str], bool] | None = None,
        signed: tuple[str, int] | None = None,
    ) -> list[Outcome]:
        """Check and store a batch in one transaction; one outcome per envelope, in order.

        Each record runs in a savepoint, so a refused record (kept in ``rejected``) never
        undoes the others. Signatures whose keys are already held are checked first, all
        at once, by ``verifier`` (which may use several cores). Nothing is committed when
        the store itself fails (``sqlite3`` errors propagate): the sender sends again.
        ``admit``, if given, says which origins ``source`` may bring; a record not held
        yet of any other origin is refused (``E_SYNC_NOT_CHILD``). ``signed``: this store's
        origin and watermark, beyond which a record of it is someone else's (``E_CHAIN_FORK``).
        """
        outcomes: list[Outcome] = []
        with transaction(self.db):
            checks = Pass(self, self.clock.now(), admit, signed)
            parsed: list[Parsed] = []
            for start in range(0, len(envelopes), CHUNK):
                chunk = [parse(envelope) for envelope in envelopes[start : start + CHUNK]]
                checks.prepare(chunk, start, verifier)
                parsed.extend(chunk)
            for index, item in enumerate(parsed):
                outcomes.append(self._one(checks, item, source, index))
        return outcomes

    def _one(self, checks: Pass, item: Parsed, source: str, index: int) -> Outcome:
        try:
            if not checks.writes_more_than_once(item):
                # One INSERT at most, made last, after a projection that refuses before it
                # writes: a refusal leaves nothing to undo.
                return checks.ingest(item, source, index)
            with transaction(self.db):
                outcome = checks.ingest(item, source, index)
                if outcome.status is Status.APPENDED and item.payload is not None and item.rid is not None:
                    record = Record(item.rid, item.payload, item.payload_bytes, item.sig, item.envelope)
                    released = checks.release_held(record)
                    outcome = Outcome(Status.APPENDED, item.rid, released=released)
                return outcome
        except REFUSALS as exc:
            again = checks.reject(item.envelope, source, exc)
            return Outcome(Status.REJECTED, code=exc.code, reason=exc.detail, again=again)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            # A shape no check anticipated: still the sender's fault, never a crash.
            error = RecordError(ErrorCode.RECORD_MALFORMED, f"{type(exc).__name__}: {exc}"[:200])
            again = checks.reject(item.envelope, source, error)
            return Outcome(Status.REJECTED, code=error.code, reason=error.detail, again=again)

    def append_local(
        self,
        signer: Signer | Keyring,
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
        anchor = self.require_anchor()
        signer = _signer_of(signer, kind)
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
            outcome = Pass(self, self.clock.now()).ingest(parse(record.envelope), "local")
            if outcome.status is not Status.APPENDED:
                raise error(outcome.code or ErrorCode.SCHEMA, f"local record {outcome.status.value}")
        return record

    def rebuild(self) -> None:
        """Clear every projection table and replay the log into them."""
        with transaction(self.db):
            for table in self.projectors.tables:
                self.db.conn.execute(f"DELETE FROM {table}")
            for _, envelope in list(self.envelopes()):
                self.project(decode_stored(envelope))

    def require_anchor(self) -> Anchor:
        anchor = self.anchor()
        if anchor is None:
            raise RecordError(ErrorCode.KEY_UNKNOWN, "no trust anchor installed: enroll the node first")
        return anchor

    def project(self, record: Record, checked: object = None) -> None:
        """Update every projection that reads ``record``'s kind (inside the append's transaction).

        ``checked``: what :func:`sync.record.kinds.check` built from the body, if it just did.
        """
        self.projectors.project(self.db, record, checked)

    def _first_prev(self, origin: str, kid: bytes) -> bytes:
        cert = trust.cert_of_key(self.db, origin, kid)
        if cert is None:
            raise AuthorityError(ErrorCode.CERT_UNKNOWN, f"{origin} key {kid.hex()}")
        return cert


_KEYRINGS: dict[type, bool] = {}


def _signer_of(signer: Signer | Keyring, kind: str) -> Signer:
    """The key that signs ``kind``: ``signer`` itself or, from a keyring, its key for the
    kind. Whether a type is a keyring is remembered: checking a runtime protocol costs tens
    of microseconds, and every local record asks."""
    known = _KEYRINGS.get(type(signer))
    if known is None:
        known = _KEYRINGS[type(signer)] = isinstance(signer, Keyring)
    return cast(Keyring, signer).signer_for(kind) if known else cast(Signer, signer)


def open_genesis(envelope: bytes) -> Record:
    """Check a genesis record against the key it carries (it is self-signed)."""
    payload_bytes, sig = split(envelope)
    payload = read_header(payload_bytes)
    if payload.kind != kinds.NET_GENESIS or payload.seq != 1 or payload.prev != ZERO_ID:
        raise EnrollmentError(ErrorCode.ENROLL_ANCHOR, "not a genesis record")
    kinds.check_body(payload.kind, payload.body)
    body = payload.body
    if body["code"] != payload.origin or body["net"] != payload.net or key_id(body["sign_pk"]) != payload.kid:
        raise EnrollmentError(ErrorCode.ENROLL_ANCHOR, "genesis header and body disagree")
    verify_signature(body["sign_pk"], PREFIX_RECORD + payload_bytes, sig)
    return Record(record_id(payload_bytes), payload, payload_bytes, sig, envelope)


def stored_record(db: Database, rid: bytes) -> Record | None:
    """The record ``rid`` as ``db`` holds it, or None."""
    row = db.conn.execute("SELECT envelope FROM records WHERE id = ?", (rid,)).fetchone()
    return decode_stored(bytes(row[0])) if row else None


def decode_stored(envelope: bytes) -> Record:
    """Decode an envelope already accepted into a log (no key lookup; verify re-checks)."""
    payload_bytes, sig = split(envelope)
    return Record(record_id(payload_bytes), read_header(payload_bytes), payload_bytes, sig, envelope)


def envelopes_of(db: Database, origin: str | None) -> list[bytes]:
    """Every envelope of ``origin`` held, in seq order."""
    rows = db.conn.execute("SELECT envelope FROM records WHERE origin = ? ORDER BY seq", (origin,))
    return [bytes(envelope) for (envelope,) in rows]


def signed_at(db: Database, ids: Sequence[bytes]) -> dict[bytes, int]:
    """When each of the records ``ids`` held was signed (its header's ``ts``), by id."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.conn.execute(f"SELECT id, ts FROM records WHERE id IN ({marks})", tuple(ids))
    return {bytes(rid): int(ts) for rid, ts in rows}


@dataclass(frozen=True)
class ChainPlace:
    """Where a record stands in its origin's chain: its seq, and when the record before it
    was signed (None: it is the first, or its predecessor is not held)."""

    seq: int
    before_ts: int | None


def chain_places(db: Database, ids: Sequence[bytes]) -> dict[bytes, ChainPlace]:
    """The place in its chain of each of the records ``ids`` held, by id."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.conn.execute(
        "SELECT r.id, r.seq, p.ts FROM records r"
        " LEFT JOIN records p ON p.origin = r.origin AND p.seq = r.seq - 1"
        f" WHERE r.id IN ({marks})",
        tuple(ids),
    )
    return {bytes(rid): ChainPlace(int(seq), before) for rid, seq, before in rows}


def envelopes_of_kind(db: Database, kind: str) -> list[bytes]:
    """Every envelope of ``kind`` held, in arrival order."""
    rows = db.conn.execute("SELECT envelope FROM records WHERE kind = ? ORDER BY arrival", (kind,))
    return [bytes(envelope) for (envelope,) in rows]


def signed_with(db: Database, origin: str, kid: bytes) -> bool:
    """Whether ``db`` holds a record of ``origin`` signed with the key ``kid``."""
    row = db.conn.execute("SELECT 1 FROM records WHERE origin = ? AND kid = ? LIMIT 1", (origin, kid))
    return row.fetchone() is not None


LOG_TABLES = (
    """
    CREATE TABLE records (
        arrival INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        kid BLOB NOT NULL,
        ts INTEGER NOT NULL,
        actor TEXT,
        envelope BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        UNIQUE (origin, seq)
    )
    """,
    "CREATE INDEX records_kind ON records (kind, arrival)",
    """
    CREATE TRIGGER records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'E_STORE_APPEND_ONLY: records are append-only'); END
    """,
    """
    CREATE TRIGGER records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'E_STORE_APPEND_ONLY: records are append-only'); END
    """,
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    """
    CREATE TABLE rejected (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        digest BLOB NOT NULL,
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        origin TEXT,
        seq INTEGER,
        kind TEXT,
        record_id BLOB,
        size INTEGER NOT NULL,
        envelope BLOB NOT NULL,
        source TEXT NOT NULL,
        first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        times INTEGER NOT NULL DEFAULT 1,
        UNIQUE (digest, code)
    )
    """,
    """
    CREATE TABLE held (
        digest BLOB PRIMARY KEY,
        id BLOB NOT NULL,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        code TEXT NOT NULL,
        envelope BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL
    )
    """,
    "CREATE INDEX held_origin ON held (origin, seq)",
    """
    CREATE TABLE forks (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        held_id BLOB NOT NULL,
        other_id BLOB NOT NULL UNIQUE,
        other_envelope BLOB NOT NULL,
        detected_at INTEGER NOT NULL,
        source TEXT NOT NULL
    )
    """,
)
"""Migration ``log/0001_records``: ``records`` is append-only (triggers refuse update and
delete); ``rejected``, ``held`` and ``forks`` keep everything ingest refused, parked or found
as evidence; ``meta`` holds the pinned trust anchor."""
