"""A revoked node's forged cases, at the town that took them before it heard of the revocation.

A village's key is stolen. Central revokes it with a cut-off at the last record it holds
from the village, but the town has not synced since: the thief's intake and its forged
step on an honest case reach the town first. When the revocation reaches the town, the
town's case projection leaves the thief's records out — the forged case leaves every
queue and count (kept, marked), the forged step is not applied — a decision on the forged
case is refused before anything is signed, its page says why, and the projection is what
a rebuild from the log and ``tongban verify`` make of it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from central import authority
from core.errors import AuthorityError, ErrorCode
from node.store import MIGRATION_SETS as NODE_SETS
from node.store import NodeStore
from sync.projection import standard
from sync.record.inspect import verify_store
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncnet import City, build_delegated_city, take_in
from tests.integration.webcentral import login
from tests.integration.webnode import PASSWORD, serve
from web.accounts import hash_password

IDS = ("110105194912310046", "110105194912310062")


def _tables(path: Path, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def _everything(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    finally:
        conn.close()
    return _tables(path, tuple(names))


@pytest.fixture
def city(tmp_path: Path) -> City:
    city = build_delegated_city(tmp_path)
    with city.desk(TOWN) as desk:
        desk.clerks.add(
            desk.keys, "shenpi", "沈批", ["approver", "clerk"], hash_password(PASSWORD), actor="sys:test"
        )
    return city


def test_a_revoked_nodes_forged_cases_leave_the_towns_queue_and_cannot_be_decided(city: City) -> None:
    honest = take_in(city, VILLAGE, IDS[0])
    with city.serving(CITY, TOWN):
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok
    # The key is reported stolen: central revokes it after the last record it holds of it.
    with authority.open_central(city.net.central_dir, city.clock) as central:
        authority.revoke_node(central, VILLAGE, reason="平板被盗")
    # The thief signs with the stolen key: a new case, and a withdrawal of the honest one.
    forged = take_in(city, VILLAGE, IDS[1])
    with city.desk(VILLAGE) as desk:
        desk.act(honest, "withdraw", {"reason": "申请人撤回"}, actor="wangli")
    with city.serving(TOWN):  # the town has not heard of the revocation: it takes both
        assert city.sync(VILLAGE).ok
    with city.desk(TOWN) as desk:
        assert forged in [c.case_no for c in desk.queue()]
        assert desk.case(honest).state == "withdrawn"

    with city.serving(CITY):  # the revocation reaches the town
        assert city.sync(TOWN).ok
    town_db = city.home(TOWN) / "node.db"
    with city.desk(TOWN) as desk:
        queue = [c.case_no for c in desk.queue()]
        assert forged not in queue and honest in queue
        assert desk.counts().queue == len(queue) == 1
        assert desk.case(forged).quarantined and not desk.case(honest).quarantined
        assert desk.case(honest).state == "forwarded"  # the forged withdrawal is not applied
        statuses = {e.event: (e.status, e.code) for e in desk.events(honest)}
        assert statuses["withdraw"] == ("quarantined", ErrorCode.CERT_REVOKED.value)
        assert desk.steps(desk.case(forged)) == []
    before = _everything(town_db)
    with city.desk(TOWN) as desk, pytest.raises(AuthorityError) as refused:
        desk.act(forged, "approve", {"reason": "材料齐全"}, actor="shenpi")
    assert refused.value.code is ErrorCode.CERT_REVOKED
    assert _everything(town_db) == before  # nothing signed, nothing stored

    # The page of the forged case says why, in Chinese, and offers no step.
    with serve(city.home(TOWN), probe="/login") as web:
        login(web, "shenpi")
        status, _, html = web.request("GET", f"/cases/{forged}")
        _, _, queue_page = web.request("GET", "/queue")
    assert status == 200 and 'id="quarantined"' in html and "吊销" in html
    assert ErrorCode.CERT_REVOKED.value in html and 'id="step-approve"' not in html
    assert forged not in queue_page and honest in queue_page

    # The projection is a function of the log in arrival order: a rebuild and verify agree.
    tables = tuple(standard_tables())
    projected = _tables(town_db, tables)
    with NodeStore.open(town_db, city.clock) as store:
        store.log.rebuild()
    assert _tables(town_db, tables) == projected
    report = verify_store(town_db, NODE_SETS, city.clock, standard())
    assert report.ok, report.faults


def standard_tables() -> list[str]:
    return [t for p in standard() for t in p.tables]
