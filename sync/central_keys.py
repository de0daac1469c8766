"""Central's signing keys by role, as every store learns them from central's own chain.

Central's root key (the key of its genesis record, the anchor every node pins) signs
only key records; the day-to-day records are signed by role keys the root names (TUF's
root / targets / timestamp split, notes (d)):

========== ==================================================================
role        signs
========== ==================================================================
root        ``net.genesis``, ``key.role`` (names a role's key), ``root.rotate``
certs       ``node.cert``, ``cert.revoke``
catalog     ``catalog.release``, ``calendar.release``
grants      ``grant.issue``, ``grant.revoke`` issued by central
heartbeat   ``central.heartbeat``, ``link.receipt``, ``clerk.set`` (the online key)
========== ==================================================================

Until the root names a key for a role, the root key signs that role's records itself, so
a network can start with one key; once a role has been named, the root never signs its
records again (``E_KEY_ROLE``). ``tongban central init`` names every role at once.

**Rotation.** A ``key.role`` record at seq *s* makes its key the role's key; the role's
previous key is retired *after s*: a record of central signed with it at a later seq is
refused (``E_KEY_RETIRED``). A ``root.rotate`` at seq *s*, signed by the current root,
names the next root and carries that key's signature over
``PREFIX_ROOT || net || old kid || new key`` (TUF: the new root is signed by the old and
the new). Central's chain is dense at every store and applied in seq order, so a node
that was offline through any number of rotations checks each record against exactly the
keys valid at its place in the chain: nodes trust the root, never re-provisioned.

Table ``central_keys`` (a projection of those records): one row per key ever named, with
its role, the seq it was named at and the seq it was retired after (NULL: current).
Table ``heartbeat``: the newest ``central.heartbeat`` held (one row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.errors import ErrorCode, RecordError
from sync import codec, kinds
from sync.db import execute_all
from sync.envelope import Record, key_id, read_header, record_id, split, verify_signature

PREFIX_ROOT = b"tongban/root/v1\x00"
CLOCK_TOLERANCE = 300
"""Seconds a node's clock may lag the newest heartbeat before it raises a clock alarm."""

ROLE_KINDS: dict[str, frozenset[str]] = {
    "root": frozenset({kinds.NET_GENESIS, kinds.KEY_ROLE, kinds.ROOT_ROTATE}),
    "certs": frozenset({kinds.NODE_CERT, kinds.CERT_REVOKE}),
    "catalog": frozenset({kinds.CATALOG_RELEASE, kinds.CALENDAR_RELEASE}),
    "grants": frozenset({kinds.GRANT_ISSUE, kinds.GRANT_REVOKE}),
    "heartbeat": frozenset({kinds.HEARTBEAT, kinds.LINK_RECEIPT, kinds.CLERK_SET}),
}
ROLES = tuple(ROLE_KINDS)
DELEGATED_ROLES = tuple(r for r in ROLES if r != "root")
_ROLE_OF = {kind: role for role, names in ROLE_KINDS.items() for kind in names}


def role_of(kind: str) -> str | None:
    """The role whose key signs central's records of ``kind``; None: central signs none."""
    return _ROLE_OF.get(kind)


def root_proof_message(net: str, old_kid: bytes, new_pk: bytes) -> bytes:
    """What the next root key signs to prove it is held by whoever rotates to it."""
    return PREFIX_ROOT + net.encode() + b"\x00" + old_kid + new_pk


@dataclass(frozen=True)
class CentralKey:
    kid: bytes
    sign_pk: bytes
    role: str
    record_id: bytes
    since_seq: int
    until_seq: int | None


def current_key(db: Database, role: str) -> CentralKey | None:
    """The key that signs ``role``'s records now (None: the role has no key yet)."""
    row = db.conn.execute(
        "SELECT kid, sign_pk, role, record_id, since_seq, until_seq FROM central_keys"
        " WHERE role = ? AND until_seq IS NULL",
        (role,),
    ).fetchone()
    return _key(row) if row else None


def all_keys(db: Database) -> list[CentralKey]:
    rows = db.conn.execute(
        "SELECT kid, sign_pk, role, record_id, since_seq, until_seq FROM central_keys"
        " ORDER BY since_seq, role"
    ).fetchall()
    return [_key(r) for r in rows]


