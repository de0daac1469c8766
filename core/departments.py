"""Departments (部门) that decide items in their own back office, and the certificate naming them.

Most items are decided neither at the window nor at a town but in a department's back office
(前台综合受理、后台集成办理): 公安 household registration, 人社, 医保, 民政. A department is an
enrolled party like a node — its own keys, made on its own host, and a certificate from
central — but it takes nothing in: it decides the items its certificate names. Its code
is the city's code and its initials (:data:`core.admin.DEPARTMENT_CODE`, ``330481GA``).

Routing: a proxy case goes up its grant chain to the first grantee that may decide the
item (:func:`core.grants.decider_for`); when no grant in the chain does, the case would go
to the root, and it goes instead to the department whose live certificate lists the item
and names the department the catalog gives for it (:meth:`DepartmentCert.decides`). The
decider is fixed at intake and signed into the ``case.intake`` record.

Body of a ``department.cert`` record (canonical CBOR, text keys)::

    {"code": tstr,            # the department's code, e.g. 330481GA
     "name": tstr,            # the unit, e.g. 海宁市公安局户政管理
     "department": tstr,      # the catalog's department field of its items, e.g. 海宁市公安局
     "parent": tstr,          # central's code
     "items": [tstr, ...],    # item codes it decides: sorted, unique, at least one
     "sign_pk": bstr(32), "curve_pk": bstr(32),
     "nbf": uint, "exp": uint,
     "request": bstr}         # the department's enrollment request, as it signed it
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.admin import Tier, tier_for_code
from core.catalog import ITEM_CODE, Item
from core.errors import ErrorCode, InputError, TongbanError

MAX_NAME = 100
MAX_ITEMS = 500
_KEYS = frozenset(
    {"code", "name", "department", "parent", "items", "sign_pk", "curve_pk", "nbf", "exp", "request"}
)


def _invalid(detail: str) -> InputError:
    return InputError(ErrorCode.FIELD_INVALID, f"department.cert: {detail}")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or not value.isprintable():
        raise _invalid(f"{name} must be 1–{MAX_NAME} printable characters")
    return value


def _uint(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{name} must be a non-negative integer")
    return value


def _key(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise _invalid(f"{name} must be 32 bytes")
    return value


def check_department_code(code: object) -> str:
    """``code`` if it has a department's shape (``E_ADMIN_CODE`` / ``E_TIER_MISMATCH``)."""
    if not isinstance(code, str):
        raise InputError(ErrorCode.ADMIN_CODE, f"{code!r} is not a code")
    tier = tier_for_code(code)
    if tier is not Tier.DEPARTMENT:
        raise InputError(
            ErrorCode.TIER_MISMATCH, f"{code!r} is shaped as a {tier.value} code, not a department"
        )
    return code


def check_items(items: object) -> tuple[str, ...]:
    """Item codes as a department certificate lists them: sorted, unique, one at least."""
    if not isinstance(items, list | tuple) or not items or len(items) > MAX_ITEMS:
        raise _invalid(f"items must list 1–{MAX_ITEMS} item codes")
    for code in items:
        if not isinstance(code, str) or not ITEM_CODE.fullmatch(code):
            raise _invalid(f"{code!r} is not an item code")
    if list(items) != sorted(set(items)):
        raise _invalid("items must be sorted and unique")
    return tuple(items)


@dataclass(frozen=True)
class DepartmentCert:
    """A department's certificate, as one ``department.cert`` record carries it."""

    code: str
    name: str
    department: str
    parent: str
    items: tuple[str, ...]
    sign_pk: bytes
    curve_pk: bytes
    nbf: int
    exp: int
    request: bytes

    def __post_init__(self) -> None:
        try:
            check_department_code(self.code)
        except TongbanError as exc:
            raise _invalid(exc.text("en")) from exc
        _text("name", self.name)
        _text("department", self.department)
        if self.parent != self.code[:6]:
            raise _invalid(f"the parent of {self.code} is {self.code[:6]}, not {self.parent!r}")
        check_items(self.items)
        _key("sign_pk", self.sign_pk)
        _key("curve_pk", self.curve_pk)
        if _uint("exp", self.exp) <= _uint("nbf", self.nbf):
            raise _invalid("exp must be after nbf")
        if not isinstance(self.request, bytes) or not self.request:
            raise _invalid("request must be the enrollment request's bytes")

    def decides(self, item: Item) -> bool:
        """Whether this department decides ``item``: listed here, and the catalog gives the
        item to this department."""
        return item.code in self.items and item.department == self.department

    def to_body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "department": self.department,
            "parent": self.parent,
            "items": list(self.items),
            "sign_pk": self.sign_pk,
            "curve_pk": self.curve_pk,
            "nbf": self.nbf,
            "exp": self.exp,
            "request": self.request,
        }

    @classmethod
    def from_body(cls, body: object) -> DepartmentCert:
        """The certificate in ``body``, checked strictly (unknown or missing keys refused)."""
        if not isinstance(body, dict):
            raise _invalid("expected a map")
        if set(body) != _KEYS:
            extra, missing = sorted(set(body) - _KEYS), sorted(_KEYS - set(body))
            raise _invalid(f"unknown field(s) {extra}, missing field(s) {missing}")
        items = body["items"]
        if not isinstance(items, list):
            raise _invalid("items must be a list")
        return cls(**{**body, "items": tuple(items)})
