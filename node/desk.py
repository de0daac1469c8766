"""The service desk of one node: what a clerk, an approver and a node admin do, in one place.

The web pages, the JSON API, the CLI and the benchmarks all go through :class:`Desk`, so
the rules are the same everywhere. The desk composes the parts, each in its own module:

* :mod:`node.holdings` — the catalog, grants and heartbeat held, what they allow, banners;
* :mod:`node.intake` — the intake form, its checks, the one-time notice, taking a case in;
* :mod:`node.casework` — the steps of a case, and a case as the node shows it;
* :mod:`node.delegation` — a town's sub-delegation to its villages;
* :mod:`sync.projection.case_queries` — reading cases (search, recent, queue, counts);
* :mod:`node.clerks` — accounts, sessions and device tokens.

Every write is one transaction that appends the signed record(s) and updates the
projections; nothing needs the network. ``Desk.open`` is a context manager::

    with Desk.open(home, clock) as desk:
        case = desk.intake(IntakeForm(...), actor="wangli")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from core.catalog import CatalogRelease
from core.clock import Clock, local_date
from core.intake import Notice, clean_text
from node import config as node_config
from node.casework import Case, Casework
from node.clerks import Clerks
from node.config import NodeConfig
from node.delegation import Delegation
from node.holdings import Banner, Holdings
from node.intake import Checked, IntakeForm, Intakes
from node.store import NodeStore
from sync.link import agreement
from sync.link.store import link_state
from sync.projection import case_queries
from sync.projection.calendars import HeldYears
from sync.projection.case_queries import CaseCounts, CaseEventRow, CaseRow
from sync.projection.delegation import ItemAuthority
from sync.record.keys import NodeKeys, load_key_file
from sync.record.watermark import SigningGuard, Watermark, beside, guard_of, watermarked

__all__ = ["Banner", "Case", "Checked", "Desk", "IntakeForm", "SyncStatus"]

DAY = 86_400


@dataclass
class SyncStatus:
    last_ok: int | None
    last_attempt: int | None
    last_error: str | None
    waiting_up: int
    waiting_down: int | None  # unknown until the parent was last reached
    extra: dict[str, Any] = field(default_factory=dict)


def signing_keys(node_keys: NodeKeys, store: NodeStore, code: str, key_path: Path) -> NodeKeys:
    """The node's keys as it signs with them: never at a seq its watermark says it signed
    already (a store restored from an older copy: :mod:`sync.record.watermark`)."""
    if guard_of(node_keys) is not None:
        return node_keys

    def head() -> int:
        own = store.log.head(code)
        return own.seq if own else 0

    return watermarked(node_keys, SigningGuard(Watermark(beside(key_path), code), store.db, head))


class Desk:
    """The desk of one node over its open store; a context manager (closes the store)."""

    def __init__(self, store: NodeStore, node_keys: NodeKeys, config: NodeConfig, clock: Clock) -> None:
        self.store = store
        self.db = store.db
        self.config = config
        self.clock = clock
        self.code = config.node.code
        self.tier = config.node.tier
        self.keys = signing_keys(node_keys, store, self.code, config.key_path)
        self.holdings = Holdings(store, self.code, self.tier, clock, guard_of(self.keys))
        self.casework = Casework(store, self.keys, self.code, clock)
        self.intakes = Intakes(self.holdings, self.casework, config.node.name, clock)
        self.delegation = Delegation(store, self.keys, self.code, clock)

    @classmethod
    def open(cls, home: Path, clock: Clock) -> Desk:
        """The desk of the node whose directory is ``home``; use it in a ``with`` block."""
        config = node_config.load(home)
        node_keys = load_key_file(config.key_path)
        return cls(NodeStore.open(config.database_path, clock), node_keys, config, clock)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Desk:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def clerks(self) -> Clerks:
        """The node's accounts and device tokens."""
        return Clerks(self.db, self.store.log, self.code, self.clock)

    # -- what the node holds ----------------------------------------------------------------

    def catalog(self) -> CatalogRelease | None:
        return self.holdings.catalog()

    def calendar_years(self) -> HeldYears:
        return self.holdings.calendar_years()

    def authority(self, item_code: str, at: int | None = None) -> ItemAuthority:
        return self.holdings.authority(item_code, at)

    def items(self) -> list[ItemAuthority]:
        return self.holdings.items()

    def banners(self) -> list[Banner]:
        return self.holdings.banners()

    # -- intake and case steps --------------------------------------------------------------

    def check_intake(self, form: IntakeForm) -> Checked:
        return self.intakes.check(form)

    def notice(self, form: IntakeForm) -> Notice:
        return self.intakes.notice(form)

    def similar_open(self, doc_no: str, item: str) -> list[Case]:
        return self.intakes.similar_open(doc_no, item)

    def intake(self, form: IntakeForm, actor: str) -> Case:
        return self.intakes.take_in(form, actor)

    def act(self, case_no: str, event: str, fields: dict[str, Any], actor: str) -> Case:
        return self.casework.act(case_no, event, fields, actor)

    def steps(self, case: CaseRow) -> list[str]:
        return self.casework.steps(case)

    # -- reading ----------------------------------------------------------------------------

    def case(self, case_no: str) -> Case:
        return self.casework.case(case_no)

    def events(self, case_no: str) -> list[CaseEventRow]:
        return case_queries.events(self.db, case_no)

    def search(self, query: str, limit: int = 50) -> list[Case]:
        """Cases by case number, ID number, or (part of) the applicant's name."""
        text = clean_text("q", query, limit=40)
        return self.casework.shown(case_queries.search(self.db, text, limit))

    def recent(self, limit: int = 30) -> list[Case]:
        return self.casework.shown(case_queries.recent(self.db, self.code, limit))

    def queue(self) -> list[Case]:
        """Cases this node decides that wait for a decision: the approver's queue, oldest first."""
        return self.casework.shown(case_queries.queue(self.db, self.code))

    def counts(self) -> CaseCounts:
        now = self.clock.now()
        return case_queries.counts(self.db, self.code, since=now - DAY, today=local_date(now))

    # -- sync status ------------------------------------------------------------------------

    def sync_status(self) -> SyncStatus:
        """Last successful sync and what waits to go up (own subtree's records not yet acked)."""
        link = link_state(self.db)
        return SyncStatus(
            last_ok=link.last_ok,
            last_attempt=link.last_attempt,
            last_error=link.last_error or None,
            waiting_up=agreement.waiting_up(self.db, self.code),
            waiting_down=link.down_pending,
        )
