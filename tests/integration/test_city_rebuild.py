"""A city of two towns and six villages (``make bench``'s city, built the same way) loses
central's store in the middle of its work and rebuilds it from the network.

While central is gone the villages go on taking cases in and the towns go on deciding; then
central is rebuilt from a village's store and the towns' sessions. Every store verifies,
central holds every case in its final state and every record it held before, and the
record it signs next takes the seq after the highest any node held: nothing forks.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.city import check
from bench.city.build import build
from bench.city.plan import CITY_CODE, CityPlan, city_plan
from central import authority, heartbeat, rebuild
from core.catalog import Mode
from core.clock import FixedClock
from core.errors import AuthorityError
from node.desk import Desk
from sync.link.endpoint import ParentServer
from sync.link.transport import LinkSettings, sync_once
from tests.integration.syncnet import proxy_form
from tongban.homes import open_home, upstreams

pytestmark = pytest.mark.slow

TOWNS, VILLAGES = 2, 3
IDS = ("11010519491231002X", "330481199001010014", "330481198502020021")


class Running:
    """The city's directories, its clock, and the endpoints of the parents being served."""

    def __init__(self, root: Path, plan: CityPlan, clock: FixedClock) -> None:
        self.root, self.plan, self.clock = root, plan, clock
        self.endpoints: dict[str, str] = {}

    def home(self, code: str) -> Path:
        return self.root / ("central" if code == CITY_CODE else code)

    def store(self, code: str) -> Path:
        return self.home(code) / ("central.db" if code == CITY_CODE else "node.db")

    @contextlib.contextmanager
    def serving(self, *codes: str) -> Iterator[None]:
        servers = []
        try:
            for code in codes:
                server = ParentServer(lambda c=code: open_home(self.home(c), self.clock), "tcp://127.0.0.1:*")
                servers.append(server.start())
                self.endpoints[code] = server.endpoint
            yield
        finally:
            for server in servers:
                server.stop()

    def sync(self, code: str) -> None:
        opened = open_home(self.home(code), self.clock)
        parent = opened.parent
        opened.settings = LinkSettings(parent=self.endpoints.get(parent, "tcp://127.0.0.1:9"))
        try:
            result = sync_once(opened, upstreams(opened), connect_timeout=2.0)
        finally:
            opened.close()
        assert result.ok, (code, result.error)

    def everyone(self) -> None:
        """Up and down the tree: each town, its villages, each town again."""
        for town in self.plan.towns:
            self.sync(town.code)
            for village in self.plan.villages_of(town.code):
                self.sync(village.code)
            self.sync(town.code)

    def take_in(self, village: str, town: str, n: int) -> None:
        with Desk.open(self.home(village), self.clock) as desk:
            for k in range(n):
                desk.intake(proxy_form(desk, town, IDS[k % len(IDS)]), actor="wangli")

    def decide(self, town: str) -> None:
        with Desk.open(self.home(town), self.clock) as desk:
            for case in desk.queue():
                desk.act(case.case_no, "approve", {}, actor="shenpi")

    def rows(self, code: str, sql: str) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(f"file:{self.store(code)}?mode=ro", uri=True)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def ids(self, code: str) -> set[bytes]:
        return {bytes(r[0]) for r in self.rows(code, "SELECT id FROM records")}  # type: ignore[arg-type]

    def root_head(self, code: str) -> int:
        return int(self.rows(code, f"SELECT max(seq) FROM records WHERE origin = '{CITY_CODE}'")[0][0])  # type: ignore[arg-type]


def copy(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Running:
    root = tmp_path_factory.mktemp("city")
    plan = city_plan(TOWNS, VILLAGES, 0)
    running = Running(root, plan, FixedClock(t=build(root, plan), step=1))
    with running.serving(CITY_CODE, *(t.code for t in plan.towns)):
        for town in plan.towns:
            running.sync(town.code)
            with Desk.open(running.home(town.code), running.clock) as desk:
                for village in plan.villages_of(town.code):
                    for parent in desk.delegation.parents():
                        if parent.mode is not Mode.SAME_POWER:
                            with contextlib.suppress(AuthorityError):
                                desk.delegation.delegate(
                                    village.code, parent.id, list(parent.items), 30, actor="guanli"
                                )
        running.everyone()
    return running


def test_central_lost_mid_month_is_rebuilt_and_the_city_converges(city: Running) -> None:
    plan = city.plan
    towns = [t.code for t in plan.towns]
    with city.serving(CITY_CODE, *towns):
        for village in plan.villages:
            city.take_in(village.code, village.parent, 2)
        for town in towns:
            city.sync(town)  # nothing of the villages' yet: central signs receipts
        city.everyone()
        for town in towns:
            city.decide(town)
        city.everyone()
        seed = city.root / "seed.db"  # a village's store as it was then: any node holds the root
        copy(city.store(plan.villages[0].code), seed)
        with authority.open_central(city.home(CITY_CODE), city.clock) as central:
            heartbeat.publish(central)
        for town in towns:
            city.sync(town)  # the heartbeat reaches the towns, not the villages
        held_before = city.ids(CITY_CODE)
        for suffix in ("", "-wal", "-shm"):  # central's store, gone while it serves
            Path(f"{city.store(CITY_CODE)}{suffix}").unlink(missing_ok=True)
    with city.serving(*towns):  # the towns and villages work on, without central
        for village in plan.villages:
            city.take_in(village.code, village.parent, 1)
            city.sync(village.code)
        for town in towns:
            city.decide(town)
        for village in plan.villages:
            city.sync(village.code)

        started = rebuild.begin(city.home(CITY_CODE), city.clock, seed=seed)
        assert started.root_at_start < city.root_head(towns[0])
        with city.serving(CITY_CODE):
            for town in towns:
                city.sync(town)
            with authority.open_central(city.home(CITY_CODE), city.clock) as central:
                waiting = [row.code for row in rebuild.progress(central, started) if not row.synced]
                assert waiting == []
                head = rebuild.finish(central)
            assert head == max(city.root_head(code) for code in (*towns, *(v.code for v in plan.villages)))
            with authority.open_central(city.home(CITY_CODE), city.clock) as central:
                assert heartbeat.publish(central).seq == head + 1  # never a seq twice
            city.everyone()
            city.everyone()

    assert held_before <= city.ids(CITY_CODE)
    codes = [node.code for node in plan.nodes]
    records, faults = check.verify_all(city.root, codes, city.clock.now())
    assert faults == [] and records > 0
    for code in (CITY_CODE, *codes):
        assert city.rows(code, "SELECT count(*) FROM forks") == [(0,)], code
    cases = city.rows(CITY_CODE, "SELECT state, count(*) FROM cases GROUP BY state")
    assert dict(cases) == {"approved": 3 * len(plan.villages)}  # type: ignore[arg-type]
    # Central's root chain is the one every node holds, through central's newest record.
    central_root = city.rows(
        CITY_CODE, f"SELECT seq, id FROM records WHERE origin = '{CITY_CODE}' ORDER BY seq"
    )
    for code in codes:
        theirs = city.rows(code, f"SELECT seq, id FROM records WHERE origin = '{CITY_CODE}' ORDER BY seq")
        assert theirs == central_root[: len(theirs)], code
