"""Catalog files as operators write them: YAML and CSV, read into items.

``tongban central publish-catalog`` and the operator web's import read files here, so a
file that one accepts the other accepts too. The rules for values (lenient spelling,
strict content, unique codes) are :func:`core.catalog_data.items_from_data`'s; this module only
turns a file's layout into that function's list of entries.

**YAML**: a top-level ``items:`` list, as in ``central/demo/catalog.yaml``.

**CSV** (docs/catalog-files.md): a header row, then one row per material, the way a
spreadsheet with merged item cells is exported. A row with a ``code`` starts an item and
carries its fields; the following rows with an empty ``code`` add further materials to
it and must leave the item's columns empty. A code that appears on two starting rows is
a duplicate. Columns (unknown ones are refused, a typo must not drop a field)::

    code, name, name_en, department, audience, time_limit_days, in_person   (required)
    fee, legal_basis                                                         (optional)
    mode_city, mode_town, mode_village        (empty or absent: not offered at that tier)
    material_code, material_name, material_required, material_original, material_note

Spreadsheets made in China often save CSV in GB 18030 rather than UTF-8: a file that is
not UTF-8 (with or without a byte-order mark) is read as GB 18030.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml

from core.catalog import TIERS, Item
from core.catalog_data import items_from_data
from core.errors import ErrorCode, InputError, error

MAX_FILE = 2 * 1024 * 1024
ITEM_COLUMNS = ("code", "name", "name_en", "department", "audience", "time_limit_days", "in_person")
OPTIONAL_COLUMNS = ("fee", "legal_basis", "guide")
MODE_COLUMNS = tuple(f"mode_{tier}" for tier in TIERS)
MATERIAL_COLUMNS = (
    "material_code",
    "material_name",
    "material_required",
    "material_original",
    "material_note",
)
COLUMNS = ITEM_COLUMNS + OPTIONAL_COLUMNS + MODE_COLUMNS + MATERIAL_COLUMNS


def load_catalog_file(path: Path) -> tuple[Item, ...]:
    """Items from a ``.yaml``/``.yml`` or ``.csv`` file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(ErrorCode.CATALOG_INVALID, f"{path}: {exc.strerror}") from exc
    return items_from_file(path.name, data)


def items_from_file(name: str, data: bytes) -> tuple[Item, ...]:
    """Items from the contents of a file called ``name`` (its suffix says the format).

    Raises:
        InputError: ``E_CATALOG_INVALID`` naming the file and what is wrong.
    """
    if len(data) > MAX_FILE:
        raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: larger than {MAX_FILE // 1024} KiB")
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if suffix in ("yaml", "yml"):
        entries = _yaml_entries(name, _text(name, data))
    elif suffix == "csv":
        entries = _csv_entries(name, _text(name, data))
    else:
        raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: a catalog file is .yaml, .yml or .csv")
    try:
        return items_from_data(entries)
    except InputError as exc:
        raise error(exc.code, f"{name}: {exc.detail}") from exc


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: neither UTF-8 nor GB 18030 text") from exc


def _yaml_entries(name: str, text: str) -> Any:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: expected a top-level 'items:' list")
    return data["items"]


def _csv_entries(name: str, text: str) -> list[dict[str, Any]]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: the file is empty")
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in ITEM_COLUMNS if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        problem = (
            f"unknown column(s) {', '.join(unknown)}"
            if unknown
            else f"missing column(s) {', '.join(missing)}"
            if missing
            else "a column appears twice"
        )
        raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: header: {problem}")
    entries: list[dict[str, Any]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise InputError(
                ErrorCode.CATALOG_INVALID, f"{name}: row {number} has more cells than the header"
            )
        cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        if cells["code"]:
            entries.append(_csv_item(cells))
        elif not entries:
            raise InputError(ErrorCode.CATALOG_INVALID, f"{name}: row {number} continues no item (no code)")
        elif any(cells.get(c) for c in ITEM_COLUMNS + OPTIONAL_COLUMNS + MODE_COLUMNS):
            raise InputError(
                ErrorCode.CATALOG_INVALID,
                f"{name}: row {number} has no code but item fields: they belong on the item's first row",
            )
        _csv_material(cells, entries[-1])
    return entries


def _csv_item(cells: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {c: cells[c] for c in ITEM_COLUMNS}
    entry.update({c: cells[c] for c in OPTIONAL_COLUMNS if c in cells})
    entry["modes"] = {tier: cells.get(f"mode_{tier}") or None for tier in TIERS}
    entry["materials"] = []
    return entry


def _csv_material(cells: dict[str, str], entry: dict[str, Any]) -> None:
    if not any(cells.get(c) for c in MATERIAL_COLUMNS):
        return
    entry["materials"].append(
        {
            "code": cells.get("material_code", ""),
            "name": cells.get("material_name", ""),
            "required": cells.get("material_required", ""),
            "original": cells.get("material_original", ""),
            "note": cells.get("material_note", ""),
        }
    )
