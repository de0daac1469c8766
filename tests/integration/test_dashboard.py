"""Central's dashboard over a small city of real stores, synced over loopback ZeroMQ.

A city hall, a town and three villages take cases in; some are decided on the day, some
forty days later, some are rated, one waits for a supplement. One village is revoked with
a cut-off that quarantines its last cases, another with one that voids its own late
decision and rating. Every figure of ``snapshot`` is compared with a count made from the
signed records central holds (:mod:`tests.integration.ledger`), never from the tables the
dashboard reads. ``node.status`` reports are followed from a village through its town to
central, and must never come down to a village.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections import Counter
from dataclasses import dataclass, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from central import authority
from central.dashboard import NodeRow, OverdueCase, TierVolume, snapshot, to_csv
from core.calendar import WorkCalendar
from core.catalog import Mode
from core.clock import local_date, local_time
from core.errors import ErrorCode, InputError
from node.desk import IntakeForm
from sync.link.transport import SyncResult
from sync.record import kinds
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2
from tests.integration.ledger import ledger
from tests.integration.syncnet import GOOD_ID, City, build_city, delegate, take_in

pytestmark = pytest.mark.slow

CITY_HALL = "330481000"
VILLAGE_3 = "330481104203"
HALL_NAME = '海宁市民之家,"一窗通办"'
V3_NAME = "=村三便民服务中心"
DAY = 86_400


def ok(result: SyncResult) -> None:
    assert result.ok, (result.error, result.attempts)


def take(city: City, code: str, *, proxy: bool, n: int = 0) -> str:
    """A case of the ``n``-th item ``code`` may take in, proxy or decided there."""
    desk = city.desk(code)
    try:
        auths = [a for a in desk.items() if a.allowed and (a.mode is Mode.PROXY) == proxy]
        auth = auths[n % len(auths)]
        form = IntakeForm(
            item=auth.item.code,
            name="王秀英",
            doc_type="resident_id",
            doc_no=GOOD_ID,
            phone="13800138000",
            materials=tuple(m.code for m in auth.item.materials if m.required),
        )
        return desk.intake(form, actor="clerk").case_no
    finally:
        desk.store.close()


def act(city: City, code: str, case_no: str, event: str, **values: Any) -> None:
    desk = city.desk(code)
    try:
        desk.act(case_no, event, values, actor="shenpi")
    finally:
        desk.store.close()


def rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def waiting_up(city: City, code: str) -> int:
    """Records of ``code`` not yet acknowledged by its parent, status reports aside."""
    db = city.home(code) / "node.db"
    acked = rows(db, "SELECT coalesce(max(value), 0) FROM link_state WHERE key = 'up_acked'")[0][0]
    sql = "SELECT count(*) FROM records WHERE arrival > ? AND origin = ? AND kind != ?"
    return int(rows(db, sql, int(acked), code, kinds.NODE_STATUS)[0][0])


@dataclass
class Scenario:
    city: City
    now: int
    village_backlog: int  # what the village had waiting when it reported before its last sync


def populate(city: City) -> Scenario:
    net = city.net
    start = local_time(city.clock.t).replace(hour=10, minute=0, second=0) + timedelta(days=1)
    city.clock.advance(int(start.timestamp()) - city.clock.t)  # every step of the day on one day
    net.add_node(CITY_HALL, "city", CITY, name=HALL_NAME)
    net.add_node(VILLAGE_3, "village", TOWN, name=V3_NAME)
    with authority.open_central(net.central_dir, city.clock) as central:
        authority.grant_items(central, CITY_HALL, None, None)
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        for village in (VILLAGE, VILLAGE_2, VILLAGE_3):
            assert delegate(city, village) > 0
        ok(city.sync(TOWN))
        for code in (VILLAGE, VILLAGE_2, VILLAGE_3, CITY_HALL):
            ok(city.sync(code))
        hall = [take(city, CITY_HALL, proxy=False, n=n) for n in (0, 1, 2, 2)]
        town = [take(city, TOWN, proxy=False, n=n) for n in (0, 1, 2)]
        v1 = [take_in(city, VILLAGE) for _ in range(4)] + [take(city, VILLAGE, proxy=False)]
        v2 = [take_in(city, VILLAGE_2) for _ in range(2)] + [take(city, VILLAGE_2, proxy=False)]
        for _ in range(3):
            take_in(city, VILLAGE_3)
        for code in (VILLAGE, VILLAGE_2, VILLAGE_3, TOWN, CITY_HALL):
            ok(city.sync(code))
        # VILLAGE_3's key is lost: everything after its first case (intake, forward) is suspect.
        sql = "SELECT min(seq) FROM records WHERE origin = ? AND kind = ?"
        first = rows(city.home(CITY) / "central.db", sql, VILLAGE_3, kinds.CASE_INTAKE)[0][0]
        with authority.open_central(net.central_dir, city.clock) as central:
            authority.revoke_node(central, VILLAGE_3, reason="设备丢失", last_good_seq=first + 1)
        city.clock.advance(60)  # decisions on the day
        act(city, CITY_HALL, hall[0], "approve")
        act(city, CITY_HALL, hall[0], "rate", rating="5")
        act(city, TOWN, town[0], "approve")
        act(city, TOWN, town[0], "rate", rating="4")
        act(city, TOWN, v1[0], "approve")
        act(city, TOWN, v1[1], "approve")
        act(city, TOWN, v2[0], "approve")
        act(city, TOWN, v1[2], "request_supplement", reason="请补充户口簿复印件")
        act(city, VILLAGE, v1[4], "approve")
        # Half an hour past a same-day deadline: late in China, though still that day in UTC.
        city.clock.advance(int((start + timedelta(hours=14, minutes=30)).timestamp()) - city.clock.t)
        act(city, TOWN, town[1], "reject", reason="材料不符合要求")
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))  # the town's decisions come down
        act(city, VILLAGE, v1[0], "rate", rating="3")
        ok(city.sync(VILLAGE_2))
        city.clock.advance(40 * DAY)  # decisions forty days late
        act(city, TOWN, v1[3], "approve")
        act(city, TOWN, v2[1], "approve")
        act(city, CITY_HALL, hall[1], "approve")
        act(city, CITY_HALL, hall[1], "rate", rating="1")
        take(city, TOWN, proxy=False, n=3)  # a fresh case, not overdue
        # VILLAGE_2's key is lost before its own late decision and rating: both are void.
        sql = "SELECT max(seq) FROM records WHERE origin = ?"
        last_good = rows(city.home(VILLAGE_2) / "node.db", sql, VILLAGE_2)[0][0]
        act(city, VILLAGE_2, v2[2], "approve")
        act(city, VILLAGE_2, v2[2], "rate", rating="5")
        backlog = waiting_up(city, VILLAGE)
        ok(city.sync(VILLAGE))
        for code in (TOWN, CITY_HALL, VILLAGE_2):
            ok(city.sync(code))
    with authority.open_central(net.central_dir, city.clock) as central:
        authority.revoke_node(central, VILLAGE_2, reason="密钥泄露", last_good_seq=last_good)
    return Scenario(city, city.clock.t, backlog)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return populate(build_city(tmp_path_factory.mktemp("dashboard")))


# -- the tests -------------------------------------------------------------------------------


def test_every_figure_equals_a_count_of_the_signed_records(scenario: Scenario) -> None:
    central_db = scenario.city.home(CITY) / "central.db"
    board = snapshot_of(scenario)
    led = ledger(central_db)
    today = local_date(scenario.now)
    cases = list(led.cases.values())
    # Deadlines move only with a supplement; none of the decided or overdue cases had one.
    assert not [c for c in cases if c.paused and c.state != "supplement"]
    open_ = [c for c in cases if c.state in ("accepted", "forwarded", "supplement")]
    overdue = [c for c in open_ if c.state != "supplement" and date.fromisoformat(c.deadline) < today]
    decided = [c for c in cases if c.decided is not None]
    on_time = [c for c in decided if local_date(c.decided or 0) <= date.fromisoformat(c.deadline)]
    assert 0 < len(on_time) < len(decided) and overdue and len(open_) > len(overdue)
    assert {bytes(i) for (i,) in rows(central_db, "SELECT id FROM quarantined")} == led.quarantined

    assert board.total_cases == len(cases) == 19 - 2  # two of VILLAGE_3's cases are quarantined
    assert (len(decided), len(on_time), len(overdue)) == (10, 6, 5)  # VILLAGE_2's decision is void
    assert (board.completed, board.completed_on_time) == (len(decided), len(on_time))
    assert board.on_time_rate == pytest.approx(len(on_time) / len(decided))
    per_tier = Counter(led.tiers[c.node] for c in cases)
    assert board.volumes == [
        TierVolume(t, per_tier[t], pytest.approx(per_tier[t] / len(cases)))
        for t in ("city", "town", "village")
    ]
    ratings = Counter(str(c.rating) for c in cases if c.rating is not None)
    assert board.satisfaction == {str(r): ratings[str(r)] for r in range(1, 6)}
    assert sum(board.satisfaction.values()) == 4

    calendar = WorkCalendar.builtin()
    expected_overdue = sorted(overdue, key=lambda c: (c.deadline, c.received, c.no))
    assert board.overdue == [
        OverdueCase(
            c.no,
            c.node,
            led.names[c.node],
            c.item,
            c.item_name,
            c.state,
            c.decider,
            c.received,
            c.deadline,
            calendar.working_days_between(date.fromisoformat(c.deadline), today),
        )
        for c in expected_overdue
    ]

    for tier in ("city", "town", "village"):
        counts = Counter(c.item for c in cases if led.tiers[c.node] == tier)
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert [(i.code, i.name, i.cases) for i in board.top_items[tier]] == [
            (code, led.items[code], n) for code, n in top
        ]

    peers = dict(rows(central_db, "SELECT peer, max(last_seen) FROM link_peers GROUP BY peer"))
    live = "cert_id NOT IN (SELECT cert_id FROM revocations)"
    expiry = dict(rows(central_db, f"SELECT code, max(exp) FROM certs WHERE {live} GROUP BY code"))
    codes = sorted(led.tiers)
    assert [n.code for n in board.nodes] == codes  # the org tree, depth first
    for row in board.nodes:
        status = led.status.get(row.code)
        parent_status = led.status.get(led.parents[row.code])
        seen = parent_status.body.get("seen", {}).get(row.code) if parent_status else None  # its town saw it
        contact = [
            led.receipts.get(row.code),
            peers.get(row.code),
            status.payload.ts if status else None,
            seen,
        ]
        mine = [c for c in open_ if c.node == row.code]
        assert row == NodeRow(
            code=row.code,
            name=led.names[row.code],
            tier=led.tiers[row.code],
            parent=led.parents[row.code],
            depth=1 if led.parents[row.code] == CITY else 2,
            last_contact=max(t for t in contact if t is not None),
            open_cases=len(mine),
            overdue_cases=len([c for c in mine if c in overdue]),
            catalog_version=status.body["catalog"] if status else None,
            rejected=status.body["rejected"] if status else None,
            backlog=status.body["backlog"] if status else None,
            revoked=row.code in led.revoked,
            cert_expires=None if row.code in led.revoked else expiry[row.code],
            software=status.body.get("software") if status else None,
            protocol=status.body.get("protocol") if status else None,
            files_up=status.body["files"]["up"] if status and "files" in status.body else None,
            files_down=status.body["files"]["down"] if status and "files" in status.body else None,
        )
    assert [n.revoked for n in board.nodes] == [c in (VILLAGE_2, VILLAGE_3) for c in codes]
    scenario.city.verify_all()


def snapshot_of(scenario: Scenario) -> Any:
    opened = scenario.city.open(CITY)
    try:
        return snapshot(opened.log.db, now=scenario.now)
    finally:
        opened.close()


def test_a_status_report_goes_up_through_the_town_and_never_down(scenario: Scenario) -> None:
    city = scenario.city
    central_db, town_db = city.home(CITY) / "central.db", city.home(TOWN) / "node.db"
    sql = "SELECT origin, seq, catalog, held, rejected, backlog, at, record_id FROM node_status"
    sql += " WHERE origin = ?"
    at_village = rows(city.home(VILLAGE) / "node.db", sql, VILLAGE)
    assert at_village and rows(town_db, sql, VILLAGE) == at_village == rows(central_db, sql, VILLAGE)
    _, _, catalog, held, rejected, backlog, _, _ = at_village[0]
    assert (catalog, held, rejected, backlog) == (1, 0, 0, scenario.village_backlog)
    assert scenario.village_backlog == 1  # its rating waited to go up
    sources = rows(
        central_db,
        "SELECT DISTINCT source FROM records WHERE origin = ? AND kind = ?",
        VILLAGE,
        kinds.NODE_STATUS,
    )
    assert sources == [(TOWN,)]
    for village in (VILLAGE, VILLAGE_2):
        origins = rows(
            city.home(village) / "node.db",
            "SELECT DISTINCT origin FROM records WHERE kind = ?",
            kinds.NODE_STATUS,
        )
        assert origins == [(village,)], village
    town_origins = {
        o for (o,) in rows(town_db, "SELECT DISTINCT origin FROM records WHERE kind = ?", kinds.NODE_STATUS)
    }
    assert town_origins == {TOWN, VILLAGE, VILLAGE_2, VILLAGE_3}
    assert not kinds.concerns(kinds.NODE_STATUS, TOWN, {}, VILLAGE, CITY)
    assert kinds.concerns(kinds.NODE_STATUS, VILLAGE, {}, TOWN, CITY)


def test_csv_export(scenario: Scenario) -> None:
    board = snapshot_of(scenario)
    text = to_csv(board, "nodes")
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table[0] == [f.name for f in fields(NodeRow)]
    assert len(table) == 1 + len(board.nodes) and text.count("\r\n") == len(table)
    assert '"海宁市民之家,""一窗通办"""' in text  # quoted, quotes doubled
    by_code = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert by_code[CITY_HALL]["name"] == HALL_NAME
    assert by_code[TOWN]["name"] == "许村镇便民服务中心"
    assert by_code[VILLAGE_3]["name"] == "'" + V3_NAME  # not a formula in a spreadsheet
    assert by_code[VILLAGE_3]["revoked"] == "1" and by_code[TOWN]["revoked"] == "0"
    assert by_code[VILLAGE]["backlog"] == str(scenario.village_backlog)

    overdue = list(csv.reader(io.StringIO(to_csv(board, "overdue"), newline="")))
    assert overdue[0] == [f.name for f in fields(OverdueCase)]
    assert [row[0] for row in overdue[1:]] == [o.case_no for o in board.overdue]
    volumes = list(csv.reader(io.StringIO(to_csv(board, "volumes"), newline="")))
    assert volumes[1:] == [[v.tier, str(v.cases), f"{v.share:.4f}"] for v in board.volumes]
    items = list(csv.reader(io.StringIO(to_csv(board, "items"), newline="")))
    assert items[0] == ["tier", "rank", "code", "name", "cases"]
    assert len(items) == 1 + sum(len(v) for v in board.top_items.values())
    with pytest.raises(InputError) as refused:
        to_csv(board, "applicants")
    assert refused.value.code is ErrorCode.FIELD_INVALID


