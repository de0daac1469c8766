"""Taking a case in at one node: the form, its checks, the one-time notice, the duplicate check.

``check``
    validates a form (applicant, ID document, phone, item, materials, field lengths) and
    the node's authority for the item, and the other cities' parts of a joint application
    (多地联办, :mod:`core.parts`) against our cross-certifications. Staleness (an expired
    catalog or grant, a grant whose catalog release is not held, a stale heartbeat) never
    refuses a walk-in: the case is flagged.
``take_in``
    the next case number of the day, the deadline in working days, the ``case.intake``
    record, and for a proxy case its ``forward`` event in the same transaction — the
    materials go up with the record, the clerk has nothing more to do. Another city's
    item (异地代收, :mod:`node.peer_window`) is a proxy case like a local one: no grant,
    its ``owner`` the city, its decider our central, which carries it there.
``similar_open``
    the applicant's open cases for the same item, which the clerk confirms before a
    second one is taken in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.cases import CaseEvent, Event
from core.catalog import Item, Mode
from core.clock import Clock, local_date
from core.errors import ErrorCode, InputError, error
from core.extra_fields import check_extra
from core.grants import Verdict
from core.intake import (
    CALENDAR_ESTIMATED,
    MAX_NOTES,
    Applicant,
    Intake,
    Notice,
    case_number,
    check_applicant,
    clean_text,
    materials_for,
    missing_materials,
    one_time_notice,
)
from core.parts import Part, check_part
from node.casework import Case, Casework
from node.files import CaseFiles, Upload
from node.holdings import Holdings
from sync.projection import case_queries
from sync.projection.calendars import StoreCalendar
from sync.projection.delegation import ItemAuthority
from sync.projection.peers import peer_state
from sync.record import kinds
from sync.record.db import transaction
from sync.record.log import anchor_of


@dataclass(frozen=True)
class IntakeForm:
    """What the clerk typed, unchecked."""

    item: str
    name: str
    doc_type: str
    doc_no: str
    phone: str
    materials: tuple[str, ...] = ()
    notes: str = ""
    agent: tuple[str, str, str, str] | None = None  # name, doc_type, doc_no, phone
    extra: tuple[tuple[str, str], ...] = ()  # the item's extra fields, by code
    uploads: tuple[Upload, ...] = ()  # the scanned pages, in page order (node.files)
    parts: tuple[Part, ...] = ()  # 多地联办: the other cities' parts, each a peer's item of mode joint_part

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> IntakeForm:
        """The form in ``data``: the applicant's fields, ``materials``, ``notes``; an agent
        when any ``agent_*`` key is given; the item's extra fields in ``extra``; the other
        cities' parts in ``parts`` (:func:`parts_of_form`)."""
        materials = data.get("materials") or ()
        if isinstance(materials, str):
            materials = (materials,)
        if not isinstance(materials, (list, tuple)) or not all(isinstance(m, str) for m in materials):
            raise InputError(ErrorCode.FIELD_INVALID, "materials must be a list of material codes")
        values = {
            name: _text(data, name) for name in ("item", "name", "doc_type", "doc_no", "phone", "notes")
        }
        agent = None
        if any(key in data for key in AGENT_KEYS):
            name, doc_type, doc_no, phone = (_text(data, key) for key in AGENT_KEYS)
            agent = (name, doc_type, doc_no, phone)
        extra = data.get("extra") or {}
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise InputError(ErrorCode.FIELD_INVALID, "extra must map field codes to text")
        return cls(
            item=values["item"],
            name=values["name"],
            doc_type=values["doc_type"],
            doc_no=values["doc_no"],
            phone=values["phone"],
            notes=values["notes"],
            materials=tuple(materials),
            agent=agent,
            extra=tuple(extra.items()),
            parts=parts_of_form(data.get("parts")),
        )


