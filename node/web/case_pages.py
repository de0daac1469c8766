"""The pages of a case: the list and search, a case with its history and its steps, the
receipt, and the approver's queue.

A step that is refused shows the case again with the refusal inside the step's form, the
field at fault marked and what was typed kept; nothing is signed.
"""

from __future__ import annotations

from typing import Any

import segno
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from core.cases import DECISIONS, Event, State
from core.catalog import Item
from core.errors import AuthorityError, ErrorCode, InputError, TongbanError
from core.files import DECISION_MATERIAL, PART_SUPPLEMENT_MATERIAL
from core.intake import Intake, materials_for
from node.desk import Case
from node.files import MIB, ShownFile
from node.web.deps import DeskProvider, WorkerDesk
from node.web.render import Ctx, status_for
from node.web.uploads import MAX_UPLOAD_REQUEST, file_response, uploads_of
from sync.projection import case_queries
from sync.projection.carried import carried_intake
from sync.projection.case_queries import CaseEventRow
from sync.projection.peers import peer_states
from sync.record.log import anchor_of, decode_stored, stored_record
from web.pages import page

STEP_FIELDS = ("reason", "missing", "delivery", "rating", "part")
PAPER_OF = {
    Event.REQUEST_SUPPLEMENT.value: "supplement",
    Event.APPROVE.value: "approved",
    Event.REJECT.value: "rejected",
    Event.DELIVER.value: "delivered",
}
"""The paper each step prints (its template's kind)."""
DECISION_STEPS = frozenset(e.value for e in DECISIONS)
STATES = [s.value for s in State]


class CasePages:
    web: WorkerDesk = DeskProvider()

    @http("GET", "/cases")
    @page()
    def cases(self, ctx: Ctx) -> Response:
        args = ctx.request.args
        query = {k: args.get(k, "").strip() for k in ("q", "state", "since", "until")}
        try:
            if any(query.values()):
                found = ctx.desk.search(
                    query["q"], state=query["state"], since=query["since"], until=query["until"]
                )
            else:
                found = ctx.desk.recent(50, deciding=True)
        except InputError as exc:
            return ctx.render(
                "cases.html", status=status_for(exc), query=query, cases=[], states=STATES, error=exc
            )
        return ctx.render("cases.html", query=query, cases=found, states=STATES)

    @http("GET", "/cases/<case_no>")
    @page()
    def case(self, ctx: Ctx, case_no: str) -> Response:
        return _case_page(ctx, case_no)

    @http("POST", "/cases/<case_no>/step")
    @page("clerk", "approver", max_body=MAX_UPLOAD_REQUEST)
    def step(self, ctx: Ctx, case_no: str) -> Response:
        form = ctx.request.form
        event = form.get("event", "")
        assert ctx.principal is not None
        if event in DECISION_STEPS:
            ctx.principal.require("approver")
        fields = {k: form.get(k, "") for k in STEP_FIELDS}
        try:
            ctx.desk.act(case_no, event, fields, ctx.principal.actor, uploads=uploads_of(ctx.request))
        except TongbanError as exc:
            typed = {"event": event, **fields}
            return _case_page(ctx, case_no, status_for(exc), error=exc, error_at=f"step-{event}", typed=typed)
        return ctx.redirect(f"/cases/{case_no}")

    @http("GET", "/cases/<case_no>/files/<sha>")
    @page(public=True)
    def case_file(self, ctx: Ctx, case_no: str, sha: str) -> Response:
        """A scanned page of the case, only to an account that may see the case (else
        ``E_FILE_FORBIDDEN``); headers: :func:`node.web.uploads.file_response`."""
        desk = ctx.desk
        forbidden = AuthorityError(ErrorCode.FILE_FORBIDDEN, f"{case_no}/{sha}", zh="无权查看该办件的材料")
        if ctx.principal is None:
            raise forbidden
        try:
            desk.case(case_no)
        except InputError as exc:
            if exc.code is ErrorCode.CASE_UNKNOWN:
                raise forbidden from exc
            raise
        path, ref, _active = desk.file(case_no, sha)
        pages = [f for f in desk.files_of(case_no) if f.ref.material == ref.material]
        page_no = next((i for i, f in enumerate(pages, 1) if f.ref.hex == sha), 1)
        return ctx.respond(file_response(path, ref, f"{case_no}-{ref.material}-{page_no}"))

    @http("GET", "/cases/<case_no>/receipt")
    @page()
    def receipt(self, ctx: Ctx, case_no: str) -> Response:
        desk = ctx.desk
        case = desk.case(case_no)
        qr = segno.make(case_no, error="m").svg_inline(scale=3, border=2)
        intake = desk.intake_of(case_no)
        item = _item_of(ctx, case, intake)
        agent = intake is not None and intake.agent is not None
        return ctx.render(
            "receipt.html",
            case=case,
            qr=qr,
            item=item,
            intake=intake,
            materials=materials_for(item, agent) if item is not None else (),
            clerk_name=desk.clerk_names().get(case.actor or "", case.actor),
        )

    @http("GET", "/cases/<case_no>/papers/<kind>")
    @page()
    def case_paper(self, ctx: Ctx, case_no: str, kind: str) -> Response:
        """The 补正告知书 of the case's latest supplement request, or its decision or completion
        notice: numbered by the case (``…-BZ1`` for the first supplement, ``…-JD``, ``…-BJ``)."""
        desk = ctx.desk
        case = desk.case(case_no)
        found = paper_step(desk.events(case_no), kind)
        if found is None:
            raise InputError(
                ErrorCode.NOT_FOUND, f"{case_no}: no {kind} to print", zh="该办件还没有可打印的此类文书"
            )
        step, suffix = found
        shown = PAPER_OF.get(step.event, "supplement")
        return ctx.render("case_paper.html", case=case, step=step, number=f"{case_no}-{suffix}", kind=shown)

    @http("GET", "/queue")
    @page("approver")
    def queue(self, ctx: Ctx) -> Response:
        args = ctx.request.args
        node, item = args.get("node", "").strip(), args.get("item", "").strip()
        nodes, items = ctx.desk.queue_sources()
        return ctx.render(
            "queue.html",
            cases=ctx.desk.queue(node, item),
            nodes=nodes,
            items=items,
            chosen={"node": node, "item": item},
            catalog=ctx.desk.catalog(),
        )


