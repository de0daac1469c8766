"""The dashboard's SVG charts: well-formed, escaped, proportional, and sane with no data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.charts import LABELLED_ROW, VALUE_WIDTH, bar_chart, label_chars, share_chart

SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(\"x\")</script> & 许村镇 'q'"


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(markup)  # raises on anything not well-formed
    assert root.tag == f"{SVG}svg"
    return root


def bar_rects(root: ET.Element) -> list[float]:
    return [float(rect.get("width", "nan")) for rect in root.iterfind(f"{SVG}g/{SVG}rect")]


def test_labels_and_titles_are_escaped() -> None:
    for markup in (
        bar_chart([(EVIL, 3), ("乙", 1)], title=EVIL, unit="<件>"),
        share_chart([(EVIL, 3), ("乙", 1)], title=EVIL),
        bar_chart([], title=EVIL, empty=EVIL),
    ):
        assert "<script" not in markup and "<件>" not in markup
        assert "&lt;script&gt;" in markup and "&amp;" in markup
        root = parse(markup)
        assert root.findtext(f"{SVG}title") == EVIL
        assert root.get("aria-label") == EVIL


def test_bar_widths_are_proportional_to_the_values() -> None:
    width = 500
    root = parse(bar_chart([("甲", 40), ("乙", 10), ("丙", 0), ("丁", 25)], title="t", width=width))
    area = width - VALUE_WIDTH
    assert bar_rects(root) == pytest.approx([area, area / 4, 0, area * 25 / 40], abs=0.01)
    titles = [g.findtext(f"{SVG}title") for g in root.iter(f"{SVG}g")]
    assert titles == ["甲: 40", "乙: 10", "丙: 0", "丁: 25"]
    assert root.get("height") == str(4 * LABELLED_ROW)


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30))
def test_bar_geometry_for_any_counts(values: list[int]) -> None:
    markup = bar_chart([(f"n{i}", v) for i, v in enumerate(values)], title="t")
    root = parse(markup)
    if max(values) == 0:
        assert "暂无数据" in markup
        return
    widths = bar_rects(root)
    area = 480 - VALUE_WIDTH
    assert max(widths) == pytest.approx(area, abs=0.01)
    for value, w in zip(values, widths, strict=True):
        assert w == pytest.approx(area * value / max(values), abs=0.01)


def test_share_segments_fill_the_width_in_proportion() -> None:
    width = 400
    root = parse(share_chart([("市级", 1), ("镇街", 3), ("村社", 4)], title="t", width=width))
    segments = root.findall(f"{SVG}rect")
    widths = [float(r.get("width", "nan")) for r in segments]
    xs = [float(r.get("x", "nan")) for r in segments]
    assert widths == pytest.approx([50, 150, 200], abs=0.01)
    assert xs == pytest.approx([0, 50, 200], abs=0.01)
    assert [r.findtext(f"{SVG}title") for r in segments] == [
        "市级：1（12.5%）",
        "镇街：3（37.5%）",
        "村社：4（50.0%）",
    ]


@pytest.mark.parametrize(
    "markup",
    [
        bar_chart([], title="t", empty="no data"),
        bar_chart([("a", 0), ("b", 0)], title="t", empty="no data"),
        share_chart([], title="t", empty="no data"),
        share_chart([("a", 0), ("b", 0.0)], title="t", empty="no data"),
    ],
)
def test_no_data_is_a_frame_with_a_note(markup: str) -> None:
    root = parse(markup)
    assert [t.text for t in root.iter(f"{SVG}text")] == ["no data"]
    assert "nan" not in markup.lower() and "inf" not in markup.lower()


def test_an_item_name_is_shown_whole_over_its_bar() -> None:
    # the dashboard cut item names to a few characters: "MZ-0004 困难残疾…"
    label = "MZ-0004 困难残疾人生活补贴和重度残疾人护理补贴申请"
    root = parse(bar_chart([(label, 7), ("GA-0001 出生登记", 3)], title="t"))
    assert [g.findtext(f"{SVG}text") for g in root.iter(f"{SVG}g")] == [label, "GA-0001 出生登记"]


def test_a_label_longer_than_the_width_is_cut_on_screen_and_whole_in_the_title() -> None:
    label = "浙江省嘉兴市海宁市许村镇新阳村便民服务中心" * 3
    root = parse(bar_chart([(label, 7)], title="t", width=240))
    shown = root.findtext(f"{SVG}g/{SVG}text")
    assert shown is not None and len(shown) == label_chars(240) == 20 and shown.endswith("…")
    assert root.findtext(f"{SVG}g/{SVG}title") == f"{label}: 7"


def test_no_script_and_nothing_to_fetch() -> None:
    markup = bar_chart([("a", 1.5)], title="t", unit=" %") + share_chart([("a", 1)], title="t")
    assert "script" not in markup and "href" not in markup and "@import" not in markup
    assert markup.count("http://") == 2  # the xmlns of each chart, nothing else
    assert "a: 1.50 %" in markup


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_negative_or_non_finite_values_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        bar_chart([("a", bad)], title="t")
    with pytest.raises(ValueError):
        share_chart([("a", bad)], title="t")


def test_the_legend_is_punctuated_for_the_readers_language() -> None:
    zh = share_chart([("市民中心", 1), ("镇（街道）", 3)], title="各层级办件量")
    assert "市民中心：1（25.0%）" in zh and ": " not in zh.split("</svg>")[0].split("<text", 1)[1]
    en = share_chart([("city hall", 1), ("town", 3)], title="Cases per tier", lang="en")
    assert "city hall: 1 (25.0%)" in en
