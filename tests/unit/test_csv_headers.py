"""Central's CSV tables speak the screen's language: every column has a header in both."""

from __future__ import annotations

from dataclasses import fields

from central.dashboard import NodeRow, OverdueCase, TierVolume
from central.web.i18n import TEXTS
from central.web.pages import CSV_COLUMNS


def test_every_column_of_every_table_has_a_header_in_both_languages() -> None:
    columns = {f.name for cls in (NodeRow, TierVolume, OverdueCase) for f in fields(cls)}
    columns |= {"tier", "rank", "code", "name", "cases"}  # the items table
    assert columns <= set(CSV_COLUMNS)
    for column in CSV_COLUMNS:
        zh, en = TEXTS.t("csv." + column, "zh"), TEXTS.t("csv." + column, "en")
        assert zh and en and zh != en, column
