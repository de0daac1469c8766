"""Sync between a village and its town over a real, shaped link in network namespaces.

The town's endpoint (``tongban serve-sync``) runs in one namespace and the village's
``tongban node sync --once`` in another; the veth pair between them is slowed with
``tc … tbf`` and made lossy with nftables, or cut in the middle of a session. Before the
link is used the town has synced with central over loopback, so it holds central's
catalog releases and grants, and it has delegated items to the village: those come down,
while the village's own clerk accounts go up.

These tests need root, iproute2 and nftables; without them they fail (see ``netns.py``).
"""

from __future__ import annotations

import functools
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central import authority
from core.catalog import Mode
from core.clock import FixedClock
from node.clerks import Clerks, hash_password
from node.store import MIGRATION_SETS as NODE_SETS
from sync.link.protocol import BATCH_RECORDS
from sync.projection import standard
from sync.projection.catalog import current_catalog
from sync.projection.delegation import split_by_mode
from sync.record.inspect import verify_store
from sync.record.kinds import concerns
from sync.record.log import decode_stored
from tests.helpers import CITY, TOWN, VILLAGE, Network
from tests.integration.netns import Link, namespaces, veth_link
from tests.integration.syncnet import City, build_city, delegate

pytestmark = pytest.mark.slow

PORT = 7701
SUMMARY = re.compile(r"(\d+) records up, (\d+) down")
CENTRAL_GRANTS = 150
CLERKS = 300


@functools.cache
def password_hash() -> bytes:
    return hash_password("correct horse battery staple")


def add_clerks(city: City, code: str, count: int, prefix: str) -> None:
    """``count`` clerk accounts at ``code``: one ``clerk.set`` record each."""
    desk = city.desk(code)
    try:
        clerks = Clerks(desk.db, desk.store.log, desk.code, desk.clock)
        for i in range(count):
            clerks.add(
                desk.keys, f"{prefix}{i:04d}", f"办事员{i}", ["clerk"], password_hash(), actor="guanli"
            )
    finally:
        desk.store.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> City:
    """A city whose town synced with central over loopback; the village has not synced yet."""
    city = build_city(tmp_path_factory.mktemp("city"))
    with authority.open_central(city.net.central_dir, city.clock) as central:
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        modes = split_by_mode(catalog, "town", [i.code for i in catalog.items], Mode.SAME_POWER)
        mode, items = next(iter(modes.items()))
        authority.publish_catalog(central, catalog.items)  # a second release: big records
        for i in range(CENTRAL_GRANTS):
            authority.grant(central, TOWN, [items[i % len(items)]], mode, valid_days=30)
    with city.serving(CITY):
        result = city.sync(TOWN)
        assert result.ok, result.error
    assert delegate(city, VILLAGE) > 0
    add_clerks(city, VILLAGE, CLERKS, "clerk")
    return city


@pytest.fixture
def city(template: City, tmp_path: Path) -> City:
    root = tmp_path / "city"
    shutil.copytree(template.net.root, root)
    return City(Network(root, FixedClock(t=template.clock.now(), step=1), template.net.fingerprint), {})


@pytest.fixture
def link() -> Iterator[Link]:
    with veth_link() as made:
        yield made
    left = {made.a.netns, made.b.netns} & namespaces()
    assert not left, f"namespaces left behind: {left}"


# -- reading the stores ---------------------------------------------------------------------


def db_path(city: City, code: str) -> Path:
    return city.home(code) / "node.db"


