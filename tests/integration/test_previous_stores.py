"""Stores written by the previous version open, verify and sync with this code.

The archive (``tests/fixtures/previous-stores.tar.gz``, see its README) holds central, a
town and two villages as version 0.1.0 left them after real sync sessions. Nothing in it
may need a conversion: the schema this code creates for a new store is the one those
stores have, every store re-verifies from its signed bytes, and the city syncs on: a new
walk-in at a village reaches central, is decided at the town, and the decision comes back.
"""

from __future__ import annotations

import re
import sqlite3
import tarfile
from pathlib import Path

import pytest

from central.store import MIGRATION_SETS as CENTRAL_SETS
from central.store import verify as verify_central
from core.clock import FixedClock
from node.store import MIGRATION_SETS as NODE_SETS
from node.store import verify as verify_node
from sync.record.db import open_database
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2, Network
from tests.integration.syncnet import City, proxy_form

ARCHIVE = Path(__file__).resolve().parents[1] / "fixtures" / "previous-stores.tar.gz"
STORES = {CITY: "central/central.db", TOWN: f"{TOWN}/node.db", VILLAGE: f"{VILLAGE}/node.db"}


def _extract(root: Path) -> Path:
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(root, filter="data")
    return root


def _made_at(root: Path) -> int:
    conn = sqlite3.connect(root / STORES[CITY])
    try:
        return int(conn.execute("SELECT max(ts) FROM records").fetchone()[0])
    finally:
        conn.close()


def _schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        migrations = conn.execute(
            "SELECT migration_set, name FROM _sqlite_migrations ORDER BY 1, 2"
        ).fetchall()
    finally:
        conn.close()
    return [(kind, name, re.sub(r"\s+", " ", sql or "").strip()) for kind, name, sql in rows] + [
        ("migration", f"{s}/{n}", "") for s, n in migrations
    ]


@pytest.fixture
def city(tmp_path: Path) -> City:
    root = _extract(tmp_path / "city")
    clock = FixedClock(t=_made_at(root) + 3600, step=1)
    return City(Network(root, clock, fingerprint=""), {})


def test_a_previous_store_opened_has_the_schema_of_a_new_one(city: City, tmp_path: Path) -> None:
    """What a previous store had stays as it was; what this version adds, it adds the same way
    to an old store as to a new one."""
    root = city.net.root
    for code, sets in ((CITY, CENTRAL_SETS), (TOWN, NODE_SETS)):
        old = root / STORES[code]
        before = _schema(old)
        open_database(old, sets).close()
        fresh = tmp_path / f"fresh-{code}.db"
        open_database(fresh, sets).close()
        assert _schema(fresh) == _schema(old), code
        _kept(before, _schema(old), code)


def _kept(before: list[tuple[str, str, str]], after: list[tuple[str, str, str]], code: str) -> None:
    """Every schema object of ``before`` is in ``after`` as it was — or, for a table a later
    migration added columns to (``ALTER TABLE … ADD COLUMN``), with its columns as they were,
    first."""
    now = {(kind, name): sql for kind, name, sql in after}
    for kind, name, sql in before:
        new = now.get((kind, name))
        if new == sql:
            continue
        assert kind == "table" and new is not None, (code, kind, name)
        head = sql.rstrip(")").rstrip()
        assert new.startswith(head) and new[len(head) :].lstrip().startswith(","), (code, name, new)


def test_every_previous_store_opens_and_verifies(city: City) -> None:
    root = city.net.root
    for code in (CITY, TOWN, VILLAGE, VILLAGE_2):
        verify = verify_central if code == CITY else verify_node
        path = root / (STORES[CITY] if code == CITY else f"{code}/node.db")
        report = verify(path, city.clock)
        assert report.ok, (code, report.faults)
        assert report.records > 20


def test_the_previous_city_syncs_a_new_case_to_its_decision(city: City) -> None:
    with city.serving(CITY, TOWN):
        with city.desk(VILLAGE) as desk:
            before = desk.store.log.head(VILLAGE)
            case_no = desk.intake(proxy_form(desk, TOWN, "11010519491231002X"), actor="wangli").case_no
        assert before is not None
        for code in (VILLAGE, TOWN):
            result = city.sync(code)
            assert result.ok, (code, result.error)
        with city.desk(TOWN) as town:
            assert town.case(case_no).state == "forwarded"
            town.act(case_no, "approve", {"reason": "材料齐全"}, actor="shenpi")
        for code in (TOWN, VILLAGE, VILLAGE_2):
            result = city.sync(code)
            assert result.ok, (code, result.error)
        with city.desk(VILLAGE) as desk:
            assert desk.case(case_no).state == "approved"
    city.verify_all()
    central_cases = city.count(CITY, "SELECT count(*) FROM cases WHERE case_no = ?", case_no)
    assert central_cases == 1
