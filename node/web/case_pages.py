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

from core.cases import DECISIONS
from core.errors import TongbanError
from node.web.deps import DeskProvider, WorkerDesk
from node.web.render import Ctx, status_for
from web.pages import page

STEP_FIELDS = ("reason", "missing", "delivery", "rating")
DECISION_STEPS = frozenset(e.value for e in DECISIONS)


class CasePages:
    web: WorkerDesk = DeskProvider()

    @http("GET", "/cases")
    @page()
    def cases(self, ctx: Ctx) -> Response:
        q = ctx.request.args.get("q", "").strip()
        found = ctx.desk.search(q) if q else ctx.desk.recent(50, deciding=True)
        return ctx.render("cases.html", q=q, cases=found)

    @http("GET", "/cases/<case_no>")
    @page()
    def case(self, ctx: Ctx, case_no: str) -> Response:
        return _case_page(ctx, case_no)

    @http("POST", "/cases/<case_no>/step")
    @page("clerk", "approver")
    def step(self, ctx: Ctx, case_no: str) -> Response:
        form = ctx.request.form
        event = form.get("event", "")
        assert ctx.principal is not None
        if event in DECISION_STEPS:
            ctx.principal.require("approver")
        fields = {k: form.get(k, "") for k in STEP_FIELDS}
        try:
            ctx.desk.act(case_no, event, fields, ctx.principal.actor)
        except TongbanError as exc:
            typed = {"event": event, **fields}
            return _case_page(ctx, case_no, status_for(exc), error=exc, error_at=f"step-{event}", typed=typed)
        return ctx.redirect(f"/cases/{case_no}")

    @http("GET", "/cases/<case_no>/receipt")
    @page()
    def receipt(self, ctx: Ctx, case_no: str) -> Response:
        case = ctx.desk.case(case_no)
        qr = segno.make(case_no, error="m").svg_inline(scale=3, border=2)
        release = ctx.desk.release(case.cat) or ctx.desk.catalog()
        item = release.get(case.item) if release is not None else None
        return ctx.render("receipt.html", case=case, qr=qr, item=item)

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


def _case_page(ctx: Ctx, case_no: str, status: int = 200, **extra: Any) -> Response:
    desk = ctx.desk
    case = desk.case(case_no)
    steps = desk.steps(case) if _may_act(ctx) else []
    release = desk.release(case.cat) or desk.catalog()
    item = release.get(case.item) if release is not None else None
    extra.setdefault("typed", {})
    return ctx.render(
        "case.html",
        status=status,
        case=case,
        item=item,
        events=desk.events(case_no),
        steps=steps,
        **extra,
    )


def _may_act(ctx: Ctx) -> bool:
    p = ctx.principal
    return p is not None and (p.has("clerk") or p.has("approver"))
