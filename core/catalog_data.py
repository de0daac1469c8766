"""Catalog items from data files (YAML or CSV, written by people): lenient about spelling,
strict about what is there.

:func:`items_from_data` turns a list of entries, as a YAML or CSV loader gives them, into
:class:`core.catalog.Item` values, each checked as a record body's item is. Integers may
be digit strings, booleans yes/no/true/false/是/否, modes 代收代办/直接办/同权, an empty tier
"not offered"; every required field must be present, unknown fields are refused (a typo
must not silently drop a field), codes must be unique. Reading the files is the caller's
(:mod:`central.catalog_files`); this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.catalog import (
    ITEM_KEYS,
    MAX_GUIDE,
    Audience,
    ExtraField,
    Item,
    Material,
    Mode,
    checked_int,
    checked_keys,
    checked_text,
    invalid,
)

# Spellings accepted in data files (YAML/CSV written by people), never in record bodies.
_MODE_ALIASES: dict[str, Mode] = {
    "proxy": Mode.PROXY,
    "代收代办": Mode.PROXY,
    "代办": Mode.PROXY,
    "代理办": Mode.PROXY,
    "direct": Mode.DIRECT,
    "直接办": Mode.DIRECT,
    "same_power": Mode.SAME_POWER,
    "同权": Mode.SAME_POWER,
}

_DATA_OPTIONAL = frozenset({"fee", "legal_basis", "guide", "fields"})
_DATA_REQUIRED = ITEM_KEYS - _DATA_OPTIONAL
_MATERIAL_REQUIRED = frozenset({"code", "name", "required"})
_MATERIAL_OPTIONAL = frozenset({"original", "note", "name_en"})
_FIELD_REQUIRED = frozenset({"code", "label", "kind"})
_FIELD_OPTIONAL = frozenset({"required", "max"})
_FIELD_KIND_ALIASES = {
    "text": "text",
    "文本": "text",
    "int": "int",
    "整数": "int",
    "date": "date",
    "日期": "date",
}
TEXT_FIELD_MAX = 100
"""The most characters of a text field whose entry gives no ``max``."""
_TRUE = {"true", "yes", "y", "1", "是", "必须", "必要"}
_FALSE = {"false", "no", "n", "0", "否", "可选"}


def _data_int(where: str, name: str, value: object) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return checked_int(where, name, value, low=0)


def _data_bool(where: str, name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise invalid(where, f"{name} must be true or false, not {value!r}")


def _data_text(where: str, name: str, value: object, *, empty: bool = False) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # YAML reads an unquoted 123 as an int
    return checked_text(where, name, value, empty=empty).strip()


def _optional(d: dict[str, Any], key: str, default: object) -> object:
    # An empty CSV cell or an empty YAML value means "not given", for optional fields only.
    value = d.get(key)
    return default if value is None or value == "" else value


def _data_material(where: str, entry: object) -> Material:
    d = checked_keys(where, entry, _MATERIAL_REQUIRED, _MATERIAL_OPTIONAL)
    return Material(
        code=_data_text(where, "code", d["code"]),
        name=_data_text(where, "name", d["name"]),
        required=_data_bool(where, "required", d["required"]),
        original=_data_bool(where, "original", _optional(d, "original", False)),
        note=_data_text(where, "note", _optional(d, "note", ""), empty=True),
        name_en=_data_text(where, "name_en", _optional(d, "name_en", ""), empty=True),
    )


def _data_field(where: str, entry: object) -> ExtraField:
    d = checked_keys(where, entry, _FIELD_REQUIRED, _FIELD_OPTIONAL)
    kind = _FIELD_KIND_ALIASES.get(str(d["kind"]).strip().lower())
    if kind is None:
        raise invalid(where, f"kind must be text, int or date, not {d['kind']!r}")
    default_max = TEXT_FIELD_MAX if kind == "text" else 0
    return ExtraField(
        code=_data_text(where, "code", d["code"]),
        label=_data_text(where, "label", d["label"]),
        kind=kind,
        required=_data_bool(where, "required", _optional(d, "required", False)),
        max=_data_int(where, "max", _optional(d, "max", default_max)),
    )


def _data_fields(where: str, value: object) -> tuple[ExtraField, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise invalid(where, "fields must be a list")
    return tuple(_data_field(f"{where}: field #{i + 1}", f) for i, f in enumerate(value))


def _data_guide(where: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_GUIDE:
        raise invalid(where, f"guide must be text of at most {MAX_GUIDE} characters")
    return value.strip()


def _data_modes(where: str, value: object) -> dict[str, Mode]:
    if not isinstance(value, Mapping):
        raise invalid(where, "modes must be a mapping of tier to mode")
    modes: dict[str, Mode] = {}
    for tier, raw in value.items():
        if raw is None:
            continue  # `village:` left empty in YAML means "not offered there"
        key = str(raw).strip().lower()
        if key not in _MODE_ALIASES:
            raise invalid(where, f"modes.{tier}: unknown mode {raw!r} (proxy, direct or same_power)")
        modes[str(tier).strip().lower()] = _MODE_ALIASES[key]
    return modes


def _data_item(index: int, entry: object) -> Item:
    code = entry.get("code") if isinstance(entry, Mapping) else None
    where = f"item {code}" if isinstance(code, str) and code else f"item #{index + 1}"
    d = checked_keys(where, entry, _DATA_REQUIRED, _DATA_OPTIONAL)
    raw_materials = d["materials"] if d["materials"] is not None else []
    if not isinstance(raw_materials, Sequence) or isinstance(raw_materials, str):
        raise invalid(where, "materials must be a list")
    audience = _data_text(where, "audience", d["audience"]).lower()
    if audience not in {a.value for a in Audience}:
        raise invalid(where, f"audience must be personal or enterprise, not {d['audience']!r}")
    return Item(
        code=_data_text(where, "code", d["code"]),
        name=_data_text(where, "name", d["name"]),
        name_en=_data_text(where, "name_en", d["name_en"]),
        department=_data_text(where, "department", d["department"]),
        audience=Audience(audience),
        time_limit_days=_data_int(where, "time_limit_days", d["time_limit_days"]),
        materials=tuple(
            _data_material(f"{where}: material #{i + 1}", m) for i, m in enumerate(raw_materials)
        ),
        in_person=_data_bool(where, "in_person", d["in_person"]),
        modes=_data_modes(where, d["modes"]),
        fee=_data_int(where, "fee", _optional(d, "fee", 0)),
        legal_basis=_data_text(where, "legal_basis", _optional(d, "legal_basis", ""), empty=True),
        guide=_data_guide(where, d.get("guide")),
        fields=_data_fields(where, d.get("fields")),
    )


def items_from_data(entries: object) -> tuple[Item, ...]:
    """Items from a list loaded from YAML or CSV, sorted by code.

    Lenient about spelling: integers may be digit strings, booleans may be
    yes/no/true/false/是/否, modes may be written 代收代办/直接办/同权, an empty tier means
    "not offered". Strict about content: every required field must be present, unknown
    fields are refused (a typo must not silently drop a field), codes must be unique.

    Raises:
        InputError: ``E_CATALOG_INVALID`` with a detail such as
            ``item GA-0001: time_limit_days must be between 0 and 365, not -1``.
    """
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise invalid("catalog data", "expected a list of items")
    items = [_data_item(i, e) for i, e in enumerate(entries)]
    seen: set[str] = set()
    for item in items:
        if item.code in seen:
            raise invalid(f"item {item.code}", "code appears twice")
        seen.add(item.code)
    return tuple(sorted(items, key=lambda i: i.code))