def parts_of_form(value: object) -> tuple[Part, ...]:
    """The parts a form adds: a list of ``{city, item, cat, name}`` maps, or of the values
    ``city|item|cat|name`` (one per chosen peer item); none when absent."""
    if value is None or value == "" or value == []:
        return ()
    values = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(values, (list, tuple)):
        raise InputError(ErrorCode.FIELD_INVALID, "parts must be a list", field="parts")
    parts: list[Part] = []
    for entry in values:
        if isinstance(entry, str):
            fields = entry.split("|", 3)
            if len(fields) != 4 or not fields[2].isdigit():
                detail = f"part {entry!r}: city|item|cat|name"
                raise InputError(ErrorCode.FIELD_INVALID, detail, field="parts")
            entry = {"city": fields[0], "item": fields[1], "cat": int(fields[2]), "name": fields[3]}
        try:
            parts.append(Part.from_body(entry))
        except InputError as exc:
            raise InputError(ErrorCode.FIELD_INVALID, exc.detail, field="parts") from exc
    return tuple(parts)


AGENT_KEYS = ("agent_name", "agent_doc_type", "agent_doc_no", "agent_phone")


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(ErrorCode.FIELD_INVALID, f"{name} must be text", field=name)
    return value


@dataclass(frozen=True)
class Checked:
    """A form that passed every check: ready to take in (or to print a notice for)."""

    item: Item
    authority: ItemAuthority
    applicant: Applicant
    materials: tuple[str, ...]
    notes: str
    flags: tuple[str, ...]
    agent: Applicant | None = None
    extra: tuple[tuple[str, str], ...] = ()
    parts: tuple[Part, ...] = ()


