"""The service desk of one node: what a clerk, an approver and a node admin do, in one place.

The web pages, the JSON API, the CLI and the benchmarks all go through :class:`Desk`, so
the rules are the same everywhere. The desk composes the parts, each in its own module:

* :mod:`node.holdings` — the catalog, grants and heartbeat held, what they allow, banners;
* :mod:`node.intake` — the intake form, its checks, the one-time notice, taking a case in;
* :mod:`node.files` — the scanned pages of the cases: taken in, shown, the store kept tidy;
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

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from core.cases import Event, State
from core.catalog import CatalogRelease, Item
from core.clock import CHINA, Clock, local_date
from core.errors import ErrorCode, InputError, StoreError
from core.files import DECISION_MATERIAL, FileRef
from core.intake import Intake, Notice, clean_text
from core.parts import PartProgress
from node import config as node_config
from node.card_reader import IdCard, reader_for
from node.casework import Case, Casework
from node.clerks import Clerks
from node.config import NodeConfig
from node.delegation import Delegation
from node.files import MIB, Attachment, CaseFiles, ShownFile, Upload, step_materials
from node.holdings import Banner, Holdings
from node.intake import Checked, IntakeForm, Intakes
from node.peer_window import PartOffer, part_offers
from node.sms import NEWS_EVENTS, deliver, gateway_for, queue_news
from node.store import NodeStore
from node.window_store import Message, Paper, issue_paper, last_look, messages_of, note_look, paper
from sync.link import agreement
from sync.link.file_link import FileLink
from sync.link.store import link_state
from sync.projection import case_queries
from sync.projection.calendars import HeldYears
from sync.projection.case_queries import CaseCounts, CaseEventRow, CaseRow, News
from sync.projection.clerks import names as clerk_names
from sync.projection.delegation import ItemAuthority
from sync.projection.peer_items import mirrored_item
from sync.record.arrival import newest_arrival
from sync.record.keys import NodeKeys, load_key_file
from sync.record.watermark import SigningGuard, Watermark, beside, guard_of, watermarked

__all__ = ["Banner", "Case", "Checked", "Desk", "IntakeForm", "ShownFile", "SyncStatus", "Upload"]

DAY = 86_400
SOON_DAYS = 2
"""Working days ahead that a clerk's list of cases about to fall due looks."""


