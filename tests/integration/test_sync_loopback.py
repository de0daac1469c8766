"""Sync over real ZeroMQ sockets on 127.0.0.1: central ← town ← two villages, one direct."""

from __future__ import annotations

from pathlib import Path

import pytest

from central import authority
from core.catalog import Mode
from sync.projection.catalog import current_catalog
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2
from tests.integration.syncnet import City, build_city, delegate, take_in


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_city(tmp_path)


def ok(result: object) -> None:
    assert getattr(result, "ok", False), getattr(result, "error", None)


def test_three_tiers_carry_cases_decisions_catalogs_and_grants(city: City) -> None:
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))  # the town's grants come down
        assert delegate(city, VILLAGE) > 0 and delegate(city, VILLAGE_2) > 0
        for village in (VILLAGE, VILLAGE_2):
            ok(city.sync(TOWN))
            ok(city.sync(village))
        case_no = take_in(city, VILLAGE)
        ok(city.sync(VILLAGE))
        ok(city.sync(TOWN))
        assert city.count(CITY, "SELECT count(*) FROM cases WHERE case_no = ?", case_no) == 1

        desk = city.desk(TOWN)
        try:
            desk.act(case_no, "approve", {}, actor="shenpi")
        finally:
            desk.store.close()
        ok(city.sync(VILLAGE))
        assert city.count(VILLAGE, "SELECT state FROM cases WHERE case_no = ?", case_no) == "approved"

        with authority.open_central(city.net.central_dir, city.clock) as central:
            catalog = current_catalog(central.store.db)
            assert catalog is not None
            release, _ = authority.publish_catalog(central, catalog.items)
            grant = authority.grant(central, TOWN, [catalog.items[0].code], Mode.PROXY, valid_days=30)
        ok(city.sync(TOWN))
        for village in (VILLAGE, VILLAGE_2):
            ok(city.sync(village))
        for code in (CITY, TOWN, VILLAGE, VILLAGE_2):
            assert city.count(code, "SELECT count(*) FROM records WHERE id = ?", release.id) == 1, code
            assert city.count(code, "SELECT count(*) FROM grants WHERE id = ?", grant.id) == 1, code
        # Village 2 syncs only with central, yet the town holds its records too.
        ok(city.sync(TOWN))
        assert city.count(TOWN, "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE_2) == city.count(
            VILLAGE_2, "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE_2
        )
    city.verify_all()
