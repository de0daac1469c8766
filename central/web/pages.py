"""Central web's frame and dashboard: login (the kit's), the dashboard and its CSV tables.

Every page handler parses the request, calls :mod:`central` and renders; the wrapper
:func:`web.pages.page` does login, roles, CSRF and shows refusals with their codes. The
dashboard is for every operator role; its figures are :func:`central.dashboard.snapshot`,
and the re-check of intakes against their grant chain (:mod:`central.recheck`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from central import charts, recheck
from central.dashboard import TABLES, Dashboard, snapshot, to_csv
from central.peer_view import peer_rows
from central.web.deps import CentralProvider, WorkerCentral
from central.web.render import Ctx
from core.cases import STATE_LABELS, State
from core.code_texts import code_text
from web.pages import Sessions, page

FLAGGED_SHOWN = 100
"""Intakes flagged by central's re-check listed on the dashboard (newest first)."""


class Pages(Sessions):
    web: WorkerCentral = CentralProvider()

    def context(self, request: Request) -> Ctx:
        return Ctx.build(request, self.web.central)

    def unavailable(self, request: Request, exc: Exception) -> Response:
        return Ctx.unavailable(request, exc, self.web.pool.options)

    def slow(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.web.pool.slow(fn, *args)

    @http("GET", "/")
    @page()
    def home(self, ctx: Ctx) -> Response:
        return self._dashboard(ctx)

    @http("GET", "/dashboard")
    @page()
    def dashboard(self, ctx: Ctx) -> Response:
        return self._dashboard(ctx)

    def _dashboard(self, ctx: Ctx) -> Response:
        store = ctx.central.store
        board = snapshot(store.db, now=ctx.now)
        # What arrived since central's duties last ran.
        recheck.recheck(store, ctx.central.code, max_offline_days=ctx.central.config.recheck.max_offline_days)
        checks = {"counts": recheck.counts(store), "flagged": recheck.flagged(store, FLAGGED_SHOWN)}
        rebuilding = ctx.central.keys.rebuilding
        return ctx.render(
            "dashboard.html",
            board=board,
            charts=_charts(ctx, board),
            tables=TABLES,
            checks=checks,
            rebuilding=rebuilding is not None and rebuilding.exists(),
            mb=megabytes,
            peer_rows=peer_rows(ctx.central, ctx.now)[0],
            code_text=lambda code: code_text(code, ctx.lang),
        )

    @http("GET", "/dashboard.csv")
    @page()
    def dashboard_csv(self, ctx: Ctx) -> Response:
        table = ctx.request.args.get("table", "")
        headers = {c: ctx.t("csv." + c) for c in CSV_COLUMNS}
        text = to_csv(snapshot(ctx.central.store.db, now=ctx.now), table, headers, csv_label(ctx))
        response = Response(text.encode("utf-8-sig"), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="dashboard-{table}.csv"'
        return ctx.respond(response)


CSV_COLUMNS = (
    "code", "name", "tier", "parent", "depth", "last_contact", "open_cases", "overdue_cases",
    "catalog_version", "rejected", "backlog", "revoked", "refused", "refused_codes", "alarm", "cases",
    "share", "case_no", "node", "node_name", "item", "item_name", "state", "decider", "received",
    "deadline", "days_over", "rank", "cert_expires", "software", "protocol", "files_up", "files_down",
)  # fmt: skip
"""Every column of the dashboard's CSV tables: each has its header in both languages."""
STATES = frozenset(s.value for s in State)


def megabytes(size: int) -> str:
    """Bytes of scanned pages for the dashboard: ``0``, ``0.3 MB``, ``12.5 MB``."""
    return "0" if not size else f"{max(size / 1048576, 0.1):.1f} MB"


def csv_label(ctx: Ctx) -> Callable[[str, Any], Any]:
    """A CSV value in the reader's words: a tier and a case's state by their names."""

    def label(column: str, value: Any) -> Any:
        if column == "tier" and isinstance(value, str):
            return ctx.t("tier." + value)
        if column == "state" and value in STATES:
            label_zh, label_en = STATE_LABELS[State(value)]
            return label_en if ctx.lang == "en" else label_zh
        return value

    return label


def _charts(ctx: Ctx, board: Dashboard) -> dict[str, tuple[str, str]]:
    """The dashboard's SVG charts by name, each with its title (shown over it), labelled in
    the reader's language (escaped by charts)."""
    empty = ctx.t("dashboard.empty")
    titled: dict[str, tuple[str, str]] = {}
    for tier, items in board.top_items.items():
        title = ctx.t("dashboard.top", tier=ctx.t(f"tier.{tier}"))
        bars = [(f"{i.code} {i.name}", i.cases) for i in items]
        titled[f"top.{tier}"] = (title, charts.bar_chart(bars, title=title, empty=empty))
    title = ctx.t("dashboard.volumes")
    volumes = [(ctx.t(f"tier.{v.tier}"), v.cases) for v in board.volumes]
    titled["volumes"] = (title, charts.share_chart(volumes, title=title, empty=empty, lang=ctx.lang))
    title = ctx.t("dashboard.satisfaction")
    ratings = [(ctx.t(f"rating.{r}"), n) for r, n in board.satisfaction.items()]
    titled["satisfaction"] = (title, charts.bar_chart(ratings, title=title, empty=empty))
    return titled
