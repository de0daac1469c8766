"""The JSON API ``/api/v1`` for self-service kiosks and scripts.

The same desk, the same checks and the same error codes as the pages. Devices present a
token (``Authorization: Bearer tbd_…``, made with ``tongban node device add``); there are
no cookies, so there is nothing to forge across sites. A body is one JSON object, read
strictly (:mod:`web.json_body`), with no field the document does not name. Errors are
``{"error": {"code", "message", "message_en", "detail"}}`` with an HTTP status from the
code (400 bad input, 401 no or bad token, 403 role, 404 unknown case, 409 an open case of
the same applicant and item — the body lists them, send ``confirm_duplicate`` — or another
name held for the ID number — the body lists them, send ``confirm_name`` — 413 too large,
415 not JSON, 422 materials missing — the body then lists them, 5xx the store or
``E_INTERNAL``); never the server's own error page. The document, which states
every constraint the server enforces on a request's shape, is served at
``/api/v1/openapi.json`` (:mod:`node.web.openapi`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from core.errors import AuthorityError, ErrorCode, InputError, TongbanError
from core.parts import PartProgress
from node.desk import Case, IntakeForm
from node.web.deps import DeskProvider, WorkerDesk
from node.web.openapi import document, fields
from node.web.render import Ctx
from web.json_body import parse_object


def api(*roles: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    def decorate(fn: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(fn)
        def handler(self: Any, request: Request, **kwargs: Any) -> Response:
            try:
                ctx = Ctx.build(request, self.web.desk)
            except Exception as exc:  # no handle to the store: the body says why, with its code
                return Ctx.unavailable_json(request, exc, self.web.pool.options)
            try:
                ctx.check_size()
                header = request.headers.get("Authorization", "")
                if not header.startswith("Bearer "):
                    raise AuthorityError(ErrorCode.TOKEN_INVALID, "send Authorization: Bearer <token>")
                ctx.principal = ctx.clerks.device(header[7:].strip())
                if roles:
                    ctx.principal.require(*roles)
                return fn(self, ctx, **kwargs)
            except Exception as exc:  # a refusal with its code, anything else E_INTERNAL
                return ctx.json_error(exc)

        return handler

    return decorate


def _body(ctx: Ctx, schema: str) -> dict[str, Any]:
    """The request's JSON object, with only the fields of ``schema`` (the document's)."""
    data = parse_object(ctx.request.get_data(), ctx.request.headers.get("Content-Type"))
    unknown = sorted(set(data) - fields(schema))
    if unknown:
        raise InputError(
            ErrorCode.FIELD_INVALID, f"unknown field {unknown[0]!r}", zh=f"没有名为 {unknown[0]} 的字段"
        )
    for flag in ("confirm_duplicate", "confirm_name"):
        if not isinstance(data.get(flag, False), bool):
            raise InputError(ErrorCode.FIELD_INVALID, f"{flag}: true or false")
    return data


def _status(ctx: Ctx) -> dict[str, Any]:
    desk = ctx.desk
    catalog = desk.catalog()
    sync = desk.sync_status()
    return {
        "node": {"code": desk.code, "tier": desk.tier, "name": desk.config.node.name},
        "catalog": {"version": catalog.version, "expires_at": catalog.expires_at} if catalog else None,
        "banners": [
            {"level": b.level, "code": b.code, "detail": b.detail, "key": b.key} for b in desk.banners()
        ],
        "sync": {
            "last_ok": sync.last_ok,
            "last_attempt": sync.last_attempt,
            "last_error": sync.last_error,
            "waiting_up": sync.waiting_up,
            "waiting_down": sync.waiting_down,
        },
        "counts": asdict(desk.counts()),
    }


def _item(a: Any) -> dict[str, Any]:
    item = a.item
    return {
        "key": a.key,
        "owner": a.owner,
        "owner_name": a.owner_name or None,
        "code": item.code,
        "name": item.name,
        "name_en": item.name_en,
        "department": item.department,
        "mode": a.mode.value if a.mode else None,
        "decider": a.decider,
        "verdict": a.auth.verdict.value,
        "flags": [c.value for c in a.auth.flags],
        "time_limit_days": item.time_limit_days,
        "materials": [
            {"code": m.code, "name": m.name, "required": m.required, "original": m.original}
            for m in item.materials
        ],
        "fields": [
            {"code": f.code, "label": f.label, "kind": f.kind, "required": f.required, "max": f.max}
            for f in item.fields
        ],
    }


class Api:
    web: WorkerDesk = DeskProvider()

    @http("GET", "/api/v1/openapi.json")
    def api_openapi(self, request: Request) -> Response:
        return Response(json.dumps(document(), ensure_ascii=False), mimetype="application/json")

    @http("GET", "/api/v1/status")
    @api()
    def api_status(self, ctx: Ctx) -> Response:
        return ctx.json(_status(ctx))

    @http("GET", "/api/v1/items")
    @api()
    def api_items(self, ctx: Ctx) -> Response:
        desk = ctx.desk
        return ctx.json({
            "items": [_item(a) for a in (*desk.items(), *desk.peer_items())],
            "part_offers": [asdict(o) for o in desk.part_offers()],
        })  # fmt: skip

    @http("POST", "/api/v1/cases")
    @api("clerk")
    def api_intake(self, ctx: Ctx) -> Response:
        data = _body(ctx, "Intake")
        form = IntakeForm.from_mapping(data)
        desk = ctx.desk
        if not data.get("confirm_duplicate", False):
            checked = desk.check_intake(form)
            duplicates = desk.similar_open(checked.applicant.doc_no, checked.item.code)
            if duplicates:
                exc = InputError(ErrorCode.CASE_DUPLICATE, ", ".join(c.case_no for c in duplicates))
                return _duplicate(ctx, exc, duplicates)
        if not data.get("confirm_name", False):
            checked = desk.check_intake(form)
            others = desk.other_names(checked.applicant.doc_no, checked.applicant.name)
            if others:
                exc = InputError(ErrorCode.CASE_NAME_MISMATCH, "names: " + ", ".join(others))
                return _conflict(ctx, exc, "names", others)
        try:
            assert ctx.principal is not None
            case = desk.intake(form, ctx.principal.actor)
        except InputError as exc:
            if exc.code is ErrorCode.MATERIALS_MISSING:
                return _notice_error(ctx, form, exc)
            raise
        return ctx.json({"case": asdict(case)}, 201)

    @http("POST", "/api/v1/notices")
    @api("clerk")
    def api_notice(self, ctx: Ctx) -> Response:
        notice = ctx.desk.notice(IntakeForm.from_mapping(_body(ctx, "Intake")))
        return ctx.json(_notice(notice))

    @http("GET", "/api/v1/cases")
    @api()
    def api_search(self, ctx: Ctx) -> Response:
        args = {k: ctx.request.args.get(k, "") for k in ("q", "state", "since", "until")}
        if not args["q"].strip():
            raise InputError(ErrorCode.FIELD_REQUIRED, "q")
        found = ctx.desk.search(args["q"], state=args["state"], since=args["since"], until=args["until"])
        return ctx.json({"cases": [asdict(c) for c in found]})

    @http("GET", "/api/v1/cases/<case_no>")
    @api()
    def api_case(self, ctx: Ctx, case_no: str) -> Response:
        desk = ctx.desk
        case = asdict(desk.case(case_no))
        events = [asdict(e) for e in desk.events(case_no)]
        return ctx.json({"case": case, "events": events, "parts": [_part(p) for p in desk.parts_of(case_no)]})

    @http("POST", "/api/v1/cases/<case_no>/events")
    @api("clerk")
    def api_event(self, ctx: Ctx, case_no: str) -> Response:
        data = _body(ctx, "Event")
        event = data.get("event")
        if not isinstance(event, str):
            raise InputError(ErrorCode.FIELD_REQUIRED, "event")
        if event in ("approve", "reject", "request_supplement"):
            raise AuthorityError(ErrorCode.ROLE, "decisions are made by an approver on the node's screen")
        assert ctx.principal is not None
        case = ctx.desk.act(case_no, event, data, ctx.principal.actor)
        return ctx.json({"case": asdict(case)})


def _part(progress: PartProgress) -> dict[str, Any]:
    """多地联办: one other city's part of a case, where it stands."""
    return {
        **asdict(progress.part),
        "status": progress.status.value,
        "status_zh": progress.status.zh,
        "their_case": progress.their_case or None,
        "deadline": progress.deadline or None,
        "reason": progress.reason or None,
        "at": progress.at or None,
        "missing": list(progress.missing),
    }


