"""Record kinds: the schema of each body and who may author it.

A kind is registered once with its body schema and its authority rule. Ingest refuses a
kind it does not know (``E_KIND_UNKNOWN``; the record is kept in the rejected table and
can be re-ingested after an upgrade) and a body that does not match (``E_SCHEMA``).

Schemas are small and explicit: a field maps to its type (or types) and whether it is
required; unknown fields are refused, byte strings may have a fixed length. Kinds whose
body is a domain object (a catalog release) validate through the domain's own
``from_body``, so the rules live in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.admin import is_within
from core.calendar import CalendarRelease
from core.cases import CaseEvent
from core.catalog import CatalogRelease
from core.departments import DepartmentCert
from core.errors import ErrorCode, RecordError, TongbanError
from core.federation import CrossCert, PeerRevocation
from core.grants import Grant, Revocation
from core.intake import Intake, case_node
from core.peer_items import PeerItems


class Author(StrEnum):
    """Who may be the origin of a kind."""

    ROOT = "root"  # only central (the anchor's origin)
    ANY_NODE = "any"  # any enrolled node, about its own business


@dataclass(frozen=True)
class Field:
    types: tuple[type, ...]
    required: bool = True
    size: int | None = None  # exact length for bytes


def _f(*types: type, required: bool = True, size: int | None = None) -> Field:
    return Field(types, required, size)


BodySchema = Mapping[str, Field] | Callable[[dict[str, Any]], object]
"""A map of fields, or a function that refuses a bad body and returns the domain object it
built from a good one (``None`` when that object is of no use past the check)."""


@dataclass(frozen=True)
class Kind:
    name: str
    author: Author
    schema: BodySchema
    summary: str


def _catalog_release(body: dict[str, Any]) -> CatalogRelease:
    return CatalogRelease.from_body(body)


def _calendar_release(body: dict[str, Any]) -> CalendarRelease:
    return CalendarRelease.from_body(body)


def _department_cert(body: dict[str, Any]) -> DepartmentCert:
    return DepartmentCert.from_body(body)


def _peer_cert(body: dict[str, Any]) -> CrossCert:
    return CrossCert.from_body(body)


def _peer_revoke(body: dict[str, Any]) -> PeerRevocation:
    return PeerRevocation.from_body(body)


def _peer_items(body: dict[str, Any]) -> PeerItems:
    return PeerItems.from_body(body)


def _grant(body: dict[str, Any]) -> None:
    # Built with a placeholder id, issuer and time: only the check is of use.
    Grant.from_body(body, id=b"\0" * 32, issuer="330481", ts=0)


def _grant_revoke(body: dict[str, Any]) -> None:
    Revocation.from_body(body, issuer="330481")


def _case_intake(body: dict[str, Any]) -> Intake:
    return Intake.from_body(body)


def _case_event(body: dict[str, Any]) -> CaseEvent:
    """The event of a ``case.event`` body (the body without its ``case`` field)."""
    if not isinstance(body, dict) or not isinstance(body.get("case"), str):
        raise RecordError(ErrorCode.SCHEMA, "case.event: field 'case' is missing")
    case_node(body["case"])
    return CaseEvent.from_body({k: v for k, v in body.items() if k != "case"})


def _heartbeat(body: dict[str, Any]) -> None:
    """``{time, exp, heads: {stream: uint}}``: exp after time, every head a count or version."""
    if not isinstance(body, dict) or set(body) != {"time", "exp", "heads"}:
        raise RecordError(ErrorCode.SCHEMA, "central.heartbeat: fields must be exactly time, exp, heads")
    time, exp, heads = body["time"], body["exp"], body["heads"]
    for name, value in (("time", time), ("exp", exp)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RecordError(ErrorCode.SCHEMA, f"central.heartbeat: {name} must be a non-negative integer")
    if exp <= time:
        raise RecordError(ErrorCode.SCHEMA, "central.heartbeat: exp must be after time")
    if not isinstance(heads, dict) or not heads or len(heads) > 16:
        raise RecordError(ErrorCode.SCHEMA, "central.heartbeat: heads must be a map of 1 to 16 streams")
    for stream, head in heads.items():
        if not isinstance(stream, str) or isinstance(head, bool) or not isinstance(head, int) or head < 0:
            raise RecordError(ErrorCode.SCHEMA, "central.heartbeat: each head maps a name to an integer")


NET_GENESIS = "net.genesis"
NODE_CERT = "node.cert"
DEPARTMENT_CERT = "department.cert"
CERT_REVOKE = "cert.revoke"
CATALOG_RELEASE = "catalog.release"
CALENDAR_RELEASE = "calendar.release"
NODE_ENROLLED = "node.enrolled"
GRANT_ISSUE = "grant.issue"
GRANT_REVOKE = "grant.revoke"
CASE_INTAKE = "case.intake"
CASE_EVENT = "case.event"
CLERK_SET = "clerk.set"
LINK_RECEIPT = "link.receipt"
KEY_ROLE = "key.role"
ROOT_ROTATE = "root.rotate"
HEARTBEAT = "central.heartbeat"
NODE_STATUS = "node.status"
PEER_CERT = "peer.cert"
PEER_REVOKE = "peer.revoke"
PEER_ITEMS = "peer.items"

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            NET_GENESIS,
            Author.ROOT,
            {
                "net": _f(str),
                "code": _f(str),
                "name": _f(str),
                "sign_pk": _f(bytes, size=32),
                "curve_pk": _f(bytes, size=32),
                "endpoint": _f(str, required=False),
            },
            "central's first record: the network's trust anchor",
        ),
        Kind(
            NODE_CERT,
            Author.ROOT,
            {
                "node": _f(str),
                "tier": _f(str),
                "parent": _f(str),
                "name": _f(str),
                "sign_pk": _f(bytes, size=32),
                "curve_pk": _f(bytes, size=32),
                "nbf": _f(int),
                "exp": _f(int),
                "request": _f(bytes),
            },
            "a node certificate binding keys to a node code, tier and parent",
        ),
        Kind(
            DEPARTMENT_CERT,
            Author.ROOT,
            _department_cert,
            "a department certificate binding keys to a department code and the items it decides",
        ),
        Kind(
            CERT_REVOKE,
            Author.ROOT,
            {
                "node": _f(str),
                "cert": _f(bytes, size=32),
                "last_good_seq": _f(int),
                "effective": _f(int),
                "reason": _f(str),
            },
            "revokes a node's or a department's certificate; records after last_good_seq are refused",
        ),
        Kind(CATALOG_RELEASE, Author.ROOT, _catalog_release, "a signed release of the service-item catalog"),
        Kind(
            CALENDAR_RELEASE,
            Author.ROOT,
            _calendar_release,
            "one year's holidays and adjusted working days, for deadlines in working days",
        ),
        Kind(
            KEY_ROLE,
            Author.ROOT,
            {"role": _f(str), "sign_pk": _f(bytes, size=32)},
            "central's root key names the key of one role (catalog, certs, grants, heartbeat)",
        ),
        Kind(
            ROOT_ROTATE,
            Author.ROOT,
            {"sign_pk": _f(bytes, size=32), "proof": _f(bytes, size=64)},
            "the root key hands over to a new root key, which proves it holds its private half",
        ),
        Kind(
            HEARTBEAT,
            Author.ROOT,
            _heartbeat,
            "central's signed heartbeat: its time, an expiry and the head of every central stream",
        ),
        Kind(
            PEER_CERT,
            Author.ROOT,
            _peer_cert,
            "a cross-certification: this city recognises another city (its root key) within a"
            " scope of the other's items, modes and roles, for at most 30 days",
        ),
        Kind(
            PEER_REVOKE,
            Author.ROOT,
            _peer_revoke,
            "ends every cross-certification of a peer city up to a serial, from a moment on",
        ),
        Kind(
            PEER_ITEMS,
            Author.ROOT,
            _peer_items,
            "another city's items our windows take in for it (异地代收), mirrored from its signed"
            " catalog release and pinned to that version",
        ),
        Kind(
            NODE_ENROLLED,
            Author.ANY_NODE,
            {"cert": _f(bytes, size=32), "software": _f(str)},
            "a node's first record: it came into service under this certificate",
        ),
        Kind(GRANT_ISSUE, Author.ANY_NODE, _grant, "a delegation grant: node aud may handle items in a mode"),
        Kind(GRANT_REVOKE, Author.ANY_NODE, _grant_revoke, "revokes a delegation grant from a moment on"),
        Kind(CASE_INTAKE, Author.ANY_NODE, _case_intake, "a case taken in (受理) at its origin node"),
        Kind(
            CASE_EVENT, Author.ANY_NODE, _case_event, "a step of a case: forward, decision, delivery, rating"
        ),
        Kind(
            CLERK_SET,
            Author.ANY_NODE,
            {"user": _f(str), "name": _f(str), "roles": _f(list), "active": _f(bool)},
            "a clerk account of the origin node: created, changed or disabled (no secrets)",
        ),
        Kind(
            LINK_RECEIPT,
            Author.ANY_NODE,
            {"child": _f(str), "seq": _f(int), "id": _f(bytes, size=32), "at": _f(int)},
            "a parent's witness of a child's log head (seq, id) at the end of a sync session",
        ),
        Kind(
            NODE_STATUS,
            Author.ANY_NODE,
            {
                "catalog": _f(int),
                "calendar": _f(int),
                "held": _f(int),
                "rejected": _f(int),
                "backlog": _f(int),
                "at": _f(int),
                "forks": _f(int, required=False),
                "seen": _f(dict, required=False),
                "software": _f(str, required=False),
                "protocol": _f(int, required=False),
                "files": _f(dict, required=False),
            },
            "a node's report for central's dashboard: catalog and calendar held, records held,"
            " refused and waiting to go up, the open forks it holds evidence of, when each"
            " child last ended a session with it, the software it runs and the newest protocol"
            " it speaks (each only when there are, or to a parent of protocol 3: older parents"
            " know no such field), the bytes of files waiting up, down and held (to a parent of"
            " protocol 4) (sent before a sync session, up only)",
        ),
    )
}

ROOT_SCOPED = frozenset(
    {
        NET_GENESIS,
        NODE_CERT,
        DEPARTMENT_CERT,
        CERT_REVOKE,
        CATALOG_RELEASE,
        CALENDAR_RELEASE,
        GRANT_REVOKE,
        KEY_ROLE,
        ROOT_ROTATE,
        HEARTBEAT,
        PEER_CERT,
        PEER_REVOKE,
        PEER_ITEMS,
    }
)


def scope_of(kind_name: str, origin: str, body: dict[str, Any]) -> str | None:
    """The node code whose subtree a record concerns; ``None``: every node needs it.

    Sync sends a record down a link when its scope is ``None`` or lies inside the child's
    subtree. Trust, catalog, calendar and grant revocations go everywhere; a grant goes to its
    grantee's subtree; a case record to the subtree of the node that took the case in
    (the case number starts with that node's code); anything else to its origin's.
    """
    if kind_name in ROOT_SCOPED:
        return None
    if kind_name == GRANT_ISSUE:
        return str(body["aud"])
    if kind_name in (CASE_INTAKE, CASE_EVENT):
        return case_node(str(body["case"]))
    return origin


def check_body(kind_name: str, body: dict[str, Any]) -> Kind:
    """Find ``kind_name`` and check ``body`` against its schema."""
    return check(kind_name, body)[0]


def check(kind_name: str, body: dict[str, Any]) -> tuple[Kind, object]:
    """:func:`check_body`, and the domain object the check built from ``body``.

    The object (an :class:`Intake`, a :class:`CaseEvent`, a :class:`CatalogRelease`) is
    what the kind's projection would build from the same body again; ``None`` for kinds
    whose schema is a map of fields or whose object is of no use past the check.
    """
    kind = KINDS.get(kind_name)
    if kind is None:
        raise RecordError(ErrorCode.KIND_UNKNOWN, kind_name)
    if callable(kind.schema):
        try:
            value = kind.schema(body)
        except RecordError:
            raise
        except TongbanError as exc:
            raise RecordError(ErrorCode.SCHEMA, f"{kind_name}: {exc.text('en')}") from exc
        return kind, value
    unknown = set(body) - set(kind.schema)
    if unknown:
        raise RecordError(ErrorCode.SCHEMA, f"{kind_name}: unknown field(s) {', '.join(sorted(unknown))}")
    for name, spec in kind.schema.items():
        if name not in body:
            if spec.required:
                raise RecordError(ErrorCode.SCHEMA, f"{kind_name}: field '{name}' is missing")
            continue
        value = body[name]
        if isinstance(value, bool) and bool not in spec.types:
            raise RecordError(ErrorCode.SCHEMA, f"{kind_name}: field '{name}' has the wrong type")
        if not isinstance(value, spec.types):
            raise RecordError(ErrorCode.SCHEMA, f"{kind_name}: field '{name}' has the wrong type")
        if spec.size is not None and isinstance(value, bytes) and len(value) != spec.size:
            raise RecordError(ErrorCode.SCHEMA, f"{kind_name}: field '{name}' must be {spec.size} bytes")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise RecordError(ErrorCode.SCHEMA, f"{kind_name}: field '{name}' must not be negative")
    return kind, None


def concerns(kind_name: str, origin: str, body: dict[str, Any], node: str, root: str) -> bool:
    """Whether a record belongs in the store of ``node`` (the down-stream rule of sync).

    Every record of the root (central) goes to every node, so the root's chain is complete
    everywhere and a relay cannot withhold a revocation without leaving a gap. Otherwise a
    record goes to the subtree of its scope (:func:`scope_of`), and a grant also goes down
    to the grantee's subtree's members, who need it to check their own chain.
    """
    if origin == root:
        return True
    return reaches(kind_name, scope_of(kind_name, origin, body), node)


def reaches(kind_name: str, scope: str | None, node: str) -> bool:
    """Whether a record of ``scope`` (:func:`scope_of`) belongs in the store of ``node``."""
    if scope is None or is_within(scope, node):
        return True
    return kind_name == GRANT_ISSUE and is_within(node, scope)
