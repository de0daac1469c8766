"""The key directory the record layer verifies against: certificates, revocations, central's keys.

Ingest checks every record's signature with the key its origin's certificate names, and
central's records with the key of their role; the tables here are that directory, kept
in step with the log by the two projectors the log always runs, whatever else a store
projects (:class:`sync.record.log.RecordLog`).

Tables:

``certs``
    one row per certificate (central's genesis counts as its own certificate, and a
    department's has the tier ``department``): code, tier, parent, name, signing key and
    key id, CURVE key, validity. The items a department decides are
    :mod:`sync.projection.departments`'.
``revocations``
    one row per revoked certificate, with the last sequence number still good.
``central_keys``
    one row per key central's root ever named, with its role, the seq it was named at
    and the seq it was retired after (NULL: current).
``quarantined`` (a view)
    records signed with a key after its revocation's cut-off that arrived before the
    revocation did. They stay in the append-only log as evidence; every projection that
    acts on records must leave them out.

**Central's keys by role.** Central's root key (the key of its genesis record, the anchor
every node pins) signs only key records; the day-to-day records are signed by role keys
the root names (TUF's root / targets / timestamp split, notes (d)):

========== ==================================================================
role        signs
========== ==================================================================
root        ``net.genesis``, ``key.role`` (names a role's key), ``root.rotate``
certs       ``node.cert``, ``department.cert``, ``cert.revoke``
catalog     ``catalog.release``, ``calendar.release``
grants      ``grant.issue``, ``grant.revoke`` issued by central
heartbeat   ``central.heartbeat``, ``link.receipt``, ``clerk.set`` (the online key)
peers       ``peer.cert``, ``peer.revoke`` (cross-certifications of other cities)
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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from core.errors import ErrorCode, RecordError
from sync.record import kinds
from sync.record.envelope import Record, key_id, verify_signature

FOREVER = 2**63 - 1
PREFIX_ROOT = b"tongban/root/v1\x00"

ROLE_KINDS: dict[str, frozenset[str]] = {
    "root": frozenset({kinds.NET_GENESIS, kinds.KEY_ROLE, kinds.ROOT_ROTATE}),
    "certs": frozenset({kinds.NODE_CERT, kinds.DEPARTMENT_CERT, kinds.CERT_REVOKE}),
    "catalog": frozenset({kinds.CATALOG_RELEASE, kinds.CALENDAR_RELEASE}),
    "grants": frozenset({kinds.GRANT_ISSUE, kinds.GRANT_REVOKE}),
    "heartbeat": frozenset({kinds.HEARTBEAT, kinds.LINK_RECEIPT, kinds.CLERK_SET}),
    "peers": frozenset(
        {kinds.PEER_CERT, kinds.PEER_REVOKE, kinds.PEER_ITEMS, kinds.CASE_INTAKE, kinds.CASE_EVENT}
    ),
}
KEY_ROLES = tuple(ROLE_KINDS)
DELEGATED_ROLES = tuple(r for r in KEY_ROLES if r != "root")
_ROLE_OF = {kind: role for role, names in ROLE_KINDS.items() for kind in names}

TRUST_KINDS = frozenset(
    {
        kinds.NET_GENESIS,
        kinds.NODE_CERT,
        kinds.DEPARTMENT_CERT,
        kinds.CERT_REVOKE,
        kinds.KEY_ROLE,
        kinds.ROOT_ROTATE,
    }
)
"""Kinds that change the key directory: ingest forgets the keys it looked up."""


def role_of(kind: str) -> str | None:
    """The role whose key signs central's records of ``kind``; None: central signs none."""
    return _ROLE_OF.get(kind)


def root_proof_message(net: str, old_kid: bytes, new_pk: bytes) -> bytes:
    """What the next root key signs to prove it is held by whoever rotates to it."""
    return PREFIX_ROOT + net.encode() + b"\x00" + old_kid + new_pk


# -- the projectors ------------------------------------------------------------------------


