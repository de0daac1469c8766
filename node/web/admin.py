"""The node admin's and the auditor's pages: accounts, device tokens, delegation, log audit."""

from __future__ import annotations

from typing import Any

from nameko.web.handlers import http
from werkzeug.wrappers import Response

from core.clock import SystemClock
from core.errors import ErrorCode, InputError, TongbanError
from node.store import verify
from node.web.deps import DeskProvider, WorkerDesk
from node.web.render import Ctx, status_for
from sync.record.refused import Rejection, rejections
from web.accounts import hash_password
from web.pages import page


class Admin:
    web: WorkerDesk = DeskProvider()

    @http("GET", "/admin/clerks")
    @page("admin")
    def clerks(self, ctx: Ctx) -> Response:
        return self._clerks_page(ctx)

    def _clerks_page(self, ctx: Ctx, status: int = 200, **extra: Any) -> Response:
        clerks = ctx.clerks
        return ctx.render(
            "admin.html",
            status=status,
            clerks=clerks.all(),
            devices=clerks.devices(),
            backed_off=clerks.backed_off(),
            **extra,
        )

    @http("POST", "/admin/clerks")
    @page("admin")
    def add_clerk(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        try:
            password = form.get("password", "")
            digest = self.web.pool.slow(hash_password, password)
            assert ctx.principal is not None
            ctx.clerks.add(
                ctx.desk.keys,
                form.get("user", "").strip().lower(),
                form.get("name", ""),
                form.getlist("roles"),
                digest,
                actor=ctx.principal.actor,
            )
        except TongbanError as exc:
            return self._clerks_page(ctx, status_for(exc), error=exc)
        return ctx.redirect("/admin/clerks")

    @http("POST", "/admin/clerks/<user>/active")
    @page("admin")
    def set_active(self, ctx: Ctx, user: str) -> Response:
        assert ctx.principal is not None
        active = ctx.request.form.get("active") == "yes"
        if user == ctx.principal.actor and not active:
            raise InputError(ErrorCode.FIELD_INVALID, "an admin cannot disable their own account")
        ctx.clerks.set_active(ctx.desk.keys, user, active, actor=ctx.principal.actor)
        return ctx.redirect("/admin/clerks")

    @http("POST", "/admin/clerks/<user>/unlock")
    @page("admin")
    def unlock(self, ctx: Ctx, user: str) -> Response:
        """Lift an account's login backoff from every address (``tongban node clerk unlock``)."""
        ctx.clerks.unlock(user)
        return ctx.redirect("/admin/clerks")

    @http("POST", "/admin/devices")
    @page("admin")
    def add_device(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        try:
            token = ctx.clerks.add_device(
                form.get("name", "").strip().lower(), form.getlist("roles") or ["clerk"]
            )
        except TongbanError as exc:
            return self._clerks_page(ctx, status_for(exc), error=exc)
        return self._clerks_page(ctx, new_token=token)

    @http("POST", "/admin/devices/<name>/disable")
    @page("admin")
    def disable_device(self, ctx: Ctx, name: str) -> Response:
        ctx.clerks.disable_device(name)
        return ctx.redirect("/admin/clerks")

    # -- delegation (town admins) ------------------------------------------------------------

    @http("GET", "/admin/delegation")
    @page("admin")
    def delegation(self, ctx: Ctx) -> Response:
        return self._delegation_page(ctx)

    def _delegation_page(self, ctx: Ctx, status: int = 200, **extra: Any) -> Response:
        d = ctx.desk.delegation
        return ctx.render(
            "delegation.html",
            status=status,
            parents=d.parents(),
            children=d.children(),
            issued=d.issued(),
            catalog=ctx.desk.catalog(),
            **extra,
        )

    @http("POST", "/admin/delegation")
    @page("admin")
    def delegate(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        assert ctx.principal is not None
        try:
            parent = bytes.fromhex(form.get("parent", ""))
            days = int(form.get("valid_days", "30") or "30")
            ctx.desk.delegation.delegate(
                form.get("village", ""), parent, form.getlist("items"), days, actor=ctx.principal.actor
            )
        except ValueError:
            bad = InputError(ErrorCode.FIELD_INVALID, "grant / days", zh="上级授权或有效天数填写不正确")
            return self._delegation_page(ctx, 400, error=bad)
        except TongbanError as exc:
            return self._delegation_page(ctx, status_for(exc), error=exc)
        return ctx.redirect("/admin/delegation")

    @http("POST", "/admin/delegation/revoke")
    @page("admin")
    def revoke(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        assert ctx.principal is not None
        try:
            target = bytes.fromhex(form.get("grant", ""))
            ctx.desk.delegation.revoke(target, form.get("reason", ""), actor=ctx.principal.actor)
        except ValueError:
            bad = InputError(ErrorCode.FIELD_INVALID, "grant", zh="要撤销的授权不正确")
            return self._delegation_page(ctx, 400, error=bad)
        except TongbanError as exc:
            return self._delegation_page(ctx, status_for(exc), error=exc)
        return ctx.redirect("/admin/delegation")

    # -- audit ------------------------------------------------------------------------------

    @http("GET", "/audit")
    @page("auditor", "admin")
    def audit(self, ctx: Ctx) -> Response:
        return ctx.render("audit.html", report=None, rejected=_rejected(ctx))

    @http("POST", "/audit/verify")
    @page("auditor", "admin")
    def verify(self, ctx: Ctx) -> Response:
        path = ctx.desk.config.database_path
        report = self.web.pool.slow(verify, path, SystemClock())
        return ctx.render("audit.html", report=report, rejected=_rejected(ctx))


def _rejected(ctx: Ctx) -> list[Rejection]:
    return rejections(ctx.desk.db, newest=50)
