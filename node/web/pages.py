"""The clerk's pages: home, catalog, intake and the one-time notice (cases: :mod:`node.web.case_pages`).

Each handler parses the request, calls the desk, renders a template; the rules live in
:mod:`node.desk`. :func:`web.pages.page` wraps every handler (body size cap, login, role,
CSRF on every POST, errors as a page with their code); login and logout are the kit's
(:class:`web.pages.Sessions`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from core.catalog import Audience
from core.documents import DocType
from core.errors import ErrorCode, InputError, TongbanError
from core.intake import AGENT_AUTHORIZATION, MAX_REASON, Notice, clean_text
from node.card_reader import card_of
from node.desk import IntakeForm
from node.finder import groups, peer_groups
from node.intake import AGENT_KEYS
from node.web.deps import DeskProvider, WorkerDesk
from node.web.render import Ctx, status_for
from node.web.uploads import MAX_UPLOAD_REQUEST, uploads_of
from web.pages import Sessions, page

PERSONAL_DOC_TYPES = [(d.value, d.zh, d.en) for d in DocType if d.personal]


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
        assert ctx.principal is not None
        user = ctx.principal.actor
        deciding = ctx.principal.has("approver")
        due_now, due_soon = desk.due(user, deciding)
        return ctx.render(
            "home.html",
            counts=desk.counts(),
            recent=desk.recent(15),
            news=desk.news(user),
            due_now=due_now,
            due_soon=due_soon,
        )

    @http("GET", "/catalog")
    @page()
    def catalog(self, ctx: Ctx) -> Response:
        desk = ctx.desk
        return ctx.render(
            "catalog.html",
            items=desk.items(),
            peer_items=desk.peer_items(),
            catalog=desk.catalog(),
            calendar=desk.calendar_years(),
        )

    # -- intake ---------------------------------------------------------------------------

    @http("GET", "/intake")
    @page("clerk")
    def intake_form(self, ctx: Ctx) -> Response:
        return _intake_page(ctx, {"item": ctx.request.args.get("item", "")})

    @http("POST", "/intake")
    @page("clerk", max_body=MAX_UPLOAD_REQUEST)
    def intake(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        values = form_values(form)
        action = form.get("action", "accept")
        desk = ctx.desk
        actor = ctx.principal.actor if ctx.principal else "?"
        try:
            if action in ("card", "agent_card"):
                card = desk.read_card()
                values = card_of(values, card, "agent_" if action == "agent_card" else "")
                if action == "agent_card":
                    values["agent"] = "yes"
                return _intake_page(ctx, values, card=card)
            intake = IntakeForm.from_mapping(mapping_of(values))
            if action == "notice":
                return _notice(ctx, desk.notice(intake), intake, actor)
            if action == "refuse":
                return _refusal(ctx, intake, form.get("refuse_reason", ""), actor)
            uploads = uploads_of(ctx.request)
            if uploads:  # a material with pages is a material received
                ticked = values["materials"]
                values["materials"] = [
                    *ticked,
                    *dict.fromkeys(u.material for u in uploads if u.material not in ticked),
                ]
                intake = dataclasses.replace(IntakeForm.from_mapping(mapping_of(values)), uploads=uploads)
            checked = desk.check_intake(intake)
            duplicates = desk.similar_open(checked.applicant.doc_no, checked.item.code)
            other_names = desk.other_names(checked.applicant.doc_no, checked.applicant.name)
            if (duplicates and form.get("confirm_duplicate") != "yes") or (
                other_names and form.get("confirm_name") != "yes"
            ):
                return _intake_page(ctx, values, 409, duplicates=duplicates, other_names=other_names)
            decide = action == "accept_decide"
            if decide and ctx.principal is not None:
                ctx.principal.require("approver")
            case = desk.intake(intake, actor, decide=decide)
        except InputError as exc:
            if exc.code is ErrorCode.MATERIALS_MISSING:
                intake = IntakeForm.from_mapping(mapping_of(values))
                return _notice(ctx, desk.notice(intake), intake, actor, exc)
            return _intake_page(ctx, values, status_for(exc), error=exc)
        except TongbanError as exc:
            return _intake_page(ctx, values, status_for(exc), error=exc)
        return ctx.redirect(f"/cases/{case.case_no}/receipt")

    @http("GET", "/papers/<number>")
    @page()
    def paper(self, ctx: Ctx, number: str) -> Response:
        paper = ctx.desk.paper(number)
        return ctx.render("paper.html", paper=paper, kind=paper.kind)


APPLICANT_KEYS = ("item", "name", "doc_type", "doc_no", "phone", "notes")


def form_values(form: Any) -> dict[str, Any]:
    """What the intake form sent, as the page shows it again: the applicant, the agent's
    fields and whether one applies, the item's extra fields, the materials ticked, the other
    cities' parts chosen (多地联办: each ``city|item|cat|name``, node.intake.parts_of_form)."""
    values: dict[str, Any] = {k: form.get(k, "") for k in (*APPLICANT_KEYS, *AGENT_KEYS)}
    values["agent"] = form.get("agent", "")
    values["materials"] = form.getlist("materials")
    values["parts"] = form.getlist("parts")
    values["extra"] = {k[6:]: v for k, v in form.items() if k.startswith("extra_")}
    return values


