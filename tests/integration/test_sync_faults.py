"""Sync under faults, with real processes, SQLite files and ZeroMQ sockets on 127.0.0.1.

* Either end of a link is killed with SIGKILL at random points inside sessions, then
  started again; once the faults stop, sessions converge and every store verifies.
* A parent is restored from an older copy of its database: nothing is lost or
  duplicated, the parent gets back what it lost, and checkpoints that are ahead of
  what a store holds cost time, never records.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from central import authority
from core.catalog import Mode
from sync.projection.catalog import current_catalog
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncfaults import (
    Child,
    Parent,
    assert_clean,
    assert_no_duplicates,
    backup,
    concerning,
    decide,
    free_port,
    ids,
    read,
    remove_store,
    stop_all,
    sync_cli,
    take_in_many,
)
from tests.integration.syncnet import City, build_city, delegate

SEEDS = (
    *(101, 202, 303, 404, 505, 606, 707, 808, 909, 1010, 1111, 1212, 1313, 1414, 1515),
    *(1616, 1717, 1818, 1919, 2020, 2121, 2222, 2323, 2424, 2525, 2626, 2727, 2828, 2929, 3030),
)
"""One round of faults per seed; a failure names its seed and the rounds before it."""
CHILD_TIMEOUT = 2.0
"""Seconds a child waits for its parent inside a fault round (a killed parent says nothing)."""


def ok(result: object) -> None:
    assert getattr(result, "ok", False), getattr(result, "error", None)


def db(city: City, code: str) -> Path:
    return city.home(code) / ("central.db" if code == CITY else "node.db")


def enrolled_city(root: Path) -> City:
    """Central, town and village with the town's grants passed down, all synced once."""
    city = build_city(root)
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        assert delegate(city, VILLAGE) > 0
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))
    return city


def publish(city: City, releases: int) -> None:
    """Central signs catalog releases and a grant to the town: records every node needs."""
    with authority.open_central(city.net.central_dir, city.clock) as central:
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        for _ in range(releases):
            authority.publish_catalog(central, catalog.items)
        authority.grant(central, TOWN, [catalog.items[0].code], Mode.PROXY, valid_days=30)


