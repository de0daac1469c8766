"""The clerk's pages: home, catalog, intake and the one-time notice (cases: :mod:`node.web.case_pages`).

Each handler parses the request, calls the desk, renders a template; the rules live in
:mod:`node.desk`. :func:`web.pages.page` wraps every handler (body size cap, login, role,
CSRF on every POST, errors as a page with their code); login and logout are the kit's
(:class:`web.pages.Sessions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from core.documents import DocType
from core.errors import ErrorCode, InputError, TongbanError
from node.desk import IntakeForm
from node.web.deps import DeskProvider, WorkerDesk
from node.web.render import Ctx, status_for
from web.pages import Sessions, page

DOC_TYPES = [(d.value, d.zh, d.en) for d in DocType]


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
        extra.setdefault("other_names", [])
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
            other_names = desk.other_names(checked.applicant.doc_no, checked.applicant.name)
            if (duplicates and form.get("confirm_duplicate") != "yes") or (
                other_names and form.get("confirm_name") != "yes"
            ):
                return self._intake_page(ctx, values, 409, duplicates=duplicates, other_names=other_names)
            case = desk.intake(intake, ctx.principal.actor if ctx.principal else "?")
        except InputError as exc:
            if exc.code is ErrorCode.MATERIALS_MISSING:
                notice = ctx.desk.notice(IntakeForm.from_mapping(values))
                return ctx.render("notice.html", status=422, notice=notice, error=exc, error_at="notice")
            return self._intake_page(ctx, values, status_for(exc), error=exc)
        except TongbanError as exc:
            return self._intake_page(ctx, values, status_for(exc), error=exc)
        return ctx.redirect(f"/cases/{case.case_no}/receipt")