def rows(city: City, code: str, sql: str, *params: object) -> list[Any]:
    conn = sqlite3.connect(f"file:{db_path(city, code)}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def village_records_at(city: City, code: str) -> int:
    return int(rows(city, code, "SELECT count(*) FROM records WHERE origin = ?", VILLAGE)[0][0])


def ids(city: City, code: str) -> set[bytes]:
    return {bytes(r[0]) for r in rows(city, code, "SELECT id FROM records")}


def down_ids(city: City) -> set[bytes]:
    """What the town holds that concerns the village (what sync must bring down)."""
    wanted = set()
    for rid, envelope in rows(city, TOWN, "SELECT id, envelope FROM records"):
        record = decode_stored(bytes(envelope))
        if concerns(record.kind, record.origin, record.body, VILLAGE, CITY):
            wanted.add(bytes(rid))
    return wanted


def assert_converged(city: City) -> None:
    for code in (TOWN, VILLAGE):
        report = verify_store(db_path(city, code), NODE_SETS, city.clock, standard())
        assert report.ok, (code, report.faults[:5])
        doubled = rows(
            city,
            code,
            "SELECT origin, seq, count(*) FROM records GROUP BY origin, seq HAVING count(*) > 1"
            " UNION ALL SELECT hex(id), 0, count(*) FROM records GROUP BY id HAVING count(*) > 1",
        )
        assert not doubled, (code, doubled[:5])
    at_town, at_village = ids(city, TOWN), ids(city, VILLAGE)
    own = {bytes(r[0]) for r in rows(city, VILLAGE, "SELECT id FROM records WHERE origin = ?", VILLAGE)}
    assert len(own) > CLERKS
    assert not own - at_town, f"{len(own - at_town)} of the village's records are not at the town"
    down = down_ids(city)
    assert len(down) > CENTRAL_GRANTS
    assert not down - at_village, f"{len(down - at_village)} records for the village did not come down"


# -- running sessions ----------------------------------------------------------------------


class Sessions:
    """``tongban node sync --once`` runs of the village, and what each said."""

    def __init__(self, link: Link, city: City, endpoint: str, timeout: float) -> None:
        self.link = link
        self.city = city
        self.endpoint = endpoint
        self.timeout = timeout
        self.outcomes: list[str] = []
        self.moved: list[tuple[int, int, int, int]] = []
        """Each completed session: (up, down, the village's records at the town before it, and
        at the village after it: a session may add the village's status report)."""

    def once(self, left: float) -> tuple[int, int] | None:
        """One session; (up, down) from its summary line, or None if it failed."""
        held = village_records_at(self.city, TOWN)
        args = ["node", "sync", str(self.city.home(VILLAGE)), "--once", "--endpoint", self.endpoint]
        try:
            done = self.link.tongban(self.link.b, *args, "--timeout", str(self.timeout), timeout=left)
        except subprocess.TimeoutExpired:
            self.outcomes.append("killed at the deadline")
            return None
        found = SUMMARY.search(done.stdout)
        if done.returncode == 0 and found:
            self.outcomes.append(f"ok: {found.group(0)}")
            up, down = int(found.group(1)), int(found.group(2))
            self.moved.append((up, down, held, village_records_at(self.city, VILLAGE)))
            return up, down
        self.outcomes.append(f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
        return None

    def until_clean(self, seconds: float) -> None:
        """Sessions until one completes with nothing left to move (bounded by ``seconds``)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 1:
            if self.once(left) == (0, 0):
                return
        pytest.fail(f"no clean session within {seconds:.0f} s: {self.outcomes}", pytrace=False)


# -- the tests -------------------------------------------------------------------------------


def test_lossy_slow_link_converges(city: City, link: Link, tmp_path: Path) -> None:
    link.shape(rate="1mbit", burst="32kbit", latency="400ms")
    link.lose(2)  # about 20 % of the packets arriving in either namespace are dropped
    assert "tbf" in link.qdiscs(link.a) and "tbf" in link.qdiscs(link.b)
    endpoint = link.serve(link.a, city.home(TOWN), PORT, tmp_path / "serve.log")
    total = village_records_at(city, VILLAGE)
    assert total > CLERKS and village_records_at(city, TOWN) == 0

    sessions = Sessions(link, city, endpoint, timeout=15)
    sessions.until_clean(90)

    assert link.dropped() > 0, "the loss rules dropped nothing"
    up, down, held, whole = sessions.moved[0]
    assert up + held == whole and whole > total and down > CENTRAL_GRANTS, sessions.outcomes
    assert_converged(city)


def test_cut_link_fails_clearly_then_resumes_from_the_checkpoints(
    city: City, link: Link, tmp_path: Path
) -> None:
    add_clerks(city, VILLAGE, 5 * BATCH_RECORDS, "late")  # an up phase of several batches
    total = village_records_at(city, VILLAGE)
    link.shape(rate="512kbit", burst="16kbit", latency="200ms")
    endpoint = link.serve(link.a, city.home(TOWN), PORT, tmp_path / "serve.log")
    timeout = 30.0
    args = ["node", "sync", str(city.home(VILLAGE)), "--once", "--endpoint", endpoint]
    log = tmp_path / "cut-session.log"
    proc = link.start(link.b, *args, "--timeout", str(timeout), log=log)

    deadline = time.monotonic() + 60
    while (held := village_records_at(city, TOWN)) < BATCH_RECORDS:
        assert proc.poll() is None, f"the session ended before the cut: {log.read_text()}"
        assert time.monotonic() < deadline, f"no batch arrived within 60 s: {log.read_text()}"
        time.sleep(0.05)
    assert held < total, "the whole up phase went through before the cut"
    link.cut()
    cut_at = time.monotonic()
    try:
        status = proc.wait(timeout + 15)
    finally:
        failed_after = time.monotonic() - cut_at
        link.restore()
    output = log.read_text()
    assert status != 0, output
    # The lost connection (ZMTP heartbeats) ends the session; it does not wait out --timeout.
    assert "E_SYNC_UNREACHABLE" in output and failed_after < timeout, (failed_after, output)

    held = village_records_at(city, TOWN)
    assert BATCH_RECORDS <= held < total
    checkpoint = rows(
        city, TOWN, "SELECT arrival FROM link_checkpoints WHERE peer = ? AND direction = 'up'", VILLAGE
    )
    assert checkpoint and int(checkpoint[0][0]) > 0, checkpoint
    # The root's chain (central's grants among it) came first, before the upload was cut.
    root_head = "SELECT max(seq) FROM records WHERE origin = ?"
    assert rows(city, VILLAGE, root_head, CITY) == rows(city, TOWN, root_head, CITY)

    sessions = Sessions(link, city, endpoint, timeout=10)
    sessions.until_clean(60)
    up, down, held, whole = sessions.moved[0]
    # The resumed session sent only what the town lacked: nothing twice, nothing lost.
    assert up + held == whole and up < total, (sessions.moved, total, sessions.outcomes)
    assert down > 0, sessions.outcomes
    assert "tbf" in link.qdiscs(link.a), "the shaping did not survive the cut"
    refused = rows(city, TOWN, "SELECT code, times FROM link_rejections WHERE peer = ?", VILLAGE)
    assert not refused, refused
    assert_converged(city)


def test_a_lost_connection_fails_the_session_at_once(city: City) -> None:
    """Regression: a child whose connection dropped in a session waited out its whole timeout
    (libzmq reconnects under it, but the parent knows no session on the new connection)."""
    stopped: list[bool] = []
    with city.serving(TOWN) as servers:

        def stop_the_parent(summary: object, estimate: int) -> None:
            if not stopped:
                stopped.append(True)
                servers[TOWN].stop()

        result = city.sync(VILLAGE, timeout=30.0, progress=stop_the_parent)
    assert stopped and not result.ok
    assert result.error is not None and result.error.code.value == "E_SYNC_UNREACHABLE", result.error
    assert result.seconds < 10, result.seconds
