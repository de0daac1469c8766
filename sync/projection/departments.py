"""The departments a store knows of, and which items each decides, as their certificates say.

Table ``department_items``: one row per (department certificate, item it lists), with the
department's code and the catalog department it names. A certificate's keys, validity and
revocation are the key directory's (:mod:`sync.record.trust`); the readers here join the
two in Python, so a revoked or expired certificate routes nothing.

Every store keeps it: an intake node routes a proxy case to the department that decides its
item (:func:`department_for`, used by :func:`sync.projection.delegation.authority_for`),
central admits a department's decision only for an item it decides (:func:`items_of`), and
the dashboard lists the departments (:func:`departments`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.catalog import Item
from core.departments import DepartmentCert
from core.errors import ErrorCode, RecordError, TongbanError
from sync.record import kinds, trust
from sync.record.envelope import Record


class DepartmentProjector:
    """The items of each department certificate (see the module docstring)."""

    kinds = frozenset({kinds.DEPARTMENT_CERT})
    tables: tuple[str, ...] = ("department_items",)

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        cert = checked if isinstance(checked, DepartmentCert) else None
        if cert is None:
            try:
                cert = DepartmentCert.from_body(record.body)
            except TongbanError as exc:
                raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc
        db.conn.executemany(
            "INSERT INTO department_items (cert_id, code, department, item) VALUES (?, ?, ?, ?)",
            [(record.id, cert.code, cert.department, item) for item in cert.items],
        )


@dataclass(frozen=True)
class Department:
    """One department certificate and what it decides."""

    code: str
    name: str
    department: str  # the catalog's department field
    items: tuple[str, ...]
    cert_id: bytes
    nbf: int
    exp: int
    revoked: bool

    def live(self, now: int) -> bool:
        return not self.revoked and self.nbf <= now < self.exp

    def decides(self, item: Item) -> bool:
        """Whether this certificate gives ``item`` to this department (see
        :meth:`core.departments.DepartmentCert.decides`)."""
        return item.code in self.items and item.department == self.department


def departments(db: Database) -> list[Department]:
    """Every department certificate held, by code, newest first (revoked ones too)."""
    listed: dict[bytes, tuple[str, list[str]]] = {}
    for cert_id, department, item in db.conn.execute(
        "SELECT cert_id, department, item FROM department_items ORDER BY cert_id, item"
    ):
        listed.setdefault(bytes(cert_id), (str(department), []))[1].append(str(item))
    out: list[Department] = []
    for cert in trust.certificates(db):
        if cert.cert_id in listed:
            department, items = listed[cert.cert_id]
            out.append(
                Department(
                    cert.code,
                    cert.name,
                    department,
                    tuple(items),
                    cert.cert_id,
                    cert.nbf,
                    cert.exp,
                    cert.revoked,
                )
            )
    return out


def live_departments(db: Database, now: int) -> dict[str, Department]:
    """Each department with a live certificate at ``now``, by code (its newest such one)."""
    out: dict[str, Department] = {}
    for department in departments(db):
        if department.live(now):
            out.setdefault(department.code, department)
    return out


def department_for(db: Database, item: Item, at: int) -> str | None:
    """The department that decides ``item`` at ``at``: a live certificate lists it and names
    the catalog's department of it. None: no department does (the root decides)."""
    rows = db.conn.execute("SELECT DISTINCT code FROM department_items WHERE item = ?", (item.code,))
    codes = sorted(str(code) for (code,) in rows)
    if not codes:
        return None  # most items: no certificate to read
    for code, department in sorted(live_departments(db, at).items()):
        if code in codes and department.decides(item):
            return code
    return None


def items_of(db: Database, code: str, at: int) -> frozenset[str]:
    """The items the department ``code`` decides at ``at`` (none without a live certificate)."""
    department = live_departments(db, at).get(code)
    return frozenset(department.items) if department else frozenset()


def deciders_of(db: Database, items: list[str], now: int) -> dict[str, str]:
    """For each of ``items`` some live department lists, that department's code."""
    owners: dict[str, str] = {}
    for code, department in live_departments(db, now).items():
        for item in department.items:
            if item in items:
                owners.setdefault(item, code)
    return owners


DEPARTMENT_TABLES = (
    """
    CREATE TABLE department_items (
        cert_id BLOB NOT NULL,
        code TEXT NOT NULL,
        department TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (cert_id, item)
    )
    """,
    "CREATE INDEX department_items_item ON department_items (item)",
)
"""Migration ``log/0011_departments``."""
