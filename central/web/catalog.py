"""The catalog pages: the current release, the release history and differences, and the
draft (import, edit one item, discard, publish after a confirmation showing the diff).

Every operator may read the catalog and compare releases; only ``catalog_admin`` sees and
changes the draft and publishes. Rules and storage are :mod:`central.drafts`,
:mod:`central.draft_store` and :mod:`central.catalog_files`; a refusal re-renders the page
with its code and changes nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nameko.web.handlers import http
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from central import registry
from central.admins import CATALOG_ADMIN
from central.authority import CATALOG_VALIDITY_DAYS
from central.catalog_files import MAX_FILE, items_from_file
from central.draft_store import CatalogDraft
from central.drafts import preview, publish_draft
from central.web.deps import CentralProvider, WorkerCentral
from central.web.render import Ctx
from core.catalog import TIERS, CatalogRelease, Item, Material, Mode
from core.catalog_data import items_from_data
from core.catalog_diff import diff_releases
from core.errors import ErrorCode, InputError, TongbanError
from sync.projection.catalog import catalog_release, current_catalog
from web.pages import page
from web.render import status_for

MATERIAL_ROWS_EXTRA = 2


class CatalogPages:
    web: WorkerCentral = CentralProvider()

    # -- reading: every role --------------------------------------------------------------

    @http("GET", "/catalog")
    @page()
    def catalog(self, ctx: Ctx) -> Response:
        return ctx.render("catalog.html", catalog=current_catalog(ctx.central.store.db))

    @http("GET", "/catalog/releases")
    @page()
    def releases(self, ctx: Ctx) -> Response:
        published = ctx.request.args.get("published", "")
        return ctx.render(
            "releases.html",
            releases=registry.releases(ctx.central.store.db),
            published=int(published) if published.isdigit() else None,
            ungranted=ungranted(ctx) if published else [],
        )

    @http("GET", "/catalog/diff")
    @page()
    def diff(self, ctx: Ctx) -> Response:
        db = ctx.central.store.db
        old, new = (_number(ctx.request.args.get(k, ""), "version") for k in ("old", "new"))
        releases = []
        for version in (old, new):
            release = catalog_release(db, version)
            if release is None:
                raise InputError(ErrorCode.NOT_FOUND, f"catalog release v{version}")
            releases.append(release)
        old_release, new_release = releases
        diff = diff_view(old_release, new_release, ctx.t)
        return ctx.render("diff.html", old=old_release, new=new_release, diff=diff)

    # -- the draft: catalog_admin ---------------------------------------------------------

    @http("GET", "/catalog/draft")
    @page(CATALOG_ADMIN)
    def draft(self, ctx: Ctx) -> Response:
        return self._draft_page(ctx)

    def _draft_page(self, ctx: Ctx, status: int = 200, **extra: Any) -> Response:
        extra.setdefault("replacing", None)
        draft = _draft(ctx)
        return ctx.render(
            "draft.html",
            status=status,
            info=draft.info(),
            items=draft.items(),
            catalog=current_catalog(ctx.central.store.db),
            **extra,
        )

    @http("POST", "/catalog/draft/import")
    @page(CATALOG_ADMIN, max_body=MAX_FILE * 4 // 3 + 64 * 1024)
    def import_file(self, ctx: Ctx) -> Response:
        """Merge a file into the draft by item code (the default), or replace the whole
        draft: a replace that deletes items shows them and asks to confirm their count."""
        form = ctx.request.form
        try:
            filename, content = _uploaded(ctx)
            items = items_from_file(filename, content)
            draft = _draft(ctx)
            if form.get("how") == "replace":
                losing = replaced_away(draft, current_catalog(ctx.central.store.db), items)
                if losing and form.get("confirm_deletes") != str(len(losing)):
                    refusal = InputError(
                        ErrorCode.DRAFT_REPLACE,
                        f"{len(losing)} items deleted",
                        zh=f"将删除{len(losing)}个事项",
                    )
                    replacing = Replacing(filename, base64.b64encode(content).decode(), losing, len(items))
                    return self._draft_page(ctx, 409, error=refusal, replacing=replacing)
                draft.replace(items, filename, ctx.actor)
                return ctx.redirect(f"/catalog/draft?done=replaced&n={len(items)}")
            draft.merge(items, filename, ctx.actor)
        except TongbanError as exc:
            return self._draft_page(ctx, status_for(exc), error=exc)
        return ctx.redirect(f"/catalog/draft?done=merged&n={len(items)}")

    @http("POST", "/catalog/draft/start")
    @page(CATALOG_ADMIN)
    def start(self, ctx: Ctx) -> Response:
        try:
            _draft(ctx).start_from_current(ctx.actor)
        except TongbanError as exc:
            return self._draft_page(ctx, status_for(exc), error=exc)
        return ctx.redirect("/catalog/draft")

    @http("POST", "/catalog/draft/discard")
    @page(CATALOG_ADMIN)
    def discard(self, ctx: Ctx) -> Response:
        try:
            confirmed(ctx.request.form)
            _draft(ctx).discard()
        except TongbanError as exc:
            return self._draft_page(ctx, status_for(exc), error=exc)
        return ctx.redirect("/catalog/draft?done=discarded")

    @http("GET", "/catalog/draft/items/<code>")
    @page(CATALOG_ADMIN)
    def edit_form(self, ctx: Ctx, code: str) -> Response:
        return _edit_page(ctx, _draft(ctx).item(code))

    @http("POST", "/catalog/draft/items/<code>")
    @page(CATALOG_ADMIN)
    def edit(self, ctx: Ctx, code: str) -> Response:
        draft = _draft(ctx)
        old = draft.item(code)
        try:
            draft.put(item_from_form(old, ctx.request.form), ctx.actor)
        except TongbanError as exc:
            return _edit_page(ctx, old, status_for(exc), form=ctx.request.form, error=exc)
        return ctx.redirect("/catalog/draft")

    @http("POST", "/catalog/draft/items/<code>/remove")
    @page(CATALOG_ADMIN)
    def remove(self, ctx: Ctx, code: str) -> Response:
        _draft(ctx).remove(code, ctx.actor)
        return ctx.redirect("/catalog/draft")

    # -- publishing -----------------------------------------------------------------------

    @http("GET", "/catalog/publish")
    @page(CATALOG_ADMIN)
    def confirm(self, ctx: Ctx) -> Response:
        return _confirm_page(ctx)

    @http("POST", "/catalog/publish")
    @page(CATALOG_ADMIN)
    def publish(self, ctx: Ctx) -> Response:
        form = ctx.request.form
        try:
            days, base = (
                _number(form.get("valid_days", ""), "valid days"),
                _number(form.get("base", ""), "base"),
            )
            _, release = publish_draft(
                ctx.central, digest=form.get("digest", ""), base=base, valid_days=days, actor=ctx.actor
            )
        except TongbanError as exc:
            if exc.code is ErrorCode.DRAFT_NONE:
                raise
            return _confirm_page(ctx, status_for(exc), error=exc)
        return ctx.redirect(f"/catalog/releases?published={release.version}")


@dataclass(frozen=True)
class Replacing:
    """A replace waiting for its confirmation: the file again, and what it deletes."""

    filename: str
    content: str  # base64: the confirmation sends the same bytes, not a second choice of file
    losing: list[tuple[str, str]]  # (code, name) of the items the draft would lose
    count: int  # items in the file


def replaced_away(
    draft: CatalogDraft, current: CatalogRelease | None, items: Sequence[Item]
) -> list[tuple[str, str]]:
    """The items a replace by ``items`` deletes: those of the draft (or, with no draft, of
    the current release, which the next release would lose) the file does not have."""
    kept = {i.code for i in items}
    before = draft.items() if draft.info() is not None else (current.items if current else ())
    return [(i.code, i.name) for i in before if i.code not in kept]


def _uploaded(ctx: Ctx) -> tuple[str, bytes]:
    """The file chosen, or the one a replace's confirmation sends again."""
    upload = ctx.request.files.get("file")
    if upload is not None and upload.filename:
        return upload.filename, upload.read()
    again = ctx.request.form.get("content", "")
    if again and ctx.request.form.get("filename"):
        try:
            return ctx.request.form["filename"], base64.b64decode(again, validate=True)
        except ValueError:
            raise InputError(ErrorCode.FIELD_INVALID, "content", field="file") from None
    raise InputError(ErrorCode.FIELD_REQUIRED, "file", zh="请选择要导入的文件", field="file")