class TrustProjector:
    """Certificates and revocations: the key directory that ingest verifies against."""

    kinds = frozenset({kinds.NET_GENESIS, kinds.NODE_CERT, kinds.DEPARTMENT_CERT, kinds.CERT_REVOKE})
    tables: tuple[str, ...] = ("certs", "revocations")

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        if record.kind == kinds.NET_GENESIS:
            row = {
                "cert_id": record.id,
                "code": body["code"],
                "tier": "central",
                "parent": None,
                "name": body["name"],
                "sign_pk": body["sign_pk"],
                "kid": key_id(body["sign_pk"]),
                "curve_pk": body["curve_pk"],
                "nbf": 0,
                "exp": FOREVER,
                "issued_seq": record.seq,
                "issued_ts": record.payload.ts,
            }
        elif record.kind in (kinds.NODE_CERT, kinds.DEPARTMENT_CERT):
            department = record.kind == kinds.DEPARTMENT_CERT
            row = {
                "cert_id": record.id,
                "code": body["code"] if department else body["node"],
                "tier": "department" if department else body["tier"],
                "parent": body["parent"],
                "name": body["name"],
                "sign_pk": body["sign_pk"],
                "kid": key_id(body["sign_pk"]),
                "curve_pk": body["curve_pk"],
                "nbf": body["nbf"],
                "exp": body["exp"],
                "issued_seq": record.seq,
                "issued_ts": record.payload.ts,
            }
        else:
            db.conn.execute(
                "INSERT INTO revocations (cert_id, node, last_good_seq, effective, reason, record_id)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (cert_id) DO UPDATE SET"
                " last_good_seq = min(last_good_seq, excluded.last_good_seq)",
                (
                    body["cert"],
                    body["node"],
                    body["last_good_seq"],
                    body["effective"],
                    body["reason"],
                    record.id,
                ),
            )
            return
        if _key_taken(db, row["code"], row["kid"], row["curve_pk"]):
            raise RecordError(ErrorCode.SCHEMA, f"a key of {row['code']} is already certified")
        db.conn.execute(
            "INSERT INTO certs (cert_id, code, tier, parent, name, sign_pk, kid, curve_pk, nbf, exp,"
            " issued_seq, issued_ts) VALUES (:cert_id, :code, :tier, :parent, :name, :sign_pk, :kid,"
            " :curve_pk, :nbf, :exp, :issued_seq, :issued_ts)",
            row,
        )


def _key_taken(db: Database, code: str, kid: bytes, curve_pk: bytes) -> bool:
    """Whether a certificate already binds this (code, key) or this CURVE key: the table's
    unique constraints, asked before the insert so a refusal is a record's, not the store's."""
    row = db.conn.execute(
        "SELECT 1 FROM certs WHERE (code = ? AND kid = ?) OR curve_pk = ? LIMIT 1", (code, kid, curve_pk)
    ).fetchone()
    return row is not None


class CentralKeysProjector:
    """Keeps ``central_keys`` in step with central's chain."""

    kinds = frozenset({kinds.NET_GENESIS, kinds.KEY_ROLE, kinds.ROOT_ROTATE})
    tables: tuple[str, ...] = ("central_keys",)

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        body = record.body
        conn = db.conn
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


# -- readers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """What ingest needs of the key an (origin, kid) names."""

    sign_pk: bytes
    cert_id: bytes
    last_good_seq: int | None
    role: str | None = None  # central's keys: the role, and
    retired_after: int | None = None  # the seq after which the key signs no more


def central_signing_key(db: Database, kid: bytes) -> SigningKey | None:
    row = db.conn.execute(
        "SELECT sign_pk, record_id, role, until_seq FROM central_keys WHERE kid = ?", (kid,)
    ).fetchone()
    return SigningKey(bytes(row[0]), bytes(row[1]), None, row[2], row[3]) if row else None


def node_signing_key(db: Database, origin: str, kid: bytes) -> SigningKey | None:
    row = db.conn.execute(
        "SELECT c.sign_pk, c.cert_id, r.last_good_seq FROM certs c"
        " LEFT JOIN revocations r ON r.cert_id = c.cert_id WHERE c.code = ? AND c.kid = ?",
        (origin, kid),
    ).fetchone()
    return SigningKey(bytes(row[0]), bytes(row[1]), row[2]) if row else None


def role_named(db: Database, role: str) -> bool:
    """Whether central's log has ever named a key for ``role``."""
    return (
        db.conn.execute("SELECT 1 FROM central_keys WHERE role = ? LIMIT 1", (role,)).fetchone() is not None
    )


