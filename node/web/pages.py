"""The clerk's pages: home, catalog, intake, receipt, notice, cases, a case's result, queue.

Each handler parses the request, calls the desk, renders a template; the rules live in
:mod:`node.desk`. :func:`web.pages.page` wraps every handler (body size cap, login, role,
CSRF on every POST, errors as a page with their code); login and logout are the kit's
(:class:`web.pages.Sessions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import segno
from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from core.documents import DocType
from core.errors import ErrorCode, InputError, TongbanError
from node.desk import Case, IntakeForm
from node.web.deps import DeskProvider, WorkerDesk
from node.web.render import Ctx, status_for
from sync.record.trust import certificates
from web.pages import Sessions, page

DOC_TYPES = [(d.value, d.zh, d.en) for d in DocType]
DECIDED = ("approve", "reject")


class Pages(Sessions):
    web: WorkerDesk = DeskProvider()

    def context(self, request: Request) -> Ctx:
        return Ctx.build(request, self.web.desk)

    def unavailable(self, request: Request, exc: Exception) -> Response:
        return Ctx.unavailable(request, exc, self.web.pool.options)

    def slow(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.web.pool.slow(fn, *args)

    # -- home, catalog ----------------------------------------------------------------------

    @http("GET", "/")
    @page()
    def home(self, ctx: Ctx) -> Response:
        desk = ctx.desk
        return ctx.render("home.html", counts=desk.counts(), recent=desk.recent(15))

    @http("GET", "/catalog")
    @page()
    def catalog(self, ctx: Ctx) -> Response:
        desk = ctx.desk
        return ctx.render(
            "catalog.html", items=desk.items(), catalog=desk.catalog(), calendar=desk.calendar_years()
        )

    # -- intake ---------------------------------------------------------------------------

    @http("GET", "/intake")
    @page("clerk")
    def intake_form(self, ctx: Ctx) -> Response:
        return self._intake_page(ctx, {"item": ctx.request.args.get("item", "")})

    def _intake_page(self, ctx: Ctx, values: dict[str, Any], status: int = 200, **extra: Any) -> Response:
        values = {**dict.fromkeys(("item", "name", "doc_type", "doc_no", "phone", "notes"), ""), **values}
        values.setdefault("materials", [])
        extra.setdefault("duplicates", [])
        items = ctx.desk.items()
        chosen = next((a for a in items if a.item.code == values.get("item")), None)
        return ctx.render(
            "intake.html",
            status=status,
            items=items,
            chosen=chosen,
            values=values,
            doc_types=DOC_TYPES,
            **extra,
        )

    @http("POST", "/intake")
    @page("clerk")
    def intake(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        values: dict[str, Any] = {
            k: form.get(k, "") for k in ("item", "name", "doc_type", "doc_no", "phone", "notes")
        }
        values["materials"] = form.getlist("materials")
        try:
            intake = IntakeForm.from_mapping(values)
            desk = ctx.desk
            if form.get("action") == "notice":
                notice = desk.notice(intake)
                return ctx.render("notice.html", notice=notice)
            checked = desk.check_intake(intake)
            duplicates = desk.similar_open(checked.applicant.doc_no, checked.item.code)
            if duplicates and form.get("confirm_duplicate") != "yes":
                return self._intake_page(ctx, values, 409, duplicates=duplicates)
            case = desk.intake(intake, ctx.principal.actor if ctx.principal else "?")
        except InputError as exc:
            if exc.code is ErrorCode.MATERIALS_MISSING:
                notice = ctx.desk.notice(IntakeForm.from_mapping(values))
                return ctx.render("notice.html", status=422, notice=notice, error=exc)
            return self._intake_page(ctx, values, status_for(exc), error=exc)
        except TongbanError as exc:
            return self._intake_page(ctx, values, status_for(exc), error=exc)
        return ctx.redirect(f"/cases/{case.case_no}/receipt")

    # -- cases ----------------------------------------------------------------------------

    @http("GET", "/cases")
    @page()
    def cases(self, ctx: Ctx) -> Response:
        q = ctx.request.args.get("q", "").strip()
        found = ctx.desk.search(q) if q else ctx.desk.recent(50)
        return ctx.render("cases.html", q=q, cases=found)

    @http("GET", "/cases/<case_no>")
    @page()
    def case(self, ctx: Ctx, case_no: str) -> Response:
        desk = ctx.desk
        case = desk.case(case_no)
        steps = desk.steps(case) if ctx.principal and _may_act(ctx, case) else []
        return ctx.render("case.html", case=case, events=desk.events(case_no), steps=steps)

    @http("POST", "/cases/<case_no>/step")
    @page("clerk", "approver")
    def step(self, ctx: Ctx, case_no: str) -> Response:
        form = ctx.request.form
        event = form.get("event", "")
        case = ctx.desk.case(case_no)
        if event in ("approve", "reject", "request_supplement"):
            assert ctx.principal is not None
            ctx.principal.require("approver")
        del case
        fields = {k: form.get(k, "") for k in ("reason", "missing", "delivery", "rating")}
        ctx.desk.act(case_no, event, fields, ctx.principal.actor if ctx.principal else "?")
        return ctx.redirect(f"/cases/{case_no}")

    @http("GET", "/cases/<case_no>/receipt")
    @page()
    def receipt(self, ctx: Ctx, case_no: str) -> Response:
        case = ctx.desk.case(case_no)
        qr = segno.make(case_no, error="m").svg_inline(scale=3, border=2)
        item = None
        catalog = ctx.desk.catalog()
        if catalog is not None:
            item = catalog.get(case.item)
        return ctx.render("receipt.html", case=case, qr=qr, item=item)

    @http("GET", "/cases/<case_no>/result")
    @page()
    def result(self, ctx: Ctx, case_no: str) -> Response:
        """The decision as the window prints it for the applicant (approved or rejected)."""
        case = ctx.desk.case(case_no)
        decisions = [e for e in ctx.desk.events(case_no) if e.status == "applied" and e.event in DECIDED]
        if not decisions:
            raise InputError(ErrorCode.CASE_TRANSITION, f"{case_no} is not decided yet")
        names = {c.code: c.name for c in reversed(certificates(ctx.desk.db, case.decider))}
        return ctx.render(
            "result.html", case=case, decision=decisions[-1], decider=names.get(case.decider, "")
        )

    @http("GET", "/queue")
    @page("approver")
    def queue(self, ctx: Ctx) -> Response:
        return ctx.render("queue.html", cases=ctx.desk.queue())


def _may_act(ctx: Ctx, case: Case) -> bool:
    p = ctx.principal
    return p is not None and (p.has("clerk") or p.has("approver"))
