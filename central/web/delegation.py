"""The delegation pages: root grants to towns and the city hall, their states, revoking a
grant, revoking a node's certificate; and the audit page (rejected records, log check).

``delegation_admin`` grants and revokes; ``auditor`` reads the same lists. Every write is
one call into :mod:`central.authority` inside one transaction, so a refusal (shown with its
code) leaves nothing behind, even where one request would make several records.
"""

from __future__ import annotations

from typing import Any

from nameko.web.handlers import http
from werkzeug.wrappers import Response

from central import registry
from central.admins import AUDITOR, DELEGATION_ADMIN
from central.authority import GRANT_VALIDITY_DAYS, grant_items, revoke_grant, revoke_node
from central.store import verify
from central.web.catalog import confirmed, ungranted
from central.web.deps import CentralProvider, WorkerCentral
from central.web.render import Ctx
from core.catalog import Mode
from core.clock import SystemClock
from core.errors import AuthorityError, ErrorCode, InputError, TongbanError
from sync.projection.catalog import current_catalog
from sync.record.db import transaction
from web.pages import page
from web.render import status_for


class DelegationPages:
    web: WorkerCentral = CentralProvider()

    @http("GET", "/delegation")
    @page(DELEGATION_ADMIN, AUDITOR)
    def delegation(self, ctx: Ctx) -> Response:
        return _delegation_page(ctx)

    @http("POST", "/delegation/grant")
    @page(DELEGATION_ADMIN)
    def grant(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        try:
            mode = Mode(form["mode"]) if form.get("mode") else None
            days, depth = _int(form.get("valid_days", ""), 1, 730), _int(form.get("depth", ""), 0, 3)
            aud = form.get("aud", "")
            if aud not in {n.code for n in registry.grantees(ctx.central.store.db, ctx.now)}:
                raise AuthorityError(ErrorCode.GRANT_AUDIENCE, f"{aud}: not the city hall or a live town")
            with transaction(ctx.central.store.db):
                made = grant_items(
                    ctx.central,
                    aud,
                    form.getlist("items") or None,
                    mode,
                    valid_days=days,
                    depth=depth,
                    actor=ctx.actor,
                )
                if not made:
                    raise AuthorityError(ErrorCode.GRANT_ITEM, "none of the items is offered at that tier")
        except ValueError:
            return _delegation_page(ctx, 400, error=InputError(ErrorCode.FIELD_INVALID, "mode"))
        except TongbanError as exc:
            return _delegation_page(ctx, status_for(exc), error=exc)
        return ctx.redirect("/delegation?granted=" + str(len(made)))

    @http("POST", "/delegation/revoke")
    @page(DELEGATION_ADMIN)
    def revoke(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        try:
            target = _grant_id(form.get("grant", ""))
            confirmed(form)
            revoke_grant(ctx.central, target, form.get("reason", ""), actor=ctx.actor)
        except TongbanError as exc:
            return _delegation_page(ctx, status_for(exc), error=exc, failed=form.get("grant", ""))
        return ctx.redirect("/delegation?done=revoked")

    @http("POST", "/delegation/nodes/revoke")
    @page(DELEGATION_ADMIN)
    def revoke_node(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        try:
            confirmed(form)
            with transaction(ctx.central.store.db):
                revoke_node(ctx.central, form.get("node", ""), reason=form.get("reason", ""), actor=ctx.actor)
        except TongbanError as exc:
            return _delegation_page(ctx, status_for(exc), error=exc, failed=form.get("node", ""))
        return ctx.redirect("/delegation?done=node_revoked&what=" + form.get("node", "")[:20])

    # -- audit ------------------------------------------------------------------------------

    @http("GET", "/audit")
    @page(AUDITOR)
    def audit(self, ctx: Ctx) -> Response:
        db = ctx.central.store.db
        return ctx.render("audit.html", report=None, rejected=registry.rejected(db), forks=registry.forks(db))

    @http("POST", "/audit/verify")
    @page(AUDITOR)
    def verify(self, ctx: Ctx) -> Response:
        path = ctx.central.config.database_path
        report = self.web.pool.slow(verify, path, SystemClock())
        db = ctx.central.store.db
        return ctx.render(
            "audit.html", report=report, rejected=registry.rejected(db), forks=registry.forks(db)
        )


def _delegation_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    extra.setdefault("failed", "")
    db = ctx.central.store.db
    granted = ctx.request.args.get("granted", "")
    nodes = registry.nodes(db)
    return ctx.render(
        "delegation.html",
        status=status,
        grantees=registry.grantees(db, ctx.now),
        grants=registry.root_grants(db, ctx.central.code),
        nodes=nodes,
        node_names={n.code: n.name for n in nodes},  # names, not codes: 许村镇便民服务中心, not 330481104
        catalog=current_catalog(db),
        modes=list(Mode),
        valid_days=GRANT_VALIDITY_DAYS,
        granted=int(granted) if granted.isdigit() else None,
        ungranted=ungranted(ctx),
        **extra,
    )


def _int(text: str, low: int, high: int) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise InputError(ErrorCode.FIELD_INVALID, f"a number from {low} to {high}")
    return int(text)


def _grant_id(text: str) -> bytes:
    try:
        grant_id = bytes.fromhex(text)
    except ValueError:
        grant_id = b""
    if len(grant_id) != 32:
        raise InputError(ErrorCode.FIELD_INVALID, "grant")
    return grant_id
