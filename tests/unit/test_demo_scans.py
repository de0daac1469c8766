"""The demo's scanned pages: drawn so that the window takes them as a clerk's uploads."""

from __future__ import annotations

import pytest

from core.files import JPEG, PDF
from core.scans import normalise
from tongban.demo_scans import Pen, cjk_font, hukou_page, id_card_photo, letter_pdf


@pytest.mark.parametrize("font", [cjk_font(), None], ids=["cjk-font", "no-font"])
def test_the_demo_pages_are_taken_as_uploads(font: object) -> None:
    pen = Pen(font)  # type: ignore[arg-type]
    for data, name, kind in (
        (id_card_photo(pen), "身份证.jpg", JPEG),
        (hukou_page(pen), "户口簿.jpg", JPEG),
        (letter_pdf(pen), "情况说明.pdf", PDF),
    ):
        scan = normalise(data, name)
        assert scan.type == kind and not scan.active, name
        assert kind == PDF or max(scan.width, scan.height) >= 1000  # a photo, not a thumbnail


def test_the_card_bears_the_residents_name_when_a_cjk_font_is_installed() -> None:
    font = cjk_font()
    if font is None:
        pytest.fail("no CJK font installed: scripts/system-deps.sh installs fonts-noto-cjk", pytrace=False)
    assert id_card_photo(Pen(font)) != id_card_photo(Pen(None))
    assert "CJK" in font.name or "wqy" in font.name