@dataclass
class SyncStatus:
    last_ok: int | None
    last_attempt: int | None
    last_error: str | None
    waiting_up: int
    waiting_down: int | None  # unknown until the parent was last reached
    files_up: int = 0  # bytes of scanned pages not known to be at central yet
    files_down: int = 0  # bytes of pages of this node's cases it lacks
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
        self.case_files = CaseFiles(store, config.files, self.tier, clock)
        self.intakes = Intakes(self.holdings, self.casework, self.case_files, config.node.name, clock)
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

    def release(self, version: int) -> CatalogRelease | None:
        return self.holdings.release(version)

    def node_names(self) -> dict[str, str]:
        return self.holdings.node_names()

    def calendar_years(self) -> HeldYears:
        return self.holdings.calendar_years()

    def authority(self, item_code: str, at: int | None = None) -> ItemAuthority:
        return self.holdings.authority(item_code, at)

    def items(self) -> list[ItemAuthority]:
        return self.holdings.items()

    def peer_items(self) -> list[ItemAuthority]:
        """Other cities' items this window may take in now (异地代收)."""
        return self.holdings.peer_items()

    def part_offers(self) -> list[PartOffer]:
        """Other cities' parts this window may add to a joint application now (多地联办)."""
        return part_offers(self.db, self.tier, self.clock.now())

    def peer_item(self, owner: str, code: str, cat: int) -> Item | None:
        """Another city's item as the mirror a case of it was taken in under listed it."""
        return mirrored_item(self.db, owner, code, cat)

    def banners(self) -> list[Banner]:
        out = self.holdings.banners()
        if self.case_files.near_budget():
            used, budget = self.case_files.used()
            level = "error" if used >= budget else "warn"
            out.append(Banner(level, ErrorCode.FILE_BUDGET.value, f"{used // MIB} / {budget // MIB} MB"))
        return out

    # -- intake and case steps --------------------------------------------------------------

    def check_intake(self, form: IntakeForm, *, extra_fields: bool = True) -> Checked:
        return self.intakes.check(form, extra_fields=extra_fields)

    def notice(self, form: IntakeForm) -> Notice:
        return self.intakes.notice(form)

    def similar_open(self, doc_no: str, item: str) -> list[Case]:
        return self.intakes.similar_open(doc_no, item)

    def other_names(self, doc_no: str, name: str) -> list[str]:
        return self.intakes.other_names(doc_no, name)

    def intake(self, form: IntakeForm, actor: str, *, decide: bool = False) -> Case:
        return self.intakes.take_in(form, actor, decide=decide)

    def intake_of(self, case_no: str) -> Intake | None:
        """The case's intake as signed (its agent and extra fields)."""
        return case_queries.intake_of(self.db, case_no)

    def parts_of(self, case_no: str) -> tuple[PartProgress, ...]:
        """多地联办: where each other city's part of the case stands (none: no parts)."""
        return case_queries.parts_of(self.db, case_no)

    def clerk_names(self, node: str = "") -> dict[str, str]:
        """The display names of the clerks of ``node`` (default: this one) by user name, as
        far as this store holds them (a paper names 王丽, not wangli)."""
        return clerk_names(self.db, node or self.code)

    def messages_of(self, case_no: str) -> list[Message]:
        """The SMS messages for the case's applicant, sent or waiting."""
        return messages_of(self.db, case_no)

    def usage(self) -> dict[str, int]:
        """Cases taken in here in the last 90 days, per item."""
        return case_queries.item_usage(self.db, self.code, self.clock.now() - 90 * DAY)

    def read_card(self) -> IdCard:
        """The ID card on this window's reader (``[reader]``)."""
        return reader_for(self.config.reader.kind, self.config.home, self.config.reader.card_file).read()

    def issue_paper(self, kind: str, form: IntakeForm, actor: str, body: dict[str, Any]) -> Paper:
        """Number and keep a paper given without a case (一次性告知书, 不予受理通知书)."""
        now = self.clock.now()
        return issue_paper(
            self.db, self.code, kind, local_date(now).year, now, actor,
            form.item.strip(), form.name.strip(), form.doc_no.strip().upper(), body,
        )  # fmt: skip

    def paper(self, number: str) -> Paper:
        found = paper(self.db, number)
        if found is None:
            raise InputError(ErrorCode.NOT_FOUND, number)
        return found

    def act(
        self, case_no: str, event: str, fields: dict[str, Any], actor: str, uploads: Sequence[Upload] = ()
    ) -> Case:
        """One step on a case. ``uploads``: the supplement's pages (``supply``: materials of
        the case's item) or the decision's document (``approve``/``reject``: material
        ``decision``, or none given), stored with the step's record or not at all."""
        if not uploads:
            return self.casework.act(case_no, event, fields, actor)

        def pages(case: Case, kind: Event) -> Attachment:
            given = [
                dataclasses.replace(u, material=DECISION_MATERIAL)
                if kind in (Event.APPROVE, Event.REJECT) and not u.material
                else u
                for u in uploads
            ]
            release = self.release(case.cat)
            item = release.get(case.item) if release is not None else None
            intake = self.intake_of(case_no)
            allowed = step_materials(kind, case, item, agent=intake is not None and intake.agent is not None)
            return self.case_files.attach(self.case_files.scan(given), allowed, case_no)

        return self.casework.act(case_no, event, fields, actor, pages=pages)

    def files_of(self, case_no: str) -> list[ShownFile]:
        """Every file the records of ``case_no`` list, whether it is held here yet, and the
        record (``intake`` or the step) that lists it."""
        return self.case_files.of_case(case_no)

    def file(self, case_no: str, sha: str) -> tuple[Path, FileRef, bool]:
        """The file ``sha`` of ``case_no``: its path, its ref, whether it is a PDF with active
        content. ``E_FILE_SCOPE``: not a file of the case; ``E_FILE_MISSING``: not held (yet)."""
        return self.case_files.file(case_no, sha)

    def housekeep(self) -> tuple[int, int]:
        """The file store's housekeeping: orphans and stale transfers swept, and at a village
        the files central holds of cases closed long enough removed; (swept, retained)."""
        return self.case_files.sweep(), self.case_files.retain()

    def steps(self, case: CaseRow) -> list[str]:
        return self.casework.steps(case)

    # -- reading ----------------------------------------------------------------------------

    def case(self, case_no: str) -> Case:
        return self.casework.case(case_no)

    def events(self, case_no: str) -> list[CaseEventRow]:
        return case_queries.events(self.db, case_no)

    def search(
        self, query: str, limit: int = 50, *, state: str = "", since: str = "", until: str = ""
    ) -> list[Case]:
        """Cases by case number, (part of) the ID number, the phone or the applicant's name,
        in ``state`` and taken in from ``since`` to ``until`` (local dates, inclusive), when given."""
        text = clean_text("q", query, limit=40, required=False)
        if state and state not in {s.value for s in State}:
            raise InputError(ErrorCode.FIELD_INVALID, f"state {state!r}", zh="办件状态无效", field="state")
        where = case_queries.CaseFilter(state, day_start(since, "since"), day_start(until, "until", 1))
        return self.casework.shown(case_queries.search(self.db, text, limit, where))

    def recent(self, limit: int = 30, *, deciding: bool = False) -> list[Case]:
        """The cases taken in here (and, ``deciding``, those this node decides), newest first."""
        return self.casework.shown(case_queries.recent(self.db, self.code, limit, deciding=deciding))

    def queue(self, node: str = "", item: str = "") -> list[Case]:
        """Cases this node decides that wait for a decision (taken in at ``node``, for
        ``item``, when given): the approver's queue, by deadline, oldest first."""
        return self.casework.shown(case_queries.queue(self.db, self.code, node=node, item=item))

    def queue_sources(self) -> tuple[list[str], list[str]]:
        """The nodes and items the queue's cases come from (its filters)."""
        return case_queries.queue_sources(self.db, self.code)

    def counts(self) -> CaseCounts:
        now = self.clock.now()
        return case_queries.counts(self.db, self.code, since=now - DAY, today=local_date(now))

    # -- what came back, what falls due, what the resident is told ---------------------------

    def news(self, user: str) -> list[News]:
        """What other nodes decided or asked for on the cases taken in here since ``user``
        last looked at her home page (all of it, the first time); marks it seen."""
        seen = last_look(self.db, user)
        found = case_queries.news(self.db, self.code, NEWS_EVENTS)
        with contextlib.suppress(StoreError):  # a read-only store still shows the page
            note_look(self.db, user, newest_arrival(self.db), self.clock.now())
        return [n for n in found if seen is None or n.arrival > seen]

    def due(self, user: str, deciding: bool) -> tuple[list[Case], list[Case]]:
        """The running cases ``user`` took in (``deciding``: that this node decides) that
        are due today or late, and those due within the next two working days."""
        today = local_date(self.clock.now())
        soon = self.intakes.calendars.get(self.db).add_working_days(today, SOON_DAYS).date
        rows = self.casework.shown(
            case_queries.due(self.db, self.code, "" if deciding else user, soon.isoformat())
        )
        if not deciding:
            rows = [c for c in rows if c.mine]
        now_due = [c for c in rows if c.deadline <= today.isoformat()]
        return now_due, [c for c in rows if c.deadline > today.isoformat()]

    def tell_residents(self) -> int:
        """Queue the SMS messages of news not told yet and hand the waiting ones to the
        gateway (``[sms]``); how many went."""
        now = self.clock.now()
        queue_news(self.db, self.code, self.config.node.name, now)
        gateway = gateway_for(self.config.sms.gateway, self.config.home, self.config.sms.log_file, self.clock)
        if self.config.sms.gateway == "none":
            return 0
        return deliver(self.db, gateway, now)

    # -- sync status ------------------------------------------------------------------------

    def sync_status(self) -> SyncStatus:
        """Last successful sync and what waits to go up (own subtree's records not yet acked;
        the bytes of scanned pages not known to be at central) and to come down."""
        link = link_state(self.db)
        figures = FileLink(self.store.log, self.store.files, self.code, "", lambda *_: None).figures()
        return SyncStatus(
            last_ok=link.last_ok,
            last_attempt=link.last_attempt,
            last_error=link.last_error or None,
            waiting_up=agreement.waiting_up(self.db, self.code),
            waiting_down=link.down_pending,
            files_up=figures["up"],
            files_down=figures["down"],
        )


def day_start(day: str, field: str, after: int = 0) -> int | None:
    """The start of the local ``day`` (ISO), or of the ``after``-th day after it; None for ""."""
    if not day.strip():
        return None
    try:
        start = dt.datetime.combine(dt.date.fromisoformat(day.strip()), dt.time(), CHINA)
    except ValueError:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"{field}: {day!r} is not a date",
            zh="日期格式应为 2026-01-31",
            field=field,
        ) from None
    return int((start + dt.timedelta(days=after)).timestamp())