def _duplicate(ctx: Ctx, exc: TongbanError, duplicates: list[Case]) -> Response:
    return _conflict(ctx, exc, "cases", [c.case_no for c in duplicates])


def _conflict(ctx: Ctx, exc: TongbanError, key: str, values: list[str]) -> Response:
    """409 with what the clerk must confirm (``key``: the open cases, or the other names)."""
    response = ctx.json_error(exc)
    payload = json.loads(response.get_data(as_text=True))
    payload["error"][key] = values
    response.set_data(json.dumps(payload, ensure_ascii=False))
    response.status_code = 409
    return response


def _notice(notice: Any) -> dict[str, Any]:
    return {
        "item": notice.item.code,
        "item_name": notice.item.name,
        "applicant": notice.applicant_name,
        "missing": [{"code": m.code, "name": m.name} for m in notice.missing],
        "received": [{"code": m.code, "name": m.name} for m in notice.received],
        "issued": notice.issued.isoformat(),
        "node": notice.node_name,
    }


def _notice_error(ctx: Ctx, form: IntakeForm, exc: TongbanError) -> Response:
    response = ctx.json_error(exc)
    payload = json.loads(response.get_data(as_text=True))
    payload["error"]["notice"] = _notice(ctx.desk.notice(form))
    response.set_data(json.dumps(payload, ensure_ascii=False))
    return response