def is_cert_of(db: Database, cert_id: bytes, origin: str) -> bool:
    row = db.conn.execute("SELECT 1 FROM certs WHERE cert_id = ? AND code = ?", (cert_id, origin))
    return row.fetchone() is not None


def cert_of_key(db: Database, code: str, kid: bytes) -> bytes | None:
    """The certificate that binds ``code`` to the key ``kid``, if one is held."""
    row = db.conn.execute("SELECT cert_id FROM certs WHERE code = ? AND kid = ?", (code, kid)).fetchone()
    return bytes(row[0]) if row else None


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
    return _central_key(row) if row else None


def all_keys(db: Database) -> list[CentralKey]:
    rows = db.conn.execute(
        "SELECT kid, sign_pk, role, record_id, since_seq, until_seq FROM central_keys"
        " ORDER BY since_seq, role"
    ).fetchall()
    return [_central_key(r) for r in rows]


def _central_key(row: tuple[Any, ...]) -> CentralKey:
    kid, sign_pk, role, record_id, since, until = row
    return CentralKey(bytes(kid), bytes(sign_pk), str(role), bytes(record_id), int(since), until)


@dataclass(frozen=True)
class Certificate:
    """One row of ``certs``, with its revocation if it has one."""

    cert_id: bytes
    code: str
    tier: str
    parent: str | None
    name: str
    kid: bytes
    curve_pk: bytes
    nbf: int
    exp: int
    issued_seq: int
    revoked: bool
    last_good_seq: int | None
    reason: str

    def live(self, now: int) -> bool:
        """Unrevoked and within its validity at ``now``."""
        return not self.revoked and self.nbf <= now < self.exp


_CERT_COLUMNS = (
    "c.cert_id, c.code, c.tier, c.parent, c.name, c.kid, c.curve_pk, c.nbf, c.exp, c.issued_seq,"
    " r.cert_id IS NOT NULL, r.last_good_seq, coalesce(r.reason, '')"
)


def _certificate(row: tuple[Any, ...]) -> Certificate:
    cert_id, code, tier, parent, name, kid, curve_pk, nbf, exp, seq, revoked, last_good, reason = row
    return Certificate(
        bytes(cert_id), code, tier, parent, name, bytes(kid), bytes(curve_pk), nbf, exp, seq,
        bool(revoked), last_good, reason,
    )  # fmt: skip


def certificates(db: Database, code: str | None = None) -> list[Certificate]:
    """Every certificate held (of ``code`` only, if given), by code, newest first."""
    where, params = ("WHERE c.code = ?", (code,)) if code is not None else ("", ())
    rows = db.conn.execute(
        f"SELECT {_CERT_COLUMNS} FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id"
        f" {where} ORDER BY c.code, c.issued_seq DESC",
        params,
    ).fetchall()
    return [_certificate(row) for row in rows]


def unrevoked(db: Database, code: str) -> list[Certificate]:
    """Certificates of ``code`` not revoked, expired or not: their keys still sign."""
    return [cert for cert in certificates(db, code) if not cert.revoked]


def children_of(db: Database, parent: str) -> list[Certificate]:
    """The unrevoked certificates whose parent is ``parent``, by code."""
    rows = db.conn.execute(
        f"SELECT {_CERT_COLUMNS} FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id"
        " WHERE c.parent = ? AND r.cert_id IS NULL ORDER BY c.code, c.issued_seq DESC",
        (parent,),
    ).fetchall()
    return [_certificate(row) for row in rows]


def key_holder(db: Database, sign_pk: bytes, curve_pk: bytes) -> str | None:
    """The code certified for either key, if any is."""
    row = db.conn.execute(
        "SELECT code FROM certs WHERE sign_pk = ? OR curve_pk = ?", (sign_pk, curve_pk)
    ).fetchone()
    return str(row[0]) if row else None


def certified_code(kind: str, body: dict[str, Any]) -> str | None:
    """The code a certificate record of ``kind`` certifies (None: not a certificate)."""
    if kind == kinds.NODE_CERT:
        return str(body["node"])
    if kind == kinds.DEPARTMENT_CERT:
        return str(body["code"])
    return None


def certified_codes(db: Database) -> set[str]:
    return {str(row[0]) for row in db.conn.execute("SELECT DISTINCT code FROM certs")}


