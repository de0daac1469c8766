"""The peer cities page (跨市协作): agreements with other cities, their states and scopes, and
the forms that propose, confirm, renew and revoke them (docs/federation.md §2-3).

``delegation_admin`` manages agreements, as it manages the city's other grants of trust;
``auditor`` reads the same lists. Every form is one call into :mod:`central.peers` (the
functions the command line calls), so a refusal shows its code and changes nothing: a
confirmation whose typed fingerprint is not the proposed root's is ``E_PEER_FINGERPRINT``
and nothing is signed. The rows are :mod:`central.peer_view`'s.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nameko.web.handlers import http
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from central import peers
from central.admins import AUDITOR, DELEGATION_ADMIN
from central.peer_view import peer_rows
from central.web.catalog import confirmed
from central.web.deps import CentralProvider, WorkerCentral
from central.web.render import Ctx
from core.code_texts import code_text
from core.errors import ErrorCode, InputError, TongbanError
from core.federation import MODES, ROLES, Scope
from sync.record.keys import fingerprint
from web.pages import page
from web.render import status_for


class PeerPages:
    web: WorkerCentral = CentralProvider()

    @http("GET", "/peers")
    @page(DELEGATION_ADMIN, AUDITOR)
    def peer_cities(self, ctx: Ctx) -> Response:
        return _peers_page(ctx)

    @http("POST", "/peers/propose")
    @page(DELEGATION_ADMIN)
    def peer_propose(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        try:
            proposal = peers.propose(
                ctx.central,
                peer=form.get("net", "").strip(),
                name=form.get("name", ""),
                root_pk=peers.root_key_of(form.get("root_pk", "")),
                scope=_scope(form),
                valid_days=_days(form),
            )
        except TongbanError as exc:
            return _peers_page(ctx, status_for(exc), error=exc, entered=form, action="propose")
        return ctx.redirect("/peers?proposed=" + quote(proposal.peer, safe=""))

    @http("POST", "/peers/confirm")
    @page(DELEGATION_ADMIN)
    def peer_confirm(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        net = form.get("net", "")
        try:
            record = peers.confirm(ctx.central, net, form.get("fingerprint", ""))
        except TongbanError as exc:
            return _peers_page(ctx, status_for(exc), error=exc, failed=net)
        return _done(ctx, "peer_confirmed", record.body["name"], record.body["serial"])

    @http("POST", "/peers/renew")
    @page(DELEGATION_ADMIN)
    def peer_renew(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        net = form.get("net", "")
        try:
            scope = _scope(form) if _asks_scope(form) else None
            record = peers.renew(ctx.central, net, scope=scope, valid_days=_days(form))
        except TongbanError as exc:
            return _peers_page(ctx, status_for(exc), error=exc, failed=net, action="renew")
        return _done(ctx, "peer_renewed", record.body["name"], record.body["serial"])

    @http("POST", "/peers/revoke")
    @page(DELEGATION_ADMIN)
    def peer_revoke(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        net = form.get("net", "")
        try:
            confirmed(form)
            record = peers.revoke(ctx.central, net, form.get("reason", ""))
        except TongbanError as exc:
            return _peers_page(ctx, status_for(exc), error=exc, failed=net, action="revoke")
        return _done(ctx, "peer_revoked", _name_of(ctx, net), record.body["serial"])


def _peers_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    extra.setdefault("failed", "")
    extra.setdefault("entered", MultiDict())
    extra.setdefault("action", "")
    rows, proposals = peer_rows(ctx.central, ctx.now)
    wanted = ctx.request.args.get("proposed", "")
    root = peers.own_root(ctx.central)
    return ctx.render(
        "peers.html",
        status=status,
        rows=rows,
        peer_rows=rows,
        code_text=lambda code: code_text(code, ctx.lang),
        proposals=proposals,
        proposed=next((p for p in proposals if p.net == wanted), None),
        own={"root": root.hex(), "fingerprint": fingerprint(root)},
        modes=MODES,
        roles=ROLES,
        valid_days=peers.VALID_DAYS,
        empty=MultiDict(),
        **extra,
    )


def _done(ctx: Ctx, key: str, name: str, serial: int) -> Response:
    return ctx.redirect(f"/peers?done={key}&n={serial}&what=" + quote(name, safe=""))


def _name_of(ctx: Ctx, net: str) -> str:
    rows, _ = peer_rows(ctx.central, ctx.now)
    return next((r.name for r in rows if r.net == net), net)


def _asks_scope(form: MultiDict[str, str]) -> bool:
    """A renewal changes the scope only when the operator named items, modes or roles."""
    return bool(form.get("items", "").strip() or form.getlist("modes") or form.getlist("roles"))


def _scope(form: MultiDict[str, str]) -> Scope:
    items = peers.items_of(form.get("items", "").splitlines())
    return peers.scope_of(items, form.getlist("modes"), form.getlist("roles"))


def _days(form: MultiDict[str, str]) -> int:
    text = form.get("valid_days", "").strip()
    if not text.isdigit():
        raise InputError(
            ErrorCode.FIELD_INVALID, "valid days: a number", zh="有效天数应为数字", field="valid_days"
        )
    return int(text)
