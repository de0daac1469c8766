"""The ``tongban`` command as an operator runs it: real processes, real files."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import CITY, TOWN, VILLAGE, make_network

TONGBAN = [sys.executable, "-m", "tongban"]


def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*TONGBAN, *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_operator_flow(tmp_path: Path) -> None:
    central, town, village = tmp_path / "central", tmp_path / "town", tmp_path / "village"
    out = run("central", "init", central, "--code", CITY, "--name", "海宁市").stdout
    fingerprint = out.split("fingerprint: ")[1].split()[0]
    run(
        "central", "publish-catalog", central, Path(__file__).parents[2] / "central" / "demo" / "catalog.yaml"
    )
    run("node", "init", town, "--tier", "town", "--code", TOWN, "--name", "斜桥镇", "--parent-code", CITY)
    token = run("central", "enroll-token", central, TOWN).stdout.splitlines()[0]
    run("node", "request", town, "--token", token)
    run("central", "enroll", central, town / "enroll-request.cbor")
    run("node", "enroll", town, central / "bundles" / f"{TOWN}.bundle", "--anchor", fingerprint)
    run(
        "node",
        "init",
        village,
        "--tier",
        "village",
        "--code",
        VILLAGE,
        "--name",
        "某村",
        "--parent-code",
        TOWN,
        "--token",
        run("central", "enroll-token", central, VILLAGE, "--valid-hours", "2").stdout.splitlines()[0],
    )
    run("central", "enroll", central, village / "enroll-request.cbor", "--out", tmp_path / "v.bundle")
    run("node", "enroll", village, tmp_path / "v.bundle")
    shown = run("node", "show", village).stdout
    assert "enrolled:   yes" in shown and "catalog:    v1" in shown
    listing = run("log", central).stdout
    assert "net.genesis" in listing and "catalog.release" in listing and f"certifies {VILLAGE}" in listing
    for home in (central, town, village):
        assert "OK:" in run("verify", home).stdout
    revoked = run("central", "revoke-node", central, VILLAGE, "--reason", "测试吊销")
    assert "revoked" in revoked.stdout


def test_refusals_print_code_in_both_languages(tmp_path: Path) -> None:
    result = run(
        "node",
        "init",
        tmp_path / "n",
        "--tier",
        "town",
        "--code",
        "99",
        "--name",
        "x",
        "--parent-code",
        CITY,
        ok=False,
    )
    assert result.returncode == 3
    assert (
        "E_ADMIN_CODE:" in result.stderr and "行政区划代码" in result.stderr and "not valid" in result.stderr
    )


def test_verify_detects_tampering(tmp_path: Path) -> None:
    net = make_network(tmp_path / "net")
    home = net.add_node(TOWN, "town", CITY)
    assert run("verify", home).returncode == 0
    with sqlite3.connect(home / "node.db") as conn:
        conn.execute("DROP TRIGGER records_no_update")
        conn.execute("UPDATE records SET actor = 'sys:forged' WHERE seq = 1 AND origin = ?", (TOWN,))
    result = run("verify", home, ok=False)
    assert result.returncode == 1 and "FAULT" in result.stdout


def test_verify_of_a_missing_store(tmp_path: Path) -> None:
    net = make_network(tmp_path / "net")
    (net.central_dir / "central.db").unlink()
    result = run("verify", net.central_dir, ok=False)
    assert result.returncode == 3 and "E_STORE_MISSING" in result.stderr


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = make_network(tmp_path_factory.mktemp("pristine"))
    net.add_node(TOWN, "town", CITY)
    return net.node_dir(TOWN)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_in_a_stored_record_is_detected(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    home = tmp_path_factory.mktemp("flip") / "node"
    shutil.copytree(pristine, home)
    with sqlite3.connect(home / "node.db") as conn:
        rows = conn.execute("SELECT arrival, envelope FROM records").fetchall()
        arrival, envelope = data.draw(st.sampled_from(rows))
        index = data.draw(st.integers(0, len(envelope) - 1))
        bit = data.draw(st.integers(0, 7))
        flipped = bytearray(envelope)
        flipped[index] ^= 1 << bit
        conn.execute("DROP TRIGGER records_no_update")
        conn.execute("UPDATE records SET envelope = ? WHERE arrival = ?", (bytes(flipped), arrival))
    from core.clock import FixedClock
    from node.store import MIGRATION_SETS
    from sync.projection import standard
    from sync.record.inspect import verify_store

    report = verify_store(home / "node.db", MIGRATION_SETS, FixedClock(), standard())
    assert not report.ok, f"flip of bit {bit} at byte {index} of record {arrival} went unnoticed"


@pytest.mark.parametrize(
    "tamper",
    [
        "DELETE FROM records WHERE arrival = (SELECT max(arrival) FROM records)",
        "DELETE FROM meta WHERE key = 'anchor_id'",
        "UPDATE meta SET value = CAST('cn-999999' AS BLOB) WHERE key = 'net'",
    ],
)
def test_verify_detects_deleted_rows_and_edited_anchor(tmp_path: Path, tamper: str) -> None:
    net = make_network(tmp_path / "net")
    home = net.add_node(TOWN, "town", CITY)
    with sqlite3.connect(home / "node.db") as conn:
        conn.execute("DROP TRIGGER records_no_delete")
        conn.execute(tamper)
    result = run("verify", home, ok=False)
    assert result.returncode == 1 and "FAULT" in result.stdout


def test_verify_reads_one_snapshot_while_the_node_takes_a_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live node is verified while a sync appends to it: the check must see one state,
    not the log before the sync and the projections after it."""
    from core.clock import FixedClock
    from node.store import MIGRATION_SETS
    from sync.projection import standard
    from sync.record import inspect
    from tests.helpers import delegate_demo_items, open_desk, relay
    from tests.integration.test_desk import form, proxy_item

    net = make_network(tmp_path / "net", FixedClock(t=1_795_400_000, step=1))
    town = net.add_node(TOWN, "town", CITY)
    village = net.add_node(VILLAGE, "village", TOWN)
    delegate_demo_items(net, TOWN, [VILLAGE], valid_days=10)
    with open_desk(village, net.clock) as desk:
        item, materials = proxy_item(desk)
        desk.intake(form(item, materials), actor="wangli")
    check = inspect._check_bookkeeping
    synced = []

    def sync_in_between(*args: object) -> None:
        check(*args)  # type: ignore[arg-type]
        synced.append(relay(village, town, net.clock, up=True))

    monkeypatch.setattr(inspect, "_check_bookkeeping", sync_in_between)
    report = inspect.verify_store(town / "node.db", MIGRATION_SETS, FixedClock(), standard())
    assert synced and synced[0] > 0
    assert report.ok, report.faults
