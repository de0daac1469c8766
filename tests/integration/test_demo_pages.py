"""The demo is made with two cases of its resident taken in at a village with scanned
pages: held in the village's file store, listed by their intake records, each checked."""

from __future__ import annotations

from pathlib import Path

from core.clock import FixedClock
from core.files import JPEG, PDF
from node.desk import Desk
from node.store import verify
from tongban.demo import build_demo
from tongban.demo_files import DEMO_CARD

VILLAGE, TOWN = "330481107201", "330481107"


def test_the_demo_village_holds_cases_with_their_scanned_pages(tmp_path: Path) -> None:
    clock = FixedClock(t=1_795_400_000, step=1)
    said: list[str] = []
    build_demo(tmp_path / "demo", clock, said.append)
    assert any("2 cases with scanned pages" in line for line in said), said
    with Desk.open(tmp_path / "demo" / VILLAGE, clock) as desk:
        cases = [c for c in desk.search(DEMO_CARD["name"]) if c.case_no.startswith(VILLAGE)]
        # her two cases decided by the town, and her social security card applied for in Qingpu
        assert {c.item for c in cases} == {"MZ-0002", "MZ-0003", "QPRS-0001"}
        pages = {c.item: desk.files_of(c.case_no) for c in cases}
    assert [(p.ref.type, p.ref.material, p.held) for p in pages["QPRS-0001"]] == [(JPEG, "id_card", True)]
    cases = [c for c in cases if c.item != "QPRS-0001"]
    assert [(p.ref.type, p.ref.material, p.held) for p in pages["MZ-0002"]] == [
        (JPEG, "id_card", True),
        (JPEG, "hukou_book", True),
    ]
    assert [(p.ref.type, p.ref.material, p.held) for p in pages["MZ-0003"]] == [
        (JPEG, "id_card", True),
        (PDF, "hardship_statement", True),
    ]
    report = verify(tmp_path / "demo" / VILLAGE / "node.db", clock)
    assert report.ok and not report.warnings, (report.faults, report.warnings)
    with Desk.open(tmp_path / "demo" / TOWN, clock) as town:  # the town decides its own
        assert {c.case_no for c in town.queue()} >= {c.case_no for c in cases}