def paper_step(events: list[CaseEventRow], kind: str) -> tuple[CaseEventRow, str] | None:
    """The step a case paper of ``kind`` prints and its number's suffix: the latest
    supplement request (``BZ`` and its count), the decision (``JD``), the delivery (``BJ``)."""
    applied = [e for e in events if e.status == "applied"]
    if kind == "supplement":
        asked = [e for e in applied if e.event == Event.REQUEST_SUPPLEMENT.value]
        return (asked[-1], f"BZ{len(asked)}") if asked else None
    if kind == "decision":
        decided = [e for e in applied if e.event in (Event.APPROVE.value, Event.REJECT.value)]
        return (decided[-1], "JD") if decided else None
    if kind == "completion":
        done = [e for e in applied if e.event == Event.DELIVER.value]
        return (done[-1], "BJ") if done else None
    return None


def _item_of(ctx: Ctx, case: Case, intake: Intake | None = None) -> Item | None:
    if intake is not None and intake.owner:  # another city's item, as its mirror listed it
        return ctx.desk.peer_item(intake.owner, case.item, case.cat)
    release = ctx.desk.release(case.cat) or ctx.desk.catalog()
    return release.get(case.item) if release is not None else None


def _case_page(ctx: Ctx, case_no: str, status: int = 200, **extra: Any) -> Response:
    desk = ctx.desk
    case = desk.case(case_no)
    steps = desk.steps(case) if _may_act(ctx) else []
    intake = desk.intake_of(case_no)
    item = _item_of(ctx, case, intake)
    events = desk.events(case_no)
    extra.setdefault("typed", {})
    crossing = crossing_of(desk, case, intake)
    parts = parts_shown(desk, case, intake)
    return ctx.render(
        "case.html",
        status=status,
        case=case,
        item=item,
        intake=intake,
        materials=materials_for(item, intake is not None and intake.agent is not None) if item else (),
        events=events,
        steps=steps,
        papers=[kind for kind in ("supplement", "decision", "completion") if paper_step(events, kind)],
        people=_people(ctx, case, events, crossing, parts),
        messages=desk.messages_of(case_no),
        file_groups=file_groups(desk.files_of(case_no)),
        size_text=size_text,
        decision_material=DECISION_MATERIAL,
        part_material=PART_SUPPLEMENT_MATERIAL,
        crossing=crossing,
        parts=parts,
        **extra,
    )


