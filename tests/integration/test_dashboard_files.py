"""Central's dashboard shows the bytes of scanned pages each node said wait to go up or down,
from the status reports real sync sessions carried (ZeroMQ with CURVE on loopback)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from central import authority
from central.dashboard import NodeRow, snapshot
from central.web.pages import megabytes
from node.desk import Upload
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncnet import City, build_delegated_city, proxy_form
from tests.scanfiles import PAGES, pdf


def rows(city: City) -> dict[str, NodeRow]:
    with authority.open_central(city.home(CITY), city.clock) as central:
        board = snapshot(central.store.db, now=city.clock.now())
    return {n.code: n for n in board.nodes}


def test_the_dashboard_shows_the_pages_each_node_said_were_waiting(tmp_path: Path) -> None:
    city = build_delegated_city(tmp_path)
    assert rows(city)[VILLAGE].files_up in (None, 0)
    page = pdf(b"<< /Type /Catalog /Pages 2 0 R >>", *PAGES, b"(" + b"x" * 200_000 + b")")
    with city.desk(VILLAGE) as desk:
        form = proxy_form(desk, TOWN)
        desk.intake(
            dataclasses.replace(form, uploads=(Upload(form.materials[0], "scan.pdf", page),)), actor="wangli"
        )
    with city.serving(CITY, TOWN):
        assert city.sync(VILLAGE).ok  # its report, sent before the files phase, names the page waiting
        assert city.sync(TOWN).ok  # carries the village's report on to central
    village = rows(city)[VILLAGE]
    assert village.files_up == len(page) and village.files_down == 0
    assert megabytes(len(page)) == "0.2 MB" and megabytes(0) == "0"
