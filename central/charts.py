"""SVG charts for the city dashboard: pure functions from labelled numbers to markup.

The markup is inline SVG with no script, no stylesheet and no font to fetch (text uses the
generic ``sans-serif`` family), so it renders under the operator pages' content security
policy and in a saved page. Every label and title goes through :func:`html.escape`: node
and item names come from enrollment requests and catalog files, not from us. Each bar or
segment carries a ``<title>``, which browsers show on hover and screen readers read.

A chart of nothing (no rows, or every value zero) is a grey frame with the ``empty`` text,
never a division by zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

VALUE_WIDTH = 64
ROW = 24
BAR = 16
LABELLED_ROW = 40
"""A bar chart's row: its label on a line of its own, the bar under it."""
CHAR_WIDTH = 12
"""The widest a character of the 12-pixel font is (a Chinese one), for the labels' room."""
PALETTE = ("#2f6fb3", "#e08a2c", "#3a9a5b", "#c4473d", "#7b5ea7", "#8c8c8c")
EMPTY_FILL = "#eeeeee"
FONT = 'font-family="sans-serif" font-size="12"'

Value = int | float


def bar_chart(
    bars: Sequence[tuple[str, Value]],
    *,
    title: str,
    empty: str = "暂无数据",
    width: int = 480,
    unit: str = "",
) -> str:
    """A horizontal bar chart: one row per (label, value), the label on a line of its own
    over its bar (item names are long: 困难残疾人生活补贴和重度残疾人护理补贴申请), the bar's
    length proportional to the value. The longest bar fills the width less the value's
    column; a label longer than the width holds (:func:`label_chars`) is cut on screen and
    shown whole in the bar's ``<title>``.
    """
    values = [_checked(value) for _, value in bars]
    area = width - VALUE_WIDTH
    if not values or max(values) == 0:
        return _empty(title, empty, width)
    top = max(values)
    height = LABELLED_ROW * len(bars)
    room = label_chars(width)
    parts = [_open(title, width, height)]
    for index, ((label, _), value) in enumerate(zip(bars, values, strict=True)):
        y = index * LABELLED_ROW
        length = area * value / top
        shown = f"{_number(value)}{unit}"
        parts.append(
            f"<g><title>{escape(label)}: {escape(shown)}</title>"
            f'<text x="0" y="{y + 14}" {FONT}>{escape(_cut(label, room))}</text>'
            f'<rect x="0" y="{y + 19}" width="{length:.2f}" height="{BAR}" fill="{PALETTE[0]}"/>'
            f'<text x="{length + 4:.2f}" y="{y + 31}" {FONT}>{escape(shown)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def label_chars(width: int) -> int:
    """How many characters of a label a chart ``width`` pixels wide shows (Chinese ones)."""
    return width // CHAR_WIDTH


def share_chart(
    parts: Sequence[tuple[str, Value]],
    *,
    title: str,
    empty: str = "暂无数据",
    width: int = 480,
    lang: str = "zh",
) -> str:
    """A stacked bar of each part's share of the total, with a legend of the percentages.

    Segment widths are proportional to the values and together fill ``width``. The legend
    is punctuated for ``lang``: full-width in Chinese (市民中心：3（25.0%）).
    """
    values = [_checked(value) for _, value in parts]
    total = sum(values)
    if total == 0:
        return _empty(title, empty, width)
    height = ROW + 8 + ROW * len(parts)
    out = [_open(title, width, height)]
    x = 0.0
    for index, ((label, _), value) in enumerate(zip(parts, values, strict=True)):
        share = value / total
        colour = PALETTE[index % len(PALETTE)]
        note = (
            f"{escape(label)}：{_number(value)}（{share:.1%}）"
            if lang == "zh"
            else f"{escape(label)}: {_number(value)} ({share:.1%})"
        )
        out.append(
            f'<rect x="{x:.2f}" y="0" width="{width * share:.2f}" height="{ROW}" fill="{colour}">'
            f"<title>{note}</title></rect>"
        )
        y = ROW + 8 + index * ROW
        out.append(
            f'<g><title>{note}</title><rect x="0" y="{y + 4}" width="12" height="12" fill="{colour}"/>'
            f'<text x="18" y="{y + 15}" {FONT}>{note}</text></g>'
        )
        x += width * share
    out.append("</svg>")
    return "".join(out)


def _open(title: str, width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    )


def _empty(title: str, text: str, width: int) -> str:
    return (
        f'{_open(title, width, ROW * 2)}<rect x="0" y="0" width="{width}" height="{ROW * 2}"'
        f' fill="{EMPTY_FILL}"/><text x="{width / 2:.2f}" y="{ROW + 4}" text-anchor="middle" {FONT}>'
        f"{escape(text)}</text></svg>"
    )


def _checked(value: Value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a chart value is a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a chart value is finite and not negative, not {value!r}")
    return float(value)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.2f}"


def _cut(label: str, room: int) -> str:
    return label if len(label) <= room else label[: room - 1] + "…"
