"""The figures of the city dashboard, read from central's store, and their CSV export.

Central holds every record of the city, so every figure is read from its projections: the
nodes from the certificates (:func:`sync.record.trust.certificates`), the departments from
theirs (:mod:`sync.projection.departments`) with their calls and outbox
(:mod:`central.department_store`), the cases, reports and contacts from
:mod:`central.report_store`, one set-based query a figure.

Rules, each in one place:

* a case belongs to the tier of the node that took it in (the node of its case number);
* a department's waiting cases are the proxy cases forwarded to it and not decided yet;
  their time limit runs, so they run late like any other;
* open and overdue are :data:`core.cases.OPEN_STATES` and
  :data:`~sync.projection.cases.OVERDUE_SQL`, the node's own rules, at ``now``;
* a case is completed (办结) when it was approved or rejected, and on time when that
  decision fell on or before its deadline (local dates; a supplement's pause has already
  moved the deadline);
* records in the ``quarantined`` view (signed after a revocation's cut-off) count for
  nothing: a case taken in by one is left out, and a decision or rating made by one is
  not counted as completed or rated;
* a node's certificate needs renewing when its live certificate expires within
  :data:`web.health.CERT_WARN_DAYS` days (or has expired): the banner above the dashboard;
* a node is in alarm when central's endpoint refused :data:`REFUSED_ALARM` or more of what
  it sent under codes seen in the last :data:`ALARM_DAYS` days, or ended a session of it as
  a flood (``E_SYNC_FLOOD``) in that time: a broken node, or a stolen key.

The overdue list names cases, items and nodes, never applicants: the dashboard is for
operators, and the personal data stays on the case pages of the nodes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, field, fields
from datetime import date
from typing import Any

from sqlite_utils import Database

from central import registry, report_store
from central.department_store import contacts, outbox_counts
from central.registry import ForkRow
from central.report_store import CaseCounts
from core.calendar import WorkCalendar
from core.cases import Rating
from core.clock import local_date, local_time
from core.errors import ErrorCode, InputError
from sync.projection.calendars import store_calendar
from sync.projection.catalog import item_names
from sync.projection.departments import Department, departments
from sync.projection.status import reported_files, reported_software
from sync.record.trust import certificates
from web.health import CERT_WARN_DAYS

DAY = 86_400
TIERS = ("city", "town", "village")
OVERDUE_CAP = 200
TOP_ITEMS = 10
TABLES = ("nodes", "departments", "volumes", "items", "overdue")
REFUSED_ALARM = 100
"""Refusals from one node (under codes seen within :data:`ALARM_DAYS`) that raise its alarm."""
ALARM_DAYS = 7
TOP_CODES = 3


@dataclass(frozen=True)
class NodeRow:
    """One enrolled node (revoked ones too, marked), in org-tree order."""

    code: str
    name: str
    tier: str
    parent: str | None
    depth: int
    last_contact: int | None  # epoch s: newest receipt for it, status report, or session with central
    open_cases: int
    overdue_cases: int
    catalog_version: int | None  # from its newest node.status
    rejected: int | None  # records its store refused (node.status)
    backlog: int | None  # records waiting to go up at its last report (node.status)
    revoked: bool  # no certificate of it is left unrevoked
    refused: int = 0  # what central's endpoint refused from it (link_rejections), all told
    refused_codes: str = ""  # the most frequent codes of those, "E_X×n E_Y×m"
    alarm: bool = False  # see the module docstring
    cert_expires: int | None = None  # epoch s, its live certificate's; None when revoked
    software: str | None = None  # the version it runs, as its newest report says
    protocol: int | None = None  # the newest sync protocol it speaks (same report)
    files_up: int | None = None  # bytes of scanned pages waiting to go up (its report's files, when named)
    files_down: int | None = None  # bytes of scanned pages waiting to come down to it


@dataclass(frozen=True)
class RefusalAlarm:
    """A node whose refusals at central are high: the banner above the dashboard."""

    code: str
    name: str
    refused: int
    top_codes: tuple[tuple[str, int], ...]  # (code, times), the most frequent first
    last_at: int


@dataclass(frozen=True)
class DepartmentRow:
    """One department (revoked ones too, marked) and the cases it has to decide."""

    code: str
    name: str
    department: str  # the catalog's department it decides for
    items: int  # how many items its certificate lists
    waiting: int  # proxy cases forwarded to it, not decided yet
    oldest: int | None  # epoch s: the earliest intake among them
    overdue: int  # of those, past their time limit
    last_contact: int | None  # epoch s: its last call to central
    unpublished: int  # events in central's outbox the broker has not confirmed
    revoked: bool


@dataclass(frozen=True)
class TierVolume:
    tier: str
    cases: int
    share: float  # of all cases, 0..1


@dataclass(frozen=True)
class OverdueCase:
    case_no: str
    node: str
    node_name: str
    item: str
    item_name: str
    state: str
    decider: str
    received: int  # epoch s
    deadline: str  # ISO local date
    days_over: int  # working days after the deadline, up to and including today


@dataclass(frozen=True)
class ItemCount:
    code: str
    name: str
    cases: int


@dataclass(frozen=True)
class Dashboard:
    now: int
    nodes: list[NodeRow]
    departments: list[DepartmentRow]
    volumes: list[TierVolume]
    total_cases: int
    completed: int
    completed_on_time: int
    on_time_rate: float | None  # completed_on_time / completed
    overdue: list[OverdueCase]  # oldest deadline first, at most OVERDUE_CAP
    satisfaction: dict[str, int]  # rating "1" … "5" → count
    top_items: dict[str, list[ItemCount]]  # tier → at most TOP_ITEMS items
    forks: list[ForkRow] = field(default_factory=list)  # open ones: the alarm at the top
    alarms: list[RefusalAlarm] = field(default_factory=list)  # the most refused first
    expiring: list[NodeRow] = field(default_factory=list)  # certificates to renew, soonest first


@dataclass(frozen=True)
class _Node:
    code: str
    name: str
    tier: str
    parent: str | None
    revoked: bool
    exp: int | None  # its newest unrevoked certificate's expiry


def snapshot(db: Database, *, now: int, calendar: WorkCalendar | None = None) -> Dashboard:
    """Every figure of the dashboard at ``now``; ``calendar`` defaults to the store's."""
    today = local_date(now).isoformat()
    nodes = _nodes(db)
    per_node = report_store.case_counts(db, today)
    totals = CaseCounts(*(sum(c[i] for c in per_node.values()) for i in range(len(CaseCounts._fields))))
    by_tier = dict.fromkeys(TIERS, 0)
    for code, counts in per_node.items():
        by_tier[nodes[code].tier] += counts.cases
    total, completed, on_time = totals.cases, totals.completed, totals.on_time
    refusals = _refusals(db, nodes, now)
    rows = _node_rows(db, nodes, per_node, refusals)
    due = now + CERT_WARN_DAYS * DAY
    return Dashboard(
        now=now,
        nodes=rows,
        departments=_departments(db, today),
        volumes=[TierVolume(t, n, n / total if total else 0.0) for t, n in by_tier.items()],
        total_cases=total,
        completed=completed,
        completed_on_time=on_time,
        on_time_rate=on_time / completed if completed else None,
        overdue=_overdue(db, nodes, today, calendar or store_calendar(db)),
        satisfaction=_satisfaction(db),
        top_items=_top_items(db, nodes),
        forks=[fork for fork in registry.forks(db) if fork.open],
        alarms=sorted((a for a, alarm in refusals.values() if alarm), key=lambda a: (-a.refused, a.code)),
        expiring=sorted(
            (r for r in rows if r.cert_expires is not None and r.cert_expires < due),
            key=lambda r: (r.cert_expires, r.code),
        ),
    )