def _key(row: tuple[Any, ...]) -> CentralKey:
    kid, sign_pk, role, record_id, since, until = row
    return CentralKey(bytes(kid), bytes(sign_pk), str(role), bytes(record_id), int(since), until)


@dataclass(frozen=True)
class Heartbeat:
    record_id: bytes
    seq: int
    time: int
    exp: int
    heads: dict[str, int]


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


def latest_heartbeat(db: Database) -> Heartbeat | None:
    row = db.conn.execute("SELECT record_id, seq, time, exp, heads FROM heartbeat").fetchone()
    if row is None:
        return None
    return Heartbeat(bytes(row[0]), row[1], row[2], row[3], codec.decode(bytes(row[4])))


class CentralKeysProjector:
    """Keeps ``central_keys`` and ``heartbeat`` in step with central's chain."""

    kinds = frozenset({kinds.NET_GENESIS, kinds.KEY_ROLE, kinds.ROOT_ROTATE, kinds.HEARTBEAT})
    tables: tuple[str, ...] = ("central_keys", "heartbeat")

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        conn = db.conn
        if record.kind == kinds.HEARTBEAT:
            conn.execute(
                "INSERT INTO heartbeat (one, record_id, seq, time, exp, heads) VALUES (1, ?, ?, ?, ?, ?)"
                " ON CONFLICT (one) DO UPDATE SET record_id = excluded.record_id, seq = excluded.seq,"
                " time = excluded.time, exp = excluded.exp, heads = excluded.heads"
                " WHERE excluded.seq > heartbeat.seq",
                (record.id, record.seq, body["time"], body["exp"], codec.encode(body["heads"])),
            )
            return
        if record.kind == kinds.NET_GENESIS:
            role, sign_pk = "root", body["sign_pk"]
        elif record.kind == kinds.KEY_ROLE:
            role, sign_pk = body["role"], body["sign_pk"]
            if role not in DELEGATED_ROLES:
                raise RecordError(ErrorCode.KEY_ROLE, f"key.role names an unknown role {role!r}")
        else:
            role, sign_pk = "root", body["sign_pk"]
            message = root_proof_message(record.payload.net, record.payload.kid, sign_pk)
            try:
                verify_signature(sign_pk, message, body["proof"])
            except RecordError as exc:
                raise RecordError(ErrorCode.ROOT_PROOF, "the new root did not sign the hand-over") from exc
        kid = key_id(sign_pk)
        if conn.execute("SELECT 1 FROM central_keys WHERE kid = ? OR sign_pk = ?", (kid, sign_pk)).fetchone():
            raise RecordError(ErrorCode.KEY_ROLE, f"central key {kid.hex()} was named before: never reused")
        conn.execute(
            "UPDATE central_keys SET until_seq = ? WHERE role = ? AND until_seq IS NULL", (record.seq, role)
        )
        conn.execute(
            "INSERT INTO central_keys (kid, sign_pk, role, record_id, since_seq, until_seq)"
            " VALUES (?, ?, ?, ?, ?, NULL)",
            (kid, sign_pk, role, record.id, record.seq),
        )


def add_central_key_migrations(migrations: Migrations) -> None:
    """Register the tables above on the ``log`` migration set."""

    @migrations(name="0007_central_keys")
    def _central_keys(db: Database) -> None:
        execute_all(
            db,
            [
                """
                CREATE TABLE central_keys (
                    kid BLOB PRIMARY KEY,
                    sign_pk BLOB NOT NULL UNIQUE,
                    role TEXT NOT NULL,
                    record_id BLOB NOT NULL,
                    since_seq INTEGER NOT NULL,
                    until_seq INTEGER
                )
                """,
                "CREATE UNIQUE INDEX central_keys_current ON central_keys (role) WHERE until_seq IS NULL",
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
            ],
        )
        # A store that held central's records before these tables existed: project them now.
        projector = CentralKeysProjector()
        rows = db.conn.execute(
            "SELECT envelope FROM records WHERE origin = (SELECT CAST(value AS TEXT) FROM meta"
            " WHERE key = 'anchor_origin') AND kind IN (?, ?, ?, ?) ORDER BY seq",
            tuple(projector.kinds),
        ).fetchall()
        for (envelope,) in rows:
            payload_bytes, sig = split(bytes(envelope))
            payload = read_header(payload_bytes)
            rid = record_id(payload_bytes)
            projector.apply(db, Record(rid, payload, payload_bytes, sig, bytes(envelope)))
