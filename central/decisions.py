"""A department's records at central: every check made before anything is stored.

A department hands central the records it signed over RPC (its decisions, its desk
accounts, its first record; :mod:`central.department_link`). Ingest would check the
signature, the certificate and the chain and keep a refused record, and the cases
projection would keep a decision by a party that is not the case's decider as a refused
step; a department's call is checked before either, so that a refusal stores nothing:

1. it decodes, and its origin is a department                       ``E_RECORD_*`` / ``E_AUTHORITY``
2. the broker user the call came from is that department           ``E_DEPARTMENT_USER``
3. central does not hold it yet (a replay changes nothing)         ``E_RECORD_REPLAYED``
4. a certificate of the department names its key, unrevoked and    ``E_CERT_UNKNOWN`` /
   valid now                                                        ``_REVOKED`` / ``_EXPIRED``
5. the signature over its exact bytes                               ``E_SIGNATURE_INVALID``
6. a kind a department signs: ``case.event``, ``clerk.set``,        ``E_AUTHORITY`` / ``E_SCHEMA``
   ``node.enrolled``, with a valid body
7. for a ``case.event``: a decision (approve, reject, request a    ``E_NOT_AUTHORIZED`` /
   supplement), on a case central holds whose decider is the        ``E_CASE_UNKNOWN`` /
   department, for an item the department's certificate lists      ``E_NOT_DECIDER`` /
                                                                    ``E_DEPARTMENT_ITEM``

Then it is ingested like any record (every check again), and goes down to the window at
the next sessions like any decision. A decision the case's state no longer allows (it
crossed a withdrawal at the window) is a conflict, not an attack: it is stored and the
cases projection keeps it as a refused step with its code, shown on the case, as at every
node — refusing it here would leave a hole in the department's chain at central.
"""

from __future__ import annotations

from dataclasses import dataclass

from central.department.contract import APPENDED, HELD, REFUSED, Reply
from central.department_store import note_contact
from central.store import CentralStore
from core.admin import is_department
from core.cases import DECISIONS, CaseEvent
from core.errors import AuthorityError, ErrorCode, InputError, RecordError, TongbanError
from sync.projection import case_queries
from sync.projection.departments import items_of
from sync.record import kinds, trust
from sync.record.envelope import PREFIX_RECORD, Payload, read_header, record_id, split, verify_signature
from sync.record.outcome import Status

DEPARTMENT_KINDS = frozenset({kinds.CASE_EVENT, kinds.CLERK_SET, kinds.NODE_ENROLLED})
"""What a department signs: its decisions, its desk accounts and its first record."""


@dataclass(frozen=True)
class Submitted:
    """A record a department handed over, decoded but not trusted yet."""

    envelope: bytes
    rid: bytes
    payload_bytes: bytes
    sig: bytes
    payload: Payload


def submit(store: CentralStore, envelope: bytes, broker_user: str | None) -> Reply:
    """Check ``envelope`` from the broker user ``broker_user`` and store it; central's reply."""
    try:
        record = _decode(envelope)
        check(store, record, broker_user)
    except TongbanError as exc:
        return Reply(REFUSED, code=exc.code.value, detail=exc.detail)
    outcome = store.log.ingest(envelope, record.payload.origin)
    note_contact(store.db, record.payload.origin, store.log.clock.now(), _head(store, record.payload.origin))
    if outcome.status is Status.APPENDED:
        return Reply(APPENDED, record.rid.hex(), record.payload.seq)
    if outcome.status is Status.HELD:
        return Reply(HELD, record.rid.hex(), record.payload.seq, outcome.code.value if outcome.code else "")
    code = outcome.code or ErrorCode.SCHEMA
    return Reply(REFUSED, record.rid.hex(), record.payload.seq, code.value, outcome.reason)


def contact(store: CentralStore, department: str, broker_user: str | None) -> dict[str, object]:
    """Note that ``department`` called; how far central holds its chain."""
    if not is_department(department) or broker_user != department:
        raise AuthorityError(ErrorCode.DEPARTMENT_USER, f"{broker_user!r} called as {department!r}")
    if not trust.certificates(store.db, department):
        raise AuthorityError(ErrorCode.CERT_UNKNOWN, department)
    now = store.log.clock.now()
    head = _head(store, department)
    note_contact(store.db, department, now, head)
    return {"department": department, "head": head, "at": now}


def _head(store: CentralStore, origin: str) -> int:
    head = store.log.head(origin)
    return head.seq if head else 0


def _decode(envelope: bytes) -> Submitted:
    payload_bytes, sig = split(envelope)
    payload = read_header(payload_bytes)
    return Submitted(envelope, record_id(payload_bytes), payload_bytes, sig, payload)


def check(store: CentralStore, record: Submitted, broker_user: str | None) -> None:
    """Steps 1–7 of the module docstring; raises the first refusal."""
    payload = record.payload
    origin = payload.origin
    if not is_department(origin):
        raise RecordError(ErrorCode.AUTHORITY, f"{origin} is not a department")
    if broker_user != origin:
        raise AuthorityError(ErrorCode.DEPARTMENT_USER, f"sent by {broker_user!r}, signed by {origin}")
    if store.log.has(record.rid):
        raise RecordError(ErrorCode.RECORD_REPLAYED, f"{origin} #{payload.seq}")
    now = store.log.clock.now()
    _check_key(store, origin, payload.kid, now)
    verify_signature(_sign_pk(store, origin, payload.kid), PREFIX_RECORD + record.payload_bytes, record.sig)
    if payload.kind not in DEPARTMENT_KINDS:
        raise RecordError(ErrorCode.AUTHORITY, f"a department does not sign {payload.kind}")
    _, value = kinds.check(payload.kind, payload.body)
    if isinstance(value, CaseEvent):
        _check_decision(store, origin, str(payload.body["case"]), value, now)


def _check_key(store: CentralStore, origin: str, kid: bytes, now: int) -> None:
    cert_id = trust.cert_of_key(store.db, origin, kid)
    cert = next((c for c in trust.certificates(store.db, origin) if c.cert_id == cert_id), None)
    if cert is None:
        raise AuthorityError(ErrorCode.CERT_UNKNOWN, f"{origin} key {kid.hex()[:16]}")
    if cert.revoked:
        raise AuthorityError(ErrorCode.CERT_REVOKED, origin)
    if now >= cert.exp:
        raise AuthorityError(ErrorCode.CERT_EXPIRED, origin)
    if now < cert.nbf:
        raise AuthorityError(ErrorCode.CERT_NOT_YET_VALID, origin)


def _sign_pk(store: CentralStore, origin: str, kid: bytes) -> bytes:
    key = trust.node_signing_key(store.db, origin, kid)
    assert key is not None  # _check_key found its certificate
    return key.sign_pk


def _check_decision(store: CentralStore, origin: str, case_no: str, event: CaseEvent, now: int) -> None:
    if event.kind not in DECISIONS:
        raise AuthorityError(
            ErrorCode.NOT_AUTHORIZED, f"{event.kind.value} belongs to the window, not {origin}"
        )
    case = case_queries.case(store.db, case_no)
    if case is None:
        raise InputError(ErrorCode.CASE_UNKNOWN, case_no)
    if case.decider != origin:
        raise AuthorityError(ErrorCode.NOT_DECIDER, f"{case_no} is decided by {case.decider}, not {origin}")
    if case.item not in items_of(store.db, origin, now):
        raise AuthorityError(ErrorCode.DEPARTMENT_ITEM, f"{origin} does not decide {case.item}")