class Intakes:
    """Intake at the node whose holdings, case steps and name are given."""

    def __init__(
        self, holdings: Holdings, casework: Casework, case_files: CaseFiles, node_name: str, clock: Clock
    ) -> None:
        self.holdings = holdings
        self.case_files = case_files
        self.casework = casework
        self.db = casework.db
        self.code = casework.code
        self.node_name = node_name
        self.clock = clock
        self.calendars = StoreCalendar()

    def check(self, form: IntakeForm, *, extra_fields: bool = True) -> Checked:
        """Every check of an intake form; raises the first fault with its code.
        ``extra_fields=False``: the item's extra fields are not asked for (a paper given
        without a case, the one-time notice or the refusal, does not need them)."""
        now = self.clock.now()
        today = local_date(now)
        item_code = clean_text("item", form.item, limit=80)  # CODE@NET: another city's item
        applicant = check_applicant(form.name, form.doc_type, form.doc_no, form.phone, today)
        agent = check_applicant(*form.agent, today, prefix="agent_") if form.agent is not None else None
        if agent is None and not applicant.doc_type.personal:
            raise InputError(
                ErrorCode.FIELD_REQUIRED,
                "agent: an enterprise applies through the person at the window",
                zh="单位申请须由经办人办理，请填写经办人",
                field="agent_name",
            )
        notes = clean_text("notes", form.notes, limit=MAX_NOTES, required=False)
        authority = self.holdings.authority(item_code, now)
        if not authority.allowed:
            raise error(authority.auth.code or ErrorCode.GRANT_ITEM, authority.auth.detail)
        extra = check_extra(authority.item, dict(form.extra), today) if extra_fields else ()
        wanted = materials_for(authority.item, agent is not None)
        received = tuple(m for m in wanted if m.code in set(form.materials))
        missing_materials(authority.item, set(form.materials), agent=agent is not None)  # unknown codes
        flags: list[str] = []
        if authority.auth.verdict is Verdict.STALE:
            flags.extend(code.value for code in authority.auth.flags)
        flags.extend(self.holdings.staleness(now))
        self.check_parts(form.parts, now)
        return Checked(
            authority.item,
            authority,
            applicant,
            tuple(m.code for m in received),
            notes,
            tuple(flags),
            agent,
            extra,
            form.parts,
        )

    def check_parts(self, parts: tuple[Part, ...], now: int) -> None:
        """多地联办: each part allowed by our cross-certification of its city (``E_PEER_SCOPE``,
        as every store would refuse the intake), one per city."""
        if len({p.city for p in parts}) != len(parts):
            raise InputError(ErrorCode.FIELD_INVALID, "one part per city", zh="每个城市只能联办一个部分",
                             field="parts")  # fmt: skip
        anchor = anchor_of(self.db)
        for part in parts:
            check_part(peer_state(self.db, part.city), part, anchor.net if anchor else "", now)

    def notice(self, form: IntakeForm) -> Notice:
        """The one-time notice (一次性告知) for a form whose required materials are incomplete."""
        checked = self.check(form, extra_fields=False)
        return one_time_notice(
            checked.item,
            checked.applicant.name,
            set(checked.materials),
            self.node_name,
            local_date(self.clock.now()),
            agent=checked.agent is not None,
        )

    def similar_open(self, doc_no: str, item: str) -> list[Case]:
        """Open cases of the same applicant for the same item (to warn the clerk)."""
        rows = case_queries.similar_open(self.db, doc_no.strip().upper(), item)
        return self.casework.shown(rows)

    def other_names(self, doc_no: str, name: str) -> list[str]:
        """The names other than ``name`` that cases held here carry for ID number ``doc_no``:
        one number under several names is a typo in the number, or a borrowed card."""
        return [n for n in case_queries.names_of(self.db, doc_no) if n != name]

    def take_in(self, form: IntakeForm, actor: str, *, decide: bool = False) -> Case:
        """Take the case in. Raises ``E_MATERIALS_MISSING`` when required materials are missing.

        The form's uploads are normalised and checked (``E_FILE_*``) before anything is
        stored; their blobs go into the file store and their refs into the intake record.

        ``decide``: a 即办 item (no time limit) decided here is approved on the spot, in the
        intake's transaction — one action at the window (``E_CASE_TRANSITION`` for any other).
        """
        checked = self.check(form)
        missing = missing_materials(checked.item, set(checked.materials), agent=checked.agent is not None)
        if missing:
            raise InputError(ErrorCode.MATERIALS_MISSING, "、".join(m.name for m in missing))
        now = self.clock.now()
        today = local_date(now)
        auth = checked.authority
        assert auth.mode is not None and auth.decider is not None
        assert auth.grant is not None or auth.owner is not None  # another city's item needs no grant
        if decide and not (
            checked.item.time_limit_days == 0 and auth.mode is Mode.DIRECT and auth.decider == self.code
        ):
            raise InputError(
                ErrorCode.CASE_TRANSITION,
                f"{checked.item.code} is not an item decided here on the spot",
                zh="只有本中心直接办理的即办事项才能受理并当场办结",
            )
        deadline = self.calendars.get(self.db).add_working_days(today, checked.item.time_limit_days)
        flags = list(checked.flags)
        if deadline.unknown_years:
            flags.append(CALENDAR_ESTIMATED)
        allowed = {m.code for m in materials_for(checked.item, checked.agent is not None)}
        pages = self.case_files.attach(self.case_files.scan(form.uploads), allowed, None)
        with pages.storing(), transaction(self.db):
            number = case_number(self.code, today, case_queries.next_serial(self.db, self.code, today))
            intake = Intake(
                case=number,
                item=checked.item.code,
                item_name=checked.item.name,
                cat=auth.owner_cat if auth.grant is None else auth.grant.cat,
                mode=auth.mode,
                decider=auth.decider,
                applicant=checked.applicant,
                materials=checked.materials,
                notes=checked.notes,
                limit=checked.item.time_limit_days,
                deadline=deadline.date,
                flags=tuple(flags),
                grant=auth.grant.id if auth.grant is not None else None,
                agent=checked.agent,
                extra=checked.extra,
                files=pages.refs,
                owner=auth.owner,
                parts=checked.parts,
            )
            record = self.casework.store.log.append_local(
                self.casework.keys, self.code, kinds.CASE_INTAKE, intake.to_body(), actor=actor
            )
            pages.note_held()
            if auth.mode is Mode.PROXY:
                forward = CaseEvent(Event.FORWARD, now)
                self.casework.append_event(number, forward, actor, refs={"intake": record.id})
            if decide:
                approve = CaseEvent(Event.APPROVE, now, reason="即办：受理时当场办结")
                self.casework.append_event(number, approve, actor, refs={"intake": record.id})
        return self.casework.case(number)
