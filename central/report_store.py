"""The read model of central's dashboard and registry: queries over several projections.

Central holds every record of the city, so every figure is a query over its projections.
The queries are set based — one per figure, never one per node — because a city holds
some 240 nodes and hundreds of thousands of cases. Only reads; the tables read, and their
owners:

* ``cases``, ``case_events`` — :mod:`sync.projection.cases`;
* ``quarantined`` (a view) — :mod:`sync.record.trust`;
* ``node_status``, ``link_receipts`` — :mod:`sync.projection.status` (with the
  reports' own records, for the children a parent says it saw: ``reported_seen``);
* ``link_peers``, ``link_rejections`` — :mod:`sync.link.store`;
* ``catalog_releases`` — :mod:`sync.projection.catalog`, with ``records`` —
  :mod:`sync.record.log` (who published each release).

Records in the ``quarantined`` view (signed after a revocation's cut-off) count for
nothing: a case taken in by one is left out, and a decision or rating made by one is void
(:data:`_LIVE`). Open and overdue are the node's own rules (:data:`core.cases.OPEN_STATES`,
:data:`~sync.projection.cases.OVERDUE_SQL`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sqlite_utils import Database

from core.cases import OPEN_STATES
from core.clock import CHINA
from sync.projection.cases import OVERDUE_SQL
from sync.projection.status import reported_seen
from sync.record.log import decode_stored

_HOURS = int(CHINA.utcoffset(None).total_seconds()) // 3600
"""China's one fixed offset from UTC: SQL's ``date(ts, 'unixepoch', '+8 hours')`` is
:func:`core.clock.local_date`."""
_Q = "(SELECT id FROM quarantined)"


def _voided(events: str) -> str:
    """Cases whose applied ``events`` (an SQL list) were made by quarantined records."""
    return (
        f"(SELECT case_no FROM case_events WHERE event IN ({events}) AND status = 'applied'"
        f" AND record_id IN {_Q})"
    )


_UNDECIDED = _voided("'approve', 'reject'")
_UNRATED = _voided("'rate'")
_LIVE = (
    "WITH live AS (SELECT case_no, node, item, item_name, decider, received, deadline,"
    f" CASE WHEN case_no IN {_UNDECIDED} THEN CASE mode WHEN 'proxy' THEN 'forwarded' ELSE 'accepted' END"
    " ELSE state END AS state,"
    f" CASE WHEN case_no IN {_UNDECIDED} THEN NULL ELSE decided_at END AS decided_at,"
    f" CASE WHEN case_no IN {_UNRATED} THEN NULL ELSE rating END AS rating"
    f" FROM cases NOT INDEXED WHERE intake_id NOT IN {_Q}) "
)
"""The cases as they stand without quarantined records: none taken in by one, and a
decision or rating made by one is void (the case still runs: it was accepted, or
forwarded if proxy, when it was decided). Each figure is one query over ``live``, which
scans ``cases`` once: walking an index instead would cost a row lookup per case, several
times slower over a city's hundred thousand cases."""


class CaseCounts(NamedTuple):
    """The cases one node took in, at a day."""

    cases: int
    open: int
    overdue: int
    completed: int  # approved or rejected (办结)
    on_time: int  # completed on or before the deadline (local dates)


def case_counts(db: Database, today: str) -> dict[str, CaseCounts]:
    """Per intake node, its cases' counts at ``today`` (ISO local date)."""
    rows = db.conn.execute(
        f"{_LIVE} SELECT node, count(*), sum(state IN (?, ?, ?)), sum({OVERDUE_SQL}),"
        f" count(decided_at), coalesce(sum(date(decided_at, 'unixepoch', '+{_HOURS} hours') <= deadline), 0)"
        " FROM live GROUP BY node",
        (*OPEN_STATES, today),
    ).fetchall()
    return {row[0]: CaseCounts(*row[1:]) for row in rows}


@dataclass(frozen=True)
class StatusReport:
    """A node's newest ``node.status`` report."""

    ts: int
    catalog: int
    rejected: int
    backlog: int
    forks: int = 0  # the open forks it holds evidence of