def live_codes(db: Database) -> set[str]:
    """Codes with at least one unrevoked certificate (expired or not)."""
    rows = db.conn.execute(
        "SELECT DISTINCT c.code FROM certs c LEFT JOIN revocations r ON r.cert_id = c.cert_id"
        " WHERE r.cert_id IS NULL"
    )
    return {str(code) for (code,) in rows}


def directory_mark(db: Database) -> tuple[Any, ...]:
    """A cheap fingerprint of the directory: it changes when a certificate or a revocation
    is added or a cut-off lowered (a parent re-reads who may connect only then)."""
    return (
        tuple(db.conn.execute("SELECT count(*), max(issued_seq) FROM certs").fetchone()),
        tuple(db.conn.execute("SELECT count(*), sum(last_good_seq) FROM revocations").fetchone()),
    )


def revocation_count(db: Database) -> int:
    return int(db.conn.execute("SELECT count(*) FROM revocations").fetchone()[0])


def certificate_count(db: Database) -> int:
    return int(db.conn.execute("SELECT count(*) FROM certs").fetchone()[0])


def quarantined_count(db: Database) -> int:
    return int(db.conn.execute("SELECT count(*) FROM quarantined").fetchone()[0])


def quarantined_of(db: Database, node: str | None = None) -> list[tuple[bytes, str]]:
    """(record id, kind) of every record in the ``quarantined`` view (of ``node``'s only, if
    given), in arrival order."""
    where, params = ("WHERE origin = ?", (node,)) if node is not None else ("", ())
    rows = db.conn.execute(f"SELECT id, kind FROM quarantined {where} ORDER BY arrival", params)
    return [(bytes(rid), str(kind)) for rid, kind in rows]


# -- the tables, as the shipped migrations create them (sync.schema runs them) --------------

TRUST_TABLES = (
    """
    CREATE TABLE certs (
        cert_id BLOB PRIMARY KEY,
        code TEXT NOT NULL,
        tier TEXT NOT NULL,
        parent TEXT,
        name TEXT NOT NULL,
        sign_pk BLOB NOT NULL,
        kid BLOB NOT NULL,
        curve_pk BLOB NOT NULL,
        nbf INTEGER NOT NULL,
        exp INTEGER NOT NULL,
        issued_seq INTEGER NOT NULL,
        issued_ts INTEGER NOT NULL,
        UNIQUE (code, kid)
    )
    """,
    """
    CREATE UNIQUE INDEX certs_curve ON certs (curve_pk)
    """,
    """
    CREATE TABLE revocations (
        cert_id BLOB PRIMARY KEY,
        node TEXT NOT NULL,
        last_good_seq INTEGER NOT NULL,
        effective INTEGER NOT NULL,
        reason TEXT NOT NULL,
        record_id BLOB NOT NULL
    )
    """,
)
"""Migration ``log/0002_trust_and_catalog``, its first part (the catalog's follows)."""

QUARANTINE_VIEW = (
    """
    CREATE VIEW quarantined AS
    SELECT r.arrival, r.id, r.origin, r.seq, r.kind, v.last_good_seq
    FROM records r
    JOIN certs c ON c.code = r.origin AND c.kid = r.kid
    JOIN revocations v ON v.cert_id = c.cert_id
    WHERE r.seq > v.last_good_seq
    """,
)
"""Migration ``log/0003_quarantine``."""

CENTRAL_KEYS_TABLE = (
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
)
"""Migration ``log/0007_central_keys``, its first part (the heartbeat's table follows)."""

QUARANTINE_FROM_REVOCATIONS = (
    # The same rows as 0003's view, found from the few revocations through the
    # (origin, seq) index instead of by a scan of every record: readers such as
    # central's dashboard leave quarantined records out of every figure.
    "DROP VIEW quarantined",
    """
    CREATE VIEW quarantined AS
    SELECT r.arrival, r.id, r.origin, r.seq, r.kind, v.last_good_seq
    FROM revocations v
    CROSS JOIN certs c
    CROSS JOIN records r
    WHERE c.cert_id = v.cert_id AND r.origin = c.code AND r.kid = c.kid
    AND r.seq > v.last_good_seq
    """,
)
"""Migration ``log/0007_quarantine_from_revocations``."""