def _people(ctx: Ctx, case: Case, events: list[CaseEventRow], crossing: dict[str, Any] | None,
            parts: list[dict[str, Any]] | None = None) -> dict[str, dict[str, str]]:  # fmt: skip
    """Each node's clerks by account, for the case's steps; our central's steps of a case that
    crosses are named by the other city whose acceptance or decision they carry (of a joint
    application: the cities of its other parts)."""
    people = {node: ctx.desk.clerk_names(node) for node in {case.node, *(e.origin for e in events)}}
    if crossing is not None:
        central = case.node if crossing["taken"] else case.decider
        people.setdefault(central, {})["sys:peers"] = ctx.t("crossing.actor", city=crossing["city"])
    elif parts:
        anchor = anchor_of(ctx.desk.db)
        cities = "、".join(p["city"] for p in parts if not p["ours"])
        if anchor is not None:
            people.setdefault(anchor.origin, {})["sys:peers"] = ctx.t("crossing.actor", city=cities)
    return people


def crossing_of(desk: Any, case: Case, intake: Intake | None) -> dict[str, Any] | None:
    """What the case page says of a case that crosses: of a case another city decides
    (异地代收), the city and how far the case has gone — at our central on its way there, or
    accepted there (its case number and deadline there); of a case another city took in for
    us, where and when; None for a case of our own city."""
    if intake is None or (intake.owner is None and intake.carried is None):
        return None
    carried = intake.carried
    net = intake.owner if intake.owner is not None else carried.net if carried is not None else ""
    held = peer_states(desk.db).get(net)
    newest = held.newest if held is not None else None
    city = newest.name if newest is not None else net
    if carried is not None:  # a case another city took in for us: when and where it did
        their_case, taken_at, _node = carried_intake(carried)
        taken = {"case_no": their_case, "at": taken_at, "joint": _joint_of(carried)}
        return {"city": city, "taken": taken, "accepted": None}
    return {"city": city, "taken": None, "accepted": case_queries.peer_acceptance(desk.db, case.case_no)}


def _joint_of(carried: Any) -> str:
    """Of our part of another city's joint application: the name of that city's own part
    (the item of the intake ``carried`` holds, checked when stored); "" for a whole case."""
    try:
        theirs = Intake.from_body(decode_stored(carried.env).body)
    except TongbanError:  # stored only after its check: never, but the page still shows
        return ""
    return theirs.item_name if theirs.parts else ""


def parts_shown(desk: Any, case: Case, intake: Any) -> list[dict[str, Any]] | None:
    """多地联办: each part of a joint application as its page lists it, ours first (the
    case's own item and state), then each other city's (its name, its item's name, its
    state there: sent, accepted with its case number and deadline, or decided); None for a
    case without parts."""
    if intake is None or not getattr(intake, "parts", ()):
        return None
    held = peer_states(desk.db)

    def city(net: str) -> str:
        state = held.get(net)
        newest = state.newest if state is not None else None
        return newest.name if newest is not None else net

    anchor = anchor_of(desk.db)
    genesis = stored_record(desk.db, anchor.genesis_id) if anchor is not None else None
    home = str(genesis.body.get("name", "")) if genesis is not None else ""
    shown: list[dict[str, Any]] = [
        {"ours": True, "city": home, "name": case.item_name, "state": case.state.value}
    ]
    for p in case_queries.parts_of(desk.db, case.case_no):
        shown.append({
            "ours": False, "city": city(p.part.city), "name": p.part.name, "state": p.status.value,
            "their_case": p.their_case, "deadline": p.deadline, "reason": p.reason, "missing": p.missing,
        })  # fmt: skip
    return shown


def file_groups(shown: list[ShownFile]) -> list[dict[str, Any]]:
    """The case's files as its page shows them: one group per record and material, in
    record then page order (``decision`` for a decision's document)."""
    groups: dict[tuple[bytes, str], dict[str, Any]] = {}
    for f in shown:
        key = (f.record_id, f.ref.material)
        group = groups.setdefault(
            key, {"material": f.ref.material, "event": f.event, "ts": f.ts, "files": []}
        )
        group["files"].append(f)
    return list(groups.values())


def size_text(size: int) -> str:
    """A file's size for a person: ``320 KB``, ``2.4 MB``."""
    return f"{size / MIB:.1f} MB" if size >= MIB else f"{max(1, round(size / 1024))} KB"


def _may_act(ctx: Ctx) -> bool:
    p = ctx.principal
    return p is not None and (p.has("clerk") or p.has("approver"))
