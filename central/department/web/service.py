"""The department desk as a nameko web service: the queue, a case, its decision.

Each handler parses the request, calls :class:`central.department.desk.DepartmentDesk`,
renders a template. :func:`web.pages.page` wraps every handler (body size cap, login, role,
CSRF on every POST, errors as a page with their code); login and logout are the kit's.
Only an ``approver`` decides; an ``auditor`` or ``admin`` reads.

The files of a case (``/cases/<case>/files/<sha>``, and ``…/thumb`` for an image's
thumbnail) are served to the department's logged-in desk accounts only (``E_FILE_FORBIDDEN``
otherwise), with the pages' security headers (nosniff, the Content-Security-Policy),
``Cache-Control: private`` and a PDF always as a download (``Content-Disposition:
attachment``), never shown in the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko.timer import timer
from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from central.department.service import DeskProvider, WorkerDesk
from central.department.web.render import DeptCtx
from core.errors import AuthorityError, ErrorCode, InputError, TongbanError
from core.files import MAX_FILE_BYTES, PDF
from core.scans import normalise
from web.pages import Sessions, page, static_file
from web.render import status_for

STATIC = {"app.css": "web", "app.js": "web"}
READERS = ("approver", "auditor", "admin")
THUMB_SIDE = 240
"""Pixels of a thumbnail's longer side."""
FILE_CACHE = "private, max-age=3600"
"""A file never changes under its name (its SHA-256); only the clerk's browser keeps it."""
UPLOAD_BODY = MAX_FILE_BYTES + 64 * 1024


def thumbnail(data: bytes) -> bytes:
    return normalise(data, "thumbnail", max_side=THUMB_SIDE).data


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

    @http("GET", "/cases/<case_no>/files/<sha>")
    @page(public=True)
    def case_file(self, ctx: DeptCtx, case_no: str, sha: str) -> Response:
        return self._file(ctx, case_no, sha, thumb=False)

    @http("GET", "/cases/<case_no>/files/<sha>/thumb")
    @page(public=True)
    def case_thumb(self, ctx: DeptCtx, case_no: str, sha: str) -> Response:
        return self._file(ctx, case_no, sha, thumb=True)

    def _file(self, ctx: DeptCtx, case_no: str, sha: str, *, thumb: bool) -> Response:
        if ctx.principal is None or not any(ctx.principal.has(role) for role in READERS):
            raise AuthorityError(
                ErrorCode.FILE_FORBIDDEN, f"{case_no} {sha[:16]}", zh="请以本部门审批账号登录后查看"
            )
        ctx.desk.case(case_no)  # E_CASE_UNKNOWN: not a case this department decides
        path, ref, _ = ctx.desk.files.file(case_no, sha)
        if thumb and ref.type == PDF:
            raise InputError(ErrorCode.NOT_FOUND, f"{sha[:16]}: a PDF has no thumbnail")
        data = path.read_bytes()
        if thumb:
            data = self.slow(thumbnail, data)
        response = Response(data, mimetype=ref.type)
        response.headers["Cache-Control"] = FILE_CACHE
        if ref.type == PDF:
            name = f"{case_no}-{ref.material}-{sha[:8]}.pdf"
            response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        else:
            response.headers["Content-Disposition"] = "inline"
        return ctx.respond(response)

    @http("POST", "/cases/<case_no>/decide")
    @page("approver", max_body=UPLOAD_BODY)
    def decide(self, ctx: DeptCtx, case_no: str) -> Response:
        form = ctx.request.form
        fields = {"reason": form.get("reason", ""), "missing": form.get("missing", "")}
        upload = ctx.request.files.get("letter")
        letter = (upload.filename or "letter", upload.read()) if upload and upload.filename else None
        assert ctx.principal is not None
        try:
            ctx.desk.decide(case_no, form.get("event", ""), fields, actor=ctx.principal.actor, letter=letter)
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