def _nodes(db: Database) -> dict[str, _Node]:
    """Each node by code, from its newest unrevoked certificate, else its newest one."""
    chosen: dict[str, _Node] = {}
    for cert in certificates(db):  # by code, newest first
        if cert.tier in ("central", "department"):
            continue
        held = chosen.get(cert.code)
        if held is None or (held.revoked and not cert.revoked):
            exp = None if cert.revoked else cert.exp
            chosen[cert.code] = _Node(cert.code, cert.name, cert.tier, cert.parent, cert.revoked, exp)
    return chosen


def _refusals(db: Database, nodes: dict[str, _Node], now: int) -> dict[str, tuple[RefusalAlarm, bool]]:
    """Per node central refused anything from: its figures, and whether it is in alarm."""
    since = now - ALARM_DAYS * DAY
    out: dict[str, tuple[RefusalAlarm, bool]] = {}
    for peer, refused in report_store.refused_by_peer(db).items():
        if peer not in nodes:
            continue  # the bucket of unknown keys: no node to name
        recent = [r for r in refused if r.last_at >= since]
        flood = any(r.code == ErrorCode.SYNC_FLOOD.value for r in recent)
        figures = RefusalAlarm(
            peer,
            nodes[peer].name,
            sum(r.times for r in refused),
            tuple((r.code, r.times) for r in refused[:TOP_CODES]),
            max(r.last_at for r in refused),
        )
        out[peer] = (figures, flood or sum(r.times for r in recent) >= REFUSED_ALARM)
    return out