def ungranted(ctx: Ctx) -> list[tuple[str, str]]:
    """The current release's items no live grant of central's covers, those it added
    first: no town may take them in, so no village sees them, until they are granted (and
    passed down)."""
    db = ctx.central.store.db
    catalog = current_catalog(db)
    if catalog is None:
        return []
    live = [row.grant for row in registry.root_grants(db, ctx.central.code) if not row.revoked]
    covered = {code for g in live if g.exp > ctx.now for code in g.items}
    before = catalog_release(db, catalog.version - 1)
    new = {i.code for i in catalog.items} - ({i.code for i in before.items} if before else set())
    found = [(i.code, i.name) for i in catalog.items if i.code not in covered]
    return sorted(found, key=lambda pair: pair[0] not in new)  # what this release added, first


def confirmed(form: Mapping[str, str]) -> None:
    """A step that cannot be undone goes on only when its confirmation box is ticked."""
    if form.get("confirm") != "yes":
        raise InputError(ErrorCode.FIELD_REQUIRED, "confirm", zh="请勾选确认", field="confirm")


def _draft(ctx: Ctx) -> CatalogDraft:
    return CatalogDraft(ctx.central.store.db, ctx.central.store.log.clock)


def _number(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise InputError(ErrorCode.FIELD_INVALID, what)
    return int(text)


def _confirm_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    draft = _draft(ctx)
    release = preview(draft)
    current = current_catalog(ctx.central.store.db)
    return ctx.render(
        "publish.html",
        status=status,
        preview=release,
        current=current,
        diff=diff_view(current, release, ctx.t) if current else None,
        digest=draft.digest(),
        base=current.version if current else 0,
        valid_days=CATALOG_VALIDITY_DAYS,
        **extra,
    )


def _edit_page(ctx: Ctx, item: Item, status: int = 200, **extra: Any) -> Response:
    form = extra.pop("form", None)
    values = _form_values(form) if form is not None else _item_values(item)
    return ctx.render(
        "item_edit.html", status=status, item=item, values=values, tiers=TIERS, modes=list(Mode), **extra
    )


MATERIAL_FIELDS = ("code", "name", "required", "original", "note")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _item_values(item: Item) -> dict[str, Any]:
    """The edit form's values for ``item``, with blank rows for new materials."""
    blank = {"code": "", "name": "", "required": "yes", "original": "no", "note": ""}
    materials = [
        {
            "code": m.code,
            "name": m.name,
            "required": _yes(m.required),
            "original": _yes(m.original),
            "note": m.note,
        }
        for m in item.materials
    ]
    return {
        "name": item.name,
        "name_en": item.name_en,
        "department": item.department,
        "time_limit_days": str(item.time_limit_days),
        "in_person": _yes(item.in_person),
        "modes": {tier: item.modes[tier].value if tier in item.modes else "" for tier in TIERS},
        "materials": materials + [blank] * MATERIAL_ROWS_EXTRA,
    }


def _form_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """The edit form's values as submitted, to show them again with the refusal."""
    columns = [form.getlist(f"material_{k}") for k in MATERIAL_FIELDS]
    return {
        **{k: form.get(k, "") for k in ("name", "name_en", "department", "time_limit_days", "in_person")},
        "modes": {tier: form.get(f"mode_{tier}", "") for tier in TIERS},
        "materials": [dict(zip(MATERIAL_FIELDS, row, strict=True)) for row in zip(*columns, strict=False)],
    }


def item_from_form(old: Item, form: MultiDict[str, str]) -> Item:
    """``old`` with the fields an operator may edit taken from ``form``, checked in full.

    Name, English name, department, time limit, whether in person, the mode at each tier
    and the materials; the code, audience, fee and legal basis stay as they were.
    """
    rows = _form_values(form)["materials"]
    materials = [m for m in rows if m["code"].strip() or m["name"].strip()]
    entry = {
        "code": old.code,
        "name": form.get("name", ""),
        "name_en": form.get("name_en", ""),
        "department": form.get("department", ""),
        "audience": old.audience.value,
        "time_limit_days": form.get("time_limit_days", ""),
        "in_person": form.get("in_person", ""),
        "fee": old.fee,
        "legal_basis": old.legal_basis,
        "modes": {tier: form.get(f"mode_{tier}") or None for tier in TIERS},
        "materials": materials,
    }
    (item,) = items_from_data([entry])
    return item


# -- differences, for people ---------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    code: str
    name: str
    fields: list[tuple[str, str, str]]  # (field, before, after)


@dataclass(frozen=True)
class DiffView:
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    changed: list[Change]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_view(old: CatalogRelease, new: CatalogRelease, t: Callable[[str], str]) -> DiffView:
    """:func:`core.catalog_diff.diff_releases` with names and the changed values, to read."""
    diff = diff_releases(old, new)
    changed = []
    for change in diff.changed:
        a, b = old.item(change.code), new.item(change.code)
        rows = [(f, show(getattr(a, f), t), show(getattr(b, f), t)) for f in change.fields]
        changed.append(Change(change.code, b.name, rows))
    return DiffView(
        added=[(code, new.item(code).name) for code in diff.added],
        removed=[(code, old.item(code).name) for code in diff.removed],
        changed=changed,
    )


def show(value: Any, t: Callable[[str], str]) -> str:
    """An item field's value as one line of text, in the reader's language (``t``)."""
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    if isinstance(value, tuple):  # materials, or the item's extra fields
        return "；".join(
            f"{m.code} {m.name if isinstance(m, Material) else m.label}"
            + (f"（{t('material.required')}）" if m.required else "")
            for m in value
        )
    if isinstance(value, Mapping):  # modes per tier
        return ", ".join(f"{t('tier.' + tier)}: {t('mode.' + mode.value)}" for tier, mode in value.items())
    return str(getattr(value, "value", value))