def village_pending(city: City) -> int:
    """Records of the village's own chain that the town does not hold yet."""
    mine = read(db(city, VILLAGE), "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE)[0][0] or 0
    theirs = read(db(city, TOWN), "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE)[0][0] or 0
    return max(0, mine - theirs)


def fault_round(
    city: City, parent: Parent, rng: random.Random, logs: Path, processes: list[Parent | Child | None]
) -> str:
    """New work at every tier, then one session of the village with either end (or both)
    killed somewhere: in start-up, the handshake, or after a chosen number of batches."""
    take_in_many(city, VILLAGE, TOWN, rng.randint(0, 4), rng.randint(0, 150))
    decide(city, TOWN, VILLAGE, rng.randint(0, 20), rng.sample)
    if rng.random() < 0.2:
        publish(city, 1)
        ok(city.sync(TOWN))
    parent.ensure()
    victim = rng.choice(("parent", "child", "both"))
    at = rng.randint(0, village_pending(city) // 256 + 2)
    child = Child(city.home(VILLAGE), parent.endpoint, CHILD_TIMEOUT, logs / "child.log")
    processes.append(child)
    if at == 0:  # during start-up, the handshake, HELLO or the revocations
        time.sleep(rng.uniform(0.1, 0.9))
        reached = child.running
    else:
        reached = child.wait_events(at, 60.0)
        if reached:
            time.sleep(rng.uniform(0.0, 0.04))
    killed = reached and child.running
    if killed:
        if victim in ("parent", "both"):
            parent.kill()
        if victim in ("child", "both"):
            child.kill()
        elif rng.random() < 0.5:
            parent.start()  # back at once: the child's next message meets a new process
    status = child.finish(30.0)
    processes.remove(child)
    return (
        f"victim={victim} at={at} killed={killed} events={child.events}"
        f" outcome={child.outcome or '-'} status={status}"
    )


Session = Callable[[], tuple[bool, int, int, str]]
"""One sync session: (ok, records up, records down, what it said)."""


def converge(session: Session, rounds: int = 8) -> None:
    """Sessions until one moves nothing; each must succeed once the faults have stopped."""
    outputs = []
    for _ in range(rounds):
        good, up, down, output = session()
        outputs.append(output)
        if good and up == 0 and down == 0:
            return
    raise AssertionError("no convergence:\n" + "\n".join(outputs))


def in_process(city: City, code: str) -> Session:
    """A session of ``code`` run in this process, with its parent's endpoint from ``city``."""

    def session() -> tuple[bool, int, int, str]:
        result = city.sync(code)
        return result.ok, result.summary.up, result.summary.down, repr(result.error)

    return session


def assert_link_whole(city: City) -> None:
    """The town holds the village's whole chain, and the village all that concerns it."""
    town, village = db(city, TOWN), db(city, VILLAGE)
    authored = ids(village, "origin = ?", VILLAGE)
    assert ids(town, "origin = ?", VILLAGE) == authored
    assert len(authored) == read(village, "SELECT max(seq) FROM records WHERE origin = ?", VILLAGE)[0][0]
    missing = concerning(town, VILLAGE, CITY) - ids(village)
    assert not missing, f"{len(missing)} records that concern the village did not come down"


@pytest.fixture
def processes() -> Iterator[list[Parent | Child | None]]:
    started: list[Parent | Child | None] = []
    yield started
    stop_all(started)


@pytest.mark.slow
def test_kill_either_end_at_random_points(tmp_path: Path, processes: list[Parent | Child | None]) -> None:
    """A village with a long backlog syncs with its town; each round kills the town's
    ``serve-sync`` or the village's session (or both) with SIGKILL; then sessions converge."""
    city = enrolled_city(tmp_path / "city")
    logs = tmp_path / "logs"
    logs.mkdir()
    parent = Parent(city.home(TOWN), f"tcp://127.0.0.1:{free_port()}", logs / "parent.log")
    processes.append(parent)
    history: list[str] = []
    with city.serving(CITY):
        # The village worked offline for a while; central published meanwhile.
        take_in_many(city, VILLAGE, TOWN, 150, 1800)
        publish(city, 3)
        ok(city.sync(TOWN))
        for number, seed in enumerate(SEEDS):
            try:
                line = fault_round(city, parent, random.Random(seed), logs, processes)
            except BaseException as exc:
                raise AssertionError(f"round {number} (seed {seed}) failed; before it: {history}") from exc
            history.append(f"seed {seed}: {line}")
            print(history[-1])
        parent.ensure()
        converge(lambda: sync_cli(city.home(VILLAGE), parent.endpoint))
        parent.stop()
    killed = [line.split()[2].split("=")[1] for line in history if "killed=True" in line]
    assert len(killed) >= len(SEEDS) // 2 and {"parent", "child", "both"} <= set(killed), history
    city.verify_all()
    for code in (CITY, TOWN, VILLAGE):
        assert_no_duplicates(db(city, code))
        assert_clean(db(city, code))
    assert_link_whole(city)
    assert read(db(city, VILLAGE), "SELECT count(*) FROM records WHERE origin = ?", VILLAGE)[0][0] > 2000


def restored_city(
    tmp_path: Path,
    processes: list[Parent | Child | None],
    *,
    publish_after_copy: bool,
    tamper: Callable[[Path], None] | None = None,
) -> tuple[City, Parent, Parent, dict[str, set[bytes]]]:
    """A town restored from a copy older than what the village and central hold of it.

    Returns the city, central's and the town's sync endpoints (serving, as processes) and
    what each store held just before the restore. ``tamper`` may change the restored
    store before the town starts on it.
    """
    city = enrolled_city(tmp_path / "city")
    logs = tmp_path / "logs"
    logs.mkdir()
    central = Parent(city.home(CITY), f"tcp://127.0.0.1:{free_port()}", logs / "central.log")
    town = Parent(city.home(TOWN), f"tcp://127.0.0.1:{free_port()}", logs / "town.log")
    processes.extend([central, town])
    central.start()
    town.start()
    city.endpoints.update({CITY: central.endpoint, TOWN: town.endpoint})

    take_in_many(city, VILLAGE, TOWN, 30, 200)
    ok(city.sync(VILLAGE))
    assert decide(city, TOWN, VILLAGE, 10, lambda cases, n: cases[:n]) == 10
    ok(city.sync(TOWN))
    ok(city.sync(VILLAGE))
    ok(city.sync(TOWN))

    copy = tmp_path / "town-copy.db"
    backup(db(city, TOWN), copy)  # online, while the town serves

    take_in_many(city, VILLAGE, TOWN, 30, 300)
    ok(city.sync(VILLAGE))
    assert decide(city, TOWN, VILLAGE, 20, lambda cases, n: cases[-n:]) == 20
    if publish_after_copy:
        publish(city, 2)
    ok(city.sync(TOWN))
    ok(city.sync(VILLAGE))
    ok(city.sync(TOWN))  # central now holds everything the town signed
    before = {code: ids(db(city, code)) for code in (CITY, TOWN, VILLAGE)}

    town.stop()
    remove_store(db(city, TOWN))
    backup(copy, db(city, TOWN))
    assert ids(db(city, TOWN)) < before[TOWN]
    if tamper is not None:
        tamper(db(city, TOWN))
    town.start()
    return city, central, town, before


def checkpoints(path: Path) -> dict[tuple[str, str], int]:
    rows = read(path, "SELECT peer, direction, arrival FROM link_checkpoints")
    return {(peer, direction): arrival for peer, direction, arrival in rows}


def assert_whole_after_restore(city: City, before: dict[str, set[bytes]]) -> None:
    for code, held in before.items():
        lost = held - ids(db(city, code))
        assert not lost, f"{code} lost {len(lost)} records"
    city.verify_all()
    for code in (CITY, TOWN, VILLAGE):
        assert_no_duplicates(db(city, code))
        assert_clean(db(city, code))
    assert_link_whole(city)
    assert ids(db(city, CITY), "origin = ?", TOWN) == ids(db(city, TOWN), "origin = ?", TOWN)


@pytest.mark.slow
def test_parent_restored_from_an_older_copy(tmp_path: Path, processes: list[Parent | Child | None]) -> None:
    """The town's store is put back to an older copy while the village and central hold
    more of it: it gets everything back, and nothing is lost or duplicated anywhere."""
    city, central, town, before = restored_city(tmp_path, processes, publish_after_copy=True)
    # The restored town's checkpoints at central are ahead of what it holds; the village's
    # at the town are behind. The town first gets its own chain and its subtree's back from
    # central, then syncs with the village.
    held = read(db(city, TOWN), "SELECT max(arrival) FROM records")[0][0]
    assert checkpoints(db(city, CITY))[(TOWN, "up")] > held
    good, _, down, output = sync_cli(city.home(TOWN), central.endpoint)
    assert good and down > 0, output
    good, _, _, output = sync_cli(city.home(VILLAGE), town.endpoint)
    assert good, output
    # New work on the restored town goes down as usual.
    assert decide(city, TOWN, VILLAGE, 5, lambda cases, n: cases[:n]) == 5
    converge(in_process(city, VILLAGE))
    converge(in_process(city, TOWN))
    converge(in_process(city, VILLAGE))
    town.kill()
    central.kill()
    assert_whole_after_restore(city, before)


@pytest.mark.slow
def test_checkpoints_ahead_of_the_parents_store(
    tmp_path: Path, processes: list[Parent | Child | None]
) -> None:
    """A restored town whose checkpoints for the village are far ahead of its own log (as if
    they had been kept apart from the records): the village still gets every record."""

    def ahead(path: Path) -> None:
        conn = sqlite3.connect(path)
        try:
            with conn:
                conn.execute(
                    "UPDATE link_checkpoints SET arrival = arrival * 10 + 1000 WHERE peer = ?", (VILLAGE,)
                )
        finally:
            conn.close()

    city, central, town, before = restored_city(tmp_path, processes, publish_after_copy=False, tamper=ahead)
    held = read(db(city, TOWN), "SELECT max(arrival) FROM records")[0][0]
    assert min(checkpoints(db(city, TOWN))[(VILLAGE, d)] for d in ("up", "down")) > held
    good, _, _, output = sync_cli(city.home(TOWN), central.endpoint)
    assert good, output
    assert decide(city, TOWN, VILLAGE, 5, lambda cases, n: cases[:n]) == 5
    converge(in_process(city, VILLAGE))
    converge(in_process(city, TOWN))
    converge(in_process(city, VILLAGE))
    town.kill()
    central.kill()
    assert_whole_after_restore(city, before)
