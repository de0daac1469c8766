"""The bytes of scanned pages a node's status report says wait, as central's dashboard shows them."""

from __future__ import annotations

from typing import Any

import pytest

from central.report_store import files_waiting
from central.web.pages import megabytes


@pytest.mark.parametrize(
    ("body", "waiting"),
    [
        ({"files": {"up": 3_500_000, "down": 0, "held": 9}}, (3_500_000, 0)),
        ({"files": {"up": 0, "down": 12}}, (0, 12)),
        ({}, None),  # an older node names no files
        ({"files": [1, 2]}, None),
        ({"files": {"up": -1, "down": 0}}, None),
        ({"files": {"up": True, "down": 0}}, None),
        ({"files": {"up": 1}}, None),
    ],
)
def test_files_waiting_reads_the_report_or_nothing(
    body: dict[str, Any], waiting: tuple[int, int] | None
) -> None:
    assert files_waiting(body) == waiting


def test_megabytes() -> None:
    assert megabytes(0) == "0"
    assert megabytes(10) == "0.1 MB"
    assert megabytes(3_500_000) == "3.3 MB"
