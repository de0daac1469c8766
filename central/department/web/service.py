"""The department desk as a nameko web service: the queue, a case, its decision.

Each handler parses the request, calls :class:`central.department.desk.DepartmentDesk`,
renders a template. :func:`web.pages.page` wraps every handler (body size cap, login, role,
CSRF on every POST, errors as a page with their code); login and logout are the kit's.
Only an ``approver`` decides; an ``auditor`` or ``admin`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko.timer import timer
from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from central.department.service import DeskProvider, WorkerDesk
from central.department.web.render import DeptCtx
from core.errors import TongbanError
from web.pages import Sessions, page, static_file
from web.render import status_for

STATIC = {"app.css": "web", "app.js": "web"}


class DepartmentWeb(Sessions):
    name = "department_web"
    web: WorkerDesk = DeskProvider()

    def context(self, request: Request) -> DeptCtx:
        return DeptCtx.build(request, self.web.desk)

    def slow(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.web.pool.slow(fn, *args)

    @http("GET", "/")
    @page("approver", "auditor", "admin")
    def home(self, ctx: DeptCtx) -> Response:
        return ctx.render("queue.html", cases=ctx.desk.queue(), decided=ctx.desk.decided(15))

    @http("GET", "/cases/<case_no>")
    @page("approver", "auditor", "admin")
    def case(self, ctx: DeptCtx, case_no: str) -> Response:
        return ctx.render("case.html", file=ctx.desk.case(case_no), nodes=ctx.desk.node_names())

    @http("POST", "/cases/<case_no>/decide")
    @page("approver")
    def decide(self, ctx: DeptCtx, case_no: str) -> Response:
        form = ctx.request.form
        fields = {"reason": form.get("reason", ""), "missing": form.get("missing", "")}
        assert ctx.principal is not None
        try:
            ctx.desk.decide(case_no, form.get("event", ""), fields, actor=ctx.principal.actor)
        except TongbanError as exc:
            nodes = ctx.desk.node_names()
            return ctx.render(
                "case.html", status_for(exc), file=ctx.desk.case(case_no), nodes=nodes, error=exc
            )
        return ctx.redirect(f"/cases/{case_no}")

    @http("GET", "/static/<name>")
    def static(self, request: Request, name: str) -> Response:
        return static_file(name, STATIC)

    @timer(interval=1)
    def tick(self) -> None:
        """Wakes the hub each second so SIGTERM stops the service at once (nameko sleeps 60 s)."""