def status_reports(db: Database) -> dict[str, StatusReport]:
    """Each node's newest status report, by code (a quarantined one is not). The forks it
    names are read from the report itself (a field ``node_status`` has no column for)."""
    rows = db.conn.execute(
        "SELECT s.origin, s.ts, s.catalog, s.rejected, s.backlog, r.envelope FROM node_status s"
        f" JOIN records r ON r.id = s.record_id WHERE s.record_id NOT IN {_Q}"
    )
    return {
        origin: StatusReport(
            ts, catalog, rejected, backlog, int(decode_stored(bytes(envelope)).body.get("forks", 0))
        )
        for origin, ts, catalog, rejected, backlog, envelope in rows
    }


def contacts(db: Database) -> dict[str, list[int]]:
    """When central last heard of each node: its newest receipt, its last session with
    central, its last session with its parent as the parent's newest report says (any
    may be missing)."""
    out: dict[str, list[int]] = {}
    for code, at in db.conn.execute(
        f"SELECT child, max(at) FROM link_receipts WHERE record_id NOT IN {_Q} GROUP BY child"
        " UNION ALL SELECT peer, max(last_seen) FROM link_peers GROUP BY peer"
    ):
        out.setdefault(code, []).append(at)
    for code, at in reported_seen(db).items():
        out.setdefault(code, []).append(at)
    return out


class Refused(NamedTuple):
    """What central refused from one peer under one code, as its link counted it."""

    code: str
    times: int
    last_at: int


def refused_by_peer(db: Database) -> dict[str, list[Refused]]:
    """Per peer (a node's code, or the one bucket of unknown keys), every code central's
    endpoint refused from it and how often, the most frequent first."""
    out: dict[str, list[Refused]] = {}
    rows = db.conn.execute(
        "SELECT peer, code, times, last_at FROM link_rejections ORDER BY peer, times DESC, code"
    )
    for peer, code, times, last_at in rows:
        out.setdefault(peer, []).append(Refused(code, int(times), int(last_at)))
    return out


class OverdueRow(NamedTuple):
    case_no: str
    node: str
    item: str
    item_name: str
    state: str
    decider: str
    received: int
    deadline: str  # ISO local date


def overdue_cases(db: Database, today: str, limit: int) -> list[OverdueRow]:
    """Cases past their deadline at ``today``, oldest deadline first, at most ``limit``."""
    rows = db.conn.execute(
        f"{_LIVE} SELECT case_no, node, item, item_name, state, decider, received, deadline FROM live"
        f" WHERE {OVERDUE_SQL} ORDER BY deadline, received, case_no LIMIT ?",
        (today, limit),
    ).fetchall()
    return [OverdueRow(*row) for row in rows]


def ratings(db: Database) -> dict[int, int]:
    """Rating (1 … 5) → how many cases have it."""
    rows = db.conn.execute(
        f"{_LIVE} SELECT rating, count(*) FROM live WHERE rating IS NOT NULL GROUP BY rating"
    )
    return {int(rating): int(n) for rating, n in rows}


class Waiting(NamedTuple):
    """The cases one decider has to decide: how many, the oldest intake, how many run late."""

    cases: int
    oldest: int  # epoch s: the earliest intake among them
    overdue: int


def waiting_by_decider(db: Database, today: str) -> dict[str, Waiting]:
    """Per decider, the proxy cases forwarded to it and not yet decided, at ``today``."""
    rows = db.conn.execute(
        f"{_LIVE} SELECT decider, count(*), min(received), sum({OVERDUE_SQL}) FROM live"
        " WHERE state = 'forwarded' GROUP BY decider",
        (today,),
    )
    return {str(decider): Waiting(int(n), int(oldest), int(late)) for decider, n, oldest, late in rows}


class ItemCount(NamedTuple):
    node: str
    item: str
    name: str  # as named at intake
    cases: int


def item_counts(db: Database) -> list[ItemCount]:
    """How many cases each node took in of each item."""
    rows = db.conn.execute(
        f"{_LIVE} SELECT node, item, max(item_name), count(*) FROM live GROUP BY node, item"
    )
    return [ItemCount(*row) for row in rows]


@dataclass(frozen=True)
class ReleaseRow:
    version: int
    issued_at: int
    expires_at: int
    items: int
    actor: str


def releases(db: Database) -> list[ReleaseRow]:
    """Every catalog release held, newest first, with the operator who published it."""
    rows = db.conn.execute(
        "SELECT c.version, c.issued_at, c.expires_at, c.item_count, coalesce(r.actor, '')"
        " FROM catalog_releases c JOIN records r ON r.id = c.record_id ORDER BY c.version DESC"
    ).fetchall()
    return [ReleaseRow(*row) for row in rows]
