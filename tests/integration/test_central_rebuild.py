"""Central rebuilt from the network: its store deleted mid-operation, or put back from a copy
a minute old through ``tongban central restore``.

The rebuild runs as the operator runs it, ``tongban central rebuild`` in a process of its own
serving the nodes; the town syncs with it as with central. While it runs central signs
nothing (``E_CENTRAL_REBUILDING``); it finishes once the town has synced, and central then
signs on after the highest root record any node held: no seq is signed twice, every store
verifies, and central holds every record it held before.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from central import authority, heartbeat
from core.catalog import Mode
from core.errors import ErrorCode
from sync.projection.catalog import current_catalog
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2
from tests.integration.forknet import ID_2, backup, chain, ok, rows
from tests.integration.syncnet import City, build_delegated_city, take_in
from tests.integration.webnode import free_port
from tongban.cli import main


def central_db(city: City) -> Path:
    return city.home(CITY) / "central.db"


def store(city: City, code: str) -> Path:
    return central_db(city) if code == CITY else city.home(code) / "node.db"


def ids(path: Path) -> set[bytes]:
    return {bytes(r[0]) for r in rows(path, "SELECT id FROM records")}


def working_city(tmp_path: Path) -> City:
    """A city at work: a case taken in at the village, approved at the town; central signs
    a release and a grant; the village beside syncs with central directly; all synced."""
    city = build_delegated_city(tmp_path)
    with city.serving(CITY, TOWN):
        take_in(city, VILLAGE)
        ok(city.sync(VILLAGE))
        with city.desk(TOWN) as desk:
            for case in desk.queue():
                desk.act(case.case_no, "approve", {}, actor="shenpi")
        central_signs(city)
        ok(city.sync(VILLAGE_2))  # straight to central: its records reach the town from there
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))
        ok(city.sync(TOWN))
    return city


def central_signs(city: City) -> None:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        authority.publish_catalog(central, catalog.items)
        authority.grant(central, TOWN, [catalog.items[0].code], Mode.PROXY, valid_days=30)
        heartbeat.publish(central)


def remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def rebuilding(city: City, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``tongban central <args>`` (a rebuild or a restore) in its own process, serving the
    nodes on a free port; central's endpoint in ``city`` is that one while it runs."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tongban", "central", *args, "--listen", endpoint, "--wait", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if "serving the nodes at" in line:
                break
        else:
            raise AssertionError(f"the rebuild did not start (exit {proc.wait()})")
        city.endpoints[CITY] = endpoint
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def finished(proc: subprocess.Popen[str], seconds: float = 60.0) -> str:
    assert proc.stdout is not None
    output = proc.stdout.read()
    assert proc.wait(seconds) == 0, output
    return output


def refused_while_rebuilding(city: City) -> None:
    """Central signs nothing while it is rebuilt: its heartbeat is refused with the code,
    and nothing stored changes."""
    before = chain(central_db(city), CITY)
    result = CliRunner().invoke(main, ["central", "heartbeat", str(city.home(CITY))])
    assert result.exit_code == 3 and ErrorCode.CENTRAL_REBUILDING.value in result.output, result.output
    assert chain(central_db(city), CITY) == before


def signs_on_and_nothing_forks(city: City, before: dict[str, set[bytes]]) -> None:
    """Central holds all it held before and the root chain every node holds; the record it
    signs next has the seq after the highest any node held, and goes down without a fork."""
    assert before[CITY] <= ids(central_db(city))
    highest = max(chain(store(city, code), CITY)[-1][0] for code in (TOWN, VILLAGE, VILLAGE_2))
    assert chain(central_db(city), CITY)[-1][0] == highest
    for code in (TOWN, VILLAGE, VILLAGE_2):
        assert (
            chain(store(city, code), CITY)
            == chain(central_db(city), CITY)[: len(chain(store(city, code), CITY))]
        )
    with authority.open_central(city.net.central_dir, city.clock) as central:
        record = heartbeat.publish(central)
    assert record.seq == highest + 1
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))
    for code in (CITY, TOWN, VILLAGE, VILLAGE_2):
        assert rows(store(city, code), "SELECT count(*) FROM forks") == [(0,)], code
    assert record.id in ids(store(city, TOWN))
    city.verify_all()


def test_central_deleted_mid_operation_is_rebuilt_from_the_network(tmp_path: Path) -> None:
    city = working_city(tmp_path)
    seed = tmp_path / "seed.db"
    with city.serving(CITY, TOWN):
        take_in(city, VILLAGE, doc_no=ID_2)
        ok(city.sync(VILLAGE))
        ok(city.sync(TOWN))
        before = {code: ids(store(city, code)) for code in (CITY, TOWN, VILLAGE, VILLAGE_2)}
        remove(central_db(city))  # while central serves: its store is gone
    backup(store(city, VILLAGE), seed)  # any node's store holds the root's whole chain
    with rebuilding(city, "rebuild", str(city.home(CITY)), "--seed", str(seed)) as proc:
        refused_while_rebuilding(city)
        ok(city.sync(TOWN))  # the town gives back the root's chain and its subtree
        output = finished(proc)
    assert re.search(rf"{TOWN} .*synced, root #\d+", output), output
    assert "signs on from" in output
    signs_on_and_nothing_forks(city, before)


def test_a_copy_a_minute_old_is_restored_through_a_rebuild(tmp_path: Path) -> None:
    city = working_city(tmp_path)
    copies = tmp_path / "backups"
    made = CliRunner().invoke(main, ["central", "backup", str(city.home(CITY)), str(copies), "--keep", "2"])
    assert made.exit_code == 0, made.output
    (copy,) = copies.glob("central-*.db")
    city.clock.advance(60)  # a minute of central's work reaches the town, then central is lost
    central_signs(city)
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))
    before = {code: ids(store(city, code)) for code in (CITY, TOWN, VILLAGE, VILLAGE_2)}
    with rebuilding(city, "restore", str(copy), str(city.home(CITY))) as proc:
        refused_while_rebuilding(city)
        assert chain(central_db(city), CITY)[-1][0] < chain(store(city, TOWN), CITY)[-1][0]
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE_2))  # the copy says it synced with central: it is waited for too
        output = finished(proc)
    assert f"{VILLAGE_2} 李家村便民服务中心: synced" in output, output
    assert list(city.home(CITY).glob("central.db.replaced-*"))  # the store it replaced, kept aside
    signs_on_and_nothing_forks(city, before)


def test_a_rebuild_that_cannot_find_what_central_signed_does_not_finish_unasked(tmp_path: Path) -> None:
    """Central signed a record no node got before its store was lost: its watermark says
    so, and the rebuild does not finish until the operator accepts that loss."""
    city = working_city(tmp_path)
    seed = tmp_path / "seed.db"
    backup(store(city, TOWN), seed)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        lost = heartbeat.publish(central)  # reaches no node
    remove(central_db(city))
    with rebuilding(city, "rebuild", str(city.home(CITY)), "--seed", str(seed)) as proc:
        ok(city.sync(TOWN))
        assert proc.stdout is not None
        output = proc.stdout.read()
        assert proc.wait(60) == 3, output
    assert ErrorCode.CENTRAL_REBUILDING.value in output and f"#{lost.seq}" in output, output
    refused_while_rebuilding(city)  # still rebuilding: the mark stays
    with rebuilding(city, "rebuild", str(city.home(CITY)), "--accept-loss") as proc:
        output = finished(proc)  # the town synced since the rebuild began
    assert f"given up #{lost.seq}" in output
    assert chain(central_db(city), CITY)[-1][0] == lost.seq - 1
    with authority.open_central(city.net.central_dir, city.clock) as central:
        assert heartbeat.publish(central).seq == lost.seq  # a seq no node holds: no fork


def test_the_backup_keeps_the_newest_copies(tmp_path: Path) -> None:
    city = build_delegated_city(tmp_path / "city")
    copies = tmp_path / "backups"
    for _ in range(3):
        result = CliRunner().invoke(
            main, ["central", "backup", str(city.home(CITY)), str(copies), "--keep", "2"]
        )
        assert result.exit_code == 0, result.output
        city.clock.advance(1)
    kept = sorted(copies.glob("central-*.db"))
    assert len(kept) == 2
    for copy in kept:
        assert chain(copy, CITY) == chain(central_db(city), CITY)
    shutil.rmtree(copies)