def test_an_empty_city_has_zeros_not_errors(tmp_path: Path) -> None:
    city = build_city(tmp_path)
    opened = city.open(CITY)
    try:
        board = snapshot(opened.log.db, now=city.clock.t)
    finally:
        opened.close()
    assert (board.total_cases, board.completed, board.on_time_rate, board.overdue) == (0, 0, None, [])
    assert [(v.tier, v.cases, v.share) for v in board.volumes] == [
        ("city", 0, 0.0),
        ("town", 0, 0.0),
        ("village", 0, 0.0),
    ]
    assert [n.code for n in board.nodes] == [TOWN, VILLAGE, VILLAGE_2]
    assert all(n.last_contact is None and n.backlog is None for n in board.nodes)
    assert to_csv(board, "overdue").count("\r\n") == 1


def test_status_is_reported_when_it_changes_or_an_hour_passes(tmp_path: Path) -> None:
    city = build_city(tmp_path)
    db = city.home(VILLAGE) / "node.db"

    def reports() -> int:
        return int(rows(db, "SELECT count(*) FROM records WHERE kind = ?", kinds.NODE_STATUS)[0][0])

    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        assert delegate(city, VILLAGE) > 0
        ok(city.sync(VILLAGE))  # its first report
        ok(city.sync(VILLAGE))  # the backlog it reported went up: news
        ok(city.sync(VILLAGE))  # nothing new
        assert reports() == 2
        city.clock.advance(3601)
        ok(city.sync(VILLAGE))
        assert reports() == 3
    take_in(city, VILLAGE)
    for _ in range(2):  # the town is gone: nothing to report to, nothing reported
        assert not city.sync(VILLAGE, connect_timeout=0.5, timeout=1.0).ok
    assert reports() == 3
    with city.serving(CITY, TOWN):
        ok(city.sync(VILLAGE))
    assert reports() == 4
    assert rows(db, "SELECT backlog FROM node_status WHERE origin = ?", VILLAGE) == [(2,)]  # intake, forward
    town = city.home(TOWN) / "node.db"
    assert rows(town, "SELECT backlog FROM node_status WHERE origin = ?", VILLAGE) == [(2,)]


def test_a_store_behind_its_parent_does_not_report(tmp_path: Path) -> None:
    """A village restored from an older copy must not sign a record at a seq it used already."""
    city = build_city(tmp_path)
    db = city.home(VILLAGE) / "node.db"
    copy = tmp_path / "village-copy.db"
    sql = "SELECT id FROM records WHERE origin = ? ORDER BY seq"
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        assert delegate(city, VILLAGE) > 0
        ok(city.sync(VILLAGE))
        backup(db, copy)
        take_in(city, VILLAGE)
        ok(city.sync(VILLAGE))
        whole = rows(db, sql, VILLAGE)
        backup(copy, db)
        restored = rows(db, sql, VILLAGE)
        assert len(restored) < len(whole)
        ok(city.sync(VILLAGE))
        synced = rows(db, sql, VILLAGE)
    assert synced == whole[: len(synced)]  # nothing signed at a seq the town holds another record for
    assert rows(city.home(TOWN) / "node.db", "SELECT count(*) FROM forks") == [(0,)]
    assert rows(city.home(TOWN) / "node.db", sql, VILLAGE) == whole


def backup(src: Path, dst: Path) -> None:
    """A consistent copy of the SQLite store ``src`` at ``dst`` (replacing it, WAL included)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
