"""The extra fields an item asks at intake (家庭人口, 新生儿姓名 …), checked by their kind.

An item's catalog entry defines them (:class:`core.catalog.ExtraField`); an intake records
the values as checked, by field code, in the item's order (``extra`` in the body of a
``case.intake``, :mod:`core.intake`). A refusal names the field as ``extra_<code>``, the
name of its input on the intake form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from core.catalog import ExtraField, Item
from core.errors import ErrorCode, InputError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FULLWIDTH_DIGITS = {0xFF10 + d: 0x30 + d for d in range(10)}
MAX_NUMBER_TEXT = 20


def check_extra(item: Item, values: Mapping[str, object], today: date) -> tuple[tuple[str, str], ...]:
    """The item's extra fields from ``values`` (by field code), each checked by its kind;
    in the item's order, empty optional ones left out."""
    unknown = sorted(set(values) - {f.code for f in item.fields})
    if unknown:
        raise InputError(
            ErrorCode.FIELD_INVALID, f"{item.code} has no field {unknown[0]!r}", field="extra_" + unknown[0]
        )
    out: list[tuple[str, str]] = []
    for spec in item.fields:
        value = _extra_value(spec, values.get(spec.code), today)
        if value:
            out.append((spec.code, value))
    return tuple(out)


def _extra_value(spec: ExtraField, raw: object, today: date) -> str:
    name = "extra_" + spec.code
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise InputError(ErrorCode.FIELD_INVALID, f"{spec.code} must be text", field=name)
    text = raw.strip()
    if not text:
        if spec.required:
            raise InputError(ErrorCode.FIELD_REQUIRED, spec.code, zh=f"请填写{spec.label}", field=name)
        return ""
    limit = spec.max if spec.kind == "text" else MAX_NUMBER_TEXT
    if len(text) > limit or _CONTROL.search(text):
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"{spec.code}: at most {limit} characters",
            zh=f"{spec.label}最多{limit}个字",
            field=name,
        )
    if spec.kind == "int":
        number = text.translate(_FULLWIDTH_DIGITS)
        if not (number.isascii() and number.isdigit()) or (spec.max and int(number) > spec.max):
            bound = f"，最大{spec.max}" if spec.max else ""
            raise InputError(
                ErrorCode.FIELD_INVALID,
                f"{spec.code}: a whole number" + (f" up to {spec.max}" if spec.max else ""),
                zh=f"{spec.label}应为整数{bound}",
                field=name,
            )
        return str(int(number))
    if spec.kind == "date":
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InputError(
                ErrorCode.FIELD_INVALID,
                f"{spec.code}: a date YYYY-MM-DD",
                zh=f"{spec.label}应为日期（如2026-01-31）",
                field=name,
            ) from None
        return day.isoformat()
    return text