def _node_rows(
    db: Database,
    nodes: dict[str, _Node],
    per_node: dict[str, CaseCounts],
    refusals: dict[str, tuple[RefusalAlarm, bool]],
) -> list[NodeRow]:
    status = report_store.status_reports(db)
    contact = report_store.contacts(db)
    software = reported_software(db)
    waiting = reported_files(db)
    out: list[NodeRow] = []
    for node, depth in _tree_order(nodes):
        seen = contact.get(node.code, [])
        report = status.get(node.code)
        if report is not None:
            seen = [*seen, report.ts]
        counts = per_node.get(node.code, CaseCounts(0, 0, 0, 0, 0))
        refused, alarm = refusals.get(node.code, (None, False))
        out.append(
            NodeRow(
                code=node.code,
                name=node.name,
                tier=node.tier,
                parent=node.parent,
                depth=depth,
                last_contact=max(seen) if seen else None,
                open_cases=counts.open,
                overdue_cases=counts.overdue,
                catalog_version=report.catalog if report else None,
                rejected=report.rejected if report else None,
                backlog=report.backlog if report else None,
                revoked=node.revoked,
                refused=refused.refused if refused else 0,
                refused_codes=" ".join(f"{code}×{n}" for code, n in refused.top_codes) if refused else "",
                alarm=alarm,
                cert_expires=node.exp,
                software=software[node.code][0] if node.code in software else None,
                protocol=software[node.code][1] if node.code in software else None,
                files_up=waiting[node.code][0] if node.code in waiting else None,
                files_down=waiting[node.code][1] if node.code in waiting else None,
            )
        )
    return out


def _departments(db: Database, today: str) -> list[DepartmentRow]:
    """Each department by code, from its newest unrevoked certificate, else its newest one."""
    chosen: dict[str, Department] = {}
    for department in departments(db):  # by code, newest first
        held = chosen.get(department.code)
        if held is None or (held.revoked and not department.revoked):
            chosen[department.code] = department
    waiting = report_store.waiting_by_decider(db, today)
    heard = contacts(db)
    unpublished = outbox_counts(db)
    rows = []
    for code, d in sorted(chosen.items()):
        late = waiting.get(code)
        box = unpublished.get(code)
        rows.append(
            DepartmentRow(
                code=code,
                name=d.name,
                department=d.department,
                items=len(d.items),
                waiting=late.cases if late else 0,
                oldest=late.oldest if late else None,
                overdue=late.overdue if late else 0,
                last_contact=heard.get(code),
                unpublished=box.waiting if box else 0,
                revoked=d.revoked,
            )
        )
    return rows


def _tree_order(nodes: dict[str, _Node]) -> list[tuple[_Node, int]]:
    """Depth first from central's children, siblings by code; depth 1 below central."""
    children: dict[str | None, list[_Node]] = {}
    for node in nodes.values():
        parent = node.parent if node.parent in nodes else None
        children.setdefault(parent, []).append(node)
    out: list[tuple[_Node, int]] = []
    stack = [(node, 1) for node in sorted(children.get(None, []), key=lambda n: n.code, reverse=True)]
    while stack:
        node, depth = stack.pop()
        out.append((node, depth))
        below = sorted(children.get(node.code, []), key=lambda n: n.code, reverse=True)
        stack.extend((child, depth + 1) for child in below)
    return out