def mapping_of(values: dict[str, Any]) -> dict[str, Any]:
    """The intake form's values as :meth:`IntakeForm.from_mapping` reads them: the agent's
    fields only when the clerk said an agent applies (an enterprise always has one)."""
    data = {k: values.get(k, "") for k in APPLICANT_KEYS}
    data["materials"] = values.get("materials", [])
    data["extra"] = values.get("extra", {})
    data["parts"] = values.get("parts", [])
    if values.get("agent") == "yes" or values.get("doc_type") == DocType.USCC.value:
        data.update({k: values.get(k, "") for k in AGENT_KEYS})
    else:  # the agent's letter ticked, then the agent taken back: the hidden box is not sent on
        data["materials"] = [m for m in data["materials"] if m != AGENT_AUTHORIZATION.code]
    return data


def _intake_page(ctx: Ctx, values: dict[str, Any], status: int = 200, **extra: Any) -> Response:
    values = {**dict.fromkeys((*APPLICANT_KEYS, *AGENT_KEYS, "agent"), ""), **values}
    values.setdefault("materials", [])
    values.setdefault("extra", {})
    extra.setdefault("duplicates", [])
    extra.setdefault("other_names", [])
    extra.setdefault("card", None)
    desk = ctx.desk
    own, others = desk.items(), desk.peer_items()
    items = [*own, *others]
    chosen = next((a for a in items if a.key == values.get("item")), None)
    enterprise = chosen is not None and chosen.item.audience is Audience.ENTERPRISE
    if enterprise:
        values["doc_type"] = DocType.USCC.value
    return ctx.render(
        "intake.html",
        status=status,
        items=items,
        groups=[*groups(own, desk.usage()), *peer_groups(others)],
        keys=desk.holdings.finder_keys(),
        chosen=chosen,
        enterprise=enterprise,
        values=values,
        doc_types=PERSONAL_DOC_TYPES,
        authorization=AGENT_AUTHORIZATION,
        part_offers=desk.part_offers() if chosen is not None and chosen.owner is None else [],
        **extra,
    )


def _notice(
    ctx: Ctx, notice: Notice, intake: IntakeForm, actor: str, exc: TongbanError | None = None
) -> Response:
    """The one-time notice, numbered and kept (a resident may come back with it)."""
    body = {
        "missing": [m.name for m in notice.missing],
        "received": [m.name for m in notice.received],
        "item_name": notice.item.name,
    }
    paper = ctx.desk.issue_paper("notice", intake, actor, body)
    if exc is None:
        return ctx.render("notice.html", notice=notice, paper=paper)
    return ctx.render("notice.html", status=422, notice=notice, paper=paper, error=exc, error_at="notice")


def _refusal(ctx: Ctx, intake: IntakeForm, reason: str, actor: str) -> Response:
    """不予受理: the application is not taken in, and the resident gets a numbered notice
    saying why (the applicant's fields are checked as for an intake)."""
    checked = ctx.desk.check_intake(intake, extra_fields=False)
    text = clean_text("reason", reason, limit=MAX_REASON)
    body = {"reason": text, "item_name": checked.item.name}
    paper = ctx.desk.issue_paper("refusal", intake, actor, body)
    return ctx.redirect(f"/papers/{paper.number}")
