"""Enrolling a department (部门): a certificate naming it and the items it decides.

A department makes its keys on its own host (``tongban department init``) and carries its
enrollment request to central, as a node does; central checks it and appends a
``department.cert`` (:mod:`core.departments`) signed with its certificates key:

* the request's proof of possession, tier ``department``, a department-shaped code of
  this city, central as its parent (``E_ENROLL_REQUEST`` / ``_POP`` / ``_TIER`` /
  ``_PARENT``);
* no live certificate holds the code or either key (``E_ENROLL_CODE_TAKEN``): a replaced
  machine is revoked first (:func:`central.authority.revoke_node` revokes a department's
  certificate as it does a node's);
* every item is in the current catalog release under the department the certificate names,
  and no other live department decides it (``E_ENROLL_ITEMS``): one decider per item.

The bundle is the node's (:func:`central.authority.bundle_for`): the anchor and central's
chain, and for a replacement the department's own records central holds, so that its new
key continues its chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from central.authority import CERT_VALIDITY_DAYS, DAY, Central, bundle_for
from core.admin import Tier, parse_tier
from core.departments import DepartmentCert, check_department_code, check_items
from core.errors import EnrollmentError, ErrorCode, TongbanError
from sync.projection.catalog import current_catalog
from sync.projection.departments import deciders_of
from sync.record import kinds
from sync.record.enrollment import EnrollmentRequest, read_request
from sync.record.envelope import Record
from sync.record.trust import key_holder, unrevoked


def enroll_department(
    central: Central,
    request_data: bytes,
    *,
    department: str,
    items: Sequence[str],
    valid_days: int = CERT_VALIDITY_DAYS,
) -> tuple[Record, bytes]:
    """Certify the department that made ``request_data`` for ``items``; its certificate and bundle.

    ``department`` is the catalog's department field of the items (e.g. 海宁市公安局).
    Raises :class:`EnrollmentError` (nothing is appended then).
    """
    request = read_request(request_data)
    try:
        codes = _check(central, request, department, items)
    except EnrollmentError as exc:
        central.store.note_request(request.id, request.code, exc.code.value, None)
        raise
    now = central.store.log.clock.now()
    cert = DepartmentCert(
        code=request.code,
        name=request.name.strip(),
        department=department,
        parent=request.parent,
        items=codes,
        sign_pk=request.sign_pk,
        curve_pk=request.curve_pk,
        nbf=now,
        exp=now + valid_days * DAY,
        request=request.raw,
    )
    record = central.append(kinds.DEPARTMENT_CERT, cert.to_body(), actor="sys:enroll")
    central.store.note_request(request.id, request.code, "certified", record.id)
    return record, bundle_for(central, request.code)


def _check(
    central: Central, request: EnrollmentRequest, department: str, items: Sequence[str]
) -> tuple[str, ...]:
    try:
        if parse_tier(request.tier) is not Tier.DEPARTMENT:
            raise EnrollmentError(
                ErrorCode.ENROLL_TIER, f"{request.code} asks as a {request.tier}: enroll it"
            )
        check_department_code(request.code)
    except EnrollmentError:
        raise
    except TongbanError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_TIER, exc.render("en")) from exc
    if request.code[:6] != central.code or request.parent != central.code:
        raise EnrollmentError(ErrorCode.ENROLL_PARENT, f"{request.code} is a department of {central.code}")
    db = central.store.db
    if unrevoked(db, request.code):
        raise EnrollmentError(
            ErrorCode.ENROLL_CODE_TAKEN, f"{request.code} (revoke the old certificate first)"
        )
    taken = key_holder(db, request.sign_pk, request.curve_pk)
    if taken is not None:
        raise EnrollmentError(ErrorCode.ENROLL_CODE_TAKEN, f"a key in this request is certified for {taken}")
    if not request.name.strip() or len(request.name) > 100 or not request.name.isprintable():
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, "the name must be 1-100 printable characters")
    try:
        codes = check_items(sorted(set(items)))
    except TongbanError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_ITEMS, exc.text("en")) from exc
    catalog = current_catalog(db)
    if catalog is None:
        raise EnrollmentError(ErrorCode.ENROLL_ITEMS, "publish a catalog release first")
    for code in codes:
        item = catalog.get(code)
        if item is None or item.department != department:
            where = "not in the catalog" if item is None else f"the catalog gives it to {item.department}"
            raise EnrollmentError(ErrorCode.ENROLL_ITEMS, f"{code}: {where}, not to {department}")
    owners = deciders_of(db, list(codes), central.store.log.clock.now())
    if owners:
        code, owner = sorted(owners.items())[0]
        raise EnrollmentError(ErrorCode.ENROLL_ITEMS, f"{code} is decided by {owner} already")
    return codes