def _overdue(db: Database, nodes: dict[str, _Node], today: str, calendar: WorkCalendar) -> list[OverdueCase]:
    rows = report_store.overdue_cases(db, today, OVERDUE_CAP)
    day = date.fromisoformat(today)
    deadlines = {row.deadline for row in rows}
    late = {d: calendar.working_days_between(date.fromisoformat(d), day) for d in deadlines}
    return [
        OverdueCase(
            case_no,
            node,
            nodes[node].name,
            item,
            item_name,
            state,
            decider,
            received,
            deadline,
            late[deadline],
        )
        for case_no, node, item, item_name, state, decider, received, deadline in rows
    ]


def _satisfaction(db: Database) -> dict[str, int]:
    counts = report_store.ratings(db)
    return {str(int(r)): counts.get(int(r), 0) for r in Rating}


def _top_items(db: Database, nodes: dict[str, _Node]) -> dict[str, list[ItemCount]]:
    """Per tier, the items with the most cases; named as in the newest catalog release."""
    names = item_names(db)
    counts: dict[str, dict[str, int]] = {tier: {} for tier in TIERS}
    for node, item, name, n in report_store.item_counts(db):
        names.setdefault(item, name)  # an item the newest release dropped: its name at intake
        per_item = counts[nodes[node].tier]
        per_item[item] = per_item.get(item, 0) + n
    return {
        tier: [
            ItemCount(code, names[code], n)
            for code, n in sorted(per_item.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ITEMS]
        ]
        for tier, per_item in counts.items()
    }


# -- CSV ------------------------------------------------------------------------------------


def to_csv(
    dashboard: Dashboard,
    table: str,
    headers: Mapping[str, str] | None = None,
    label: Callable[[str, Any], Any] | None = None,
) -> str:
    """One table of ``dashboard`` as CSV (RFC 4180, CRLF), a header row first.

    ``table`` is one of :data:`TABLES`; anything else is ``E_FIELD_INVALID``. Times are
    local (China) times; a text cell that a spreadsheet would take for a formula is
    prefixed with ``'``. Spreadsheet programs want the text encoded as ``utf-8-sig``.
    ``headers`` names the columns for the reader (default: the field names) and
    ``label(column, value)`` shows a value in the reader's words (a tier, a state).
    """
    if table not in TABLES:
        raise InputError(ErrorCode.FIELD_INVALID, f"table must be one of {', '.join(TABLES)}, not {table!r}")
    header, rows = _TABLES[table](dashboard)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([(headers or {}).get(name, name) for name in header])
    show = label or (lambda _column, value: value)
    writer.writerows(
        [_cell(show(name, value)) for name, value in zip(header, row, strict=True)] for row in rows
    )
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _time(ts: int | None) -> str | None:
    return None if ts is None else local_time(ts).strftime("%Y-%m-%d %H:%M:%S")


Table = tuple[Sequence[str], Iterable[Sequence[Any]]]
_TIMES = frozenset(
    {"last_contact", "received", "oldest", "cert_expires"}
)  # epoch seconds, written as local times


def _rows_of(items: Sequence[Any], cls: type) -> Table:
    """A table with one column per field of the dataclass ``cls``, in declaration order."""
    names = [f.name for f in fields(cls)]
    rows = (
        [_time(value) if name in _TIMES else value for name, value in zip(names, astuple(item), strict=True)]
        for item in items
    )
    return names, rows


def _items_table(d: Dashboard) -> Table:
    rows = (
        (tier, rank, item.code, item.name, item.cases)
        for tier, items in d.top_items.items()
        for rank, item in enumerate(items, 1)
    )
    return ("tier", "rank", "code", "name", "cases"), rows


_TABLES: dict[str, Callable[[Dashboard], Table]] = {
    "nodes": lambda d: _rows_of(d.nodes, NodeRow),
    "departments": lambda d: _rows_of(d.departments, DepartmentRow),
    "volumes": lambda d: _rows_of(d.volumes, TierVolume),
    "items": _items_table,
    "overdue": lambda d: _rows_of(d.overdue, OverdueCase),
}
