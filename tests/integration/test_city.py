"""The city simulation of ``make bench``, at a small size: it converges, and its end-state
checks are real (they pass on the city it leaves, and catch a store that was tampered with)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench.city import check
from bench.city.plan import RECONNECT, city_plan, epoch, month_for
from bench.city.simulation import simulate

pytestmark = pytest.mark.slow

TOWNS, VILLAGES, CASES = 2, 3, 8


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("city")
    plan = city_plan(TOWNS, VILLAGES, CASES)
    return root, simulate(root, plan, interval=0.5)


def test_every_node_converges_and_every_store_verifies(city: tuple[Path, dict[str, Any]]) -> None:
    _, result = city
    assert result["cases"] == TOWNS * VILLAGES * CASES
    assert result["direct"] > 0 and result["proxy"] > 0
    assert result["approved"] == result["proxy"]  # the towns decided every forwarded case
    assert result["failed_sessions"] == {}
    assert result["records_verified"] > 0
    names = [f["name"] for f in result["figures"]]
    assert any(n.startswith("convergence of 9 nodes") for n in names)
    assert any("central ingest" in n for n in names)
    ingest = result["central_ingest"]
    assert ingest["records"] > 0 and ingest["decode_rate"] > 0 and ingest["write_rate"] > 0
    floors_s = 1 / ingest["verify_rate"] + 1 / ingest["decode_rate"] + 1 / ingest["write_rate"]
    assert ingest["ceiling"] == pytest.approx(ingest["cores"] / floors_s)
    assert ingest["floors_us_per_record"] == pytest.approx(1e6 * floors_s)
    assert ingest["cpu_us_per_record"] > 0
    memory = result["memory_mb"]
    assert 0 < memory["village_shared"] < memory["village_alone"]


def test_the_end_state_check_catches_a_flipped_byte(
    city: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, _ = city
    plan = city_plan(TOWNS, VILLAGES, CASES)
    village = plan.villages[0].code
    copy = tmp_path / "copy"
    shutil.copytree(root / "central", copy / "central")
    shutil.copytree(root / village, copy / village)
    at = epoch(RECONNECT) + 3600
    assert check.verify_all(copy, [village], at)[1] == []

    conn = sqlite3.connect(copy / village / "node.db")
    conn.execute("DROP TRIGGER records_no_update")
    (arrival, envelope) = conn.execute(
        "SELECT arrival, envelope FROM records WHERE kind = 'case.intake' LIMIT 1"
    ).fetchone()
    flipped = bytearray(envelope)
    flipped[-1] ^= 0x01
    conn.execute("UPDATE records SET envelope = ? WHERE arrival = ?", (bytes(flipped), arrival))
    conn.commit()
    conn.close()
    faults = check.verify_all(copy, [village], at)[1]
    assert faults and all(f.startswith(f"{village}: ") for f in faults)


def test_the_write_floor_must_write_what_the_replay_wrote(
    city: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, result = city
    snapshot, replayed = root / "central-at-reconnect", root / "central-at-reconnect-replay"
    conn = sqlite3.connect(snapshot / "central.db")
    after = conn.execute("SELECT max(arrival) FROM records").fetchone()[0]
    conn.close()
    records = result["central_ingest"]["records"]
    assert check._write_rate(snapshot, replayed, after, [records]) > 0
    with pytest.raises(RuntimeError, match="batches of"):
        check._write_rate(snapshot, replayed, after, [records - 1])

    # A case the replay never wrote, in the store the writes start from: caught.
    other = tmp_path / "snapshot"
    shutil.copytree(snapshot, other)
    conn = sqlite3.connect(other / "central.db")
    columns = [row[1] for row in conn.execute("PRAGMA table_info(cases)")]
    row = sqlite3.connect(replayed / "central.db").execute("SELECT * FROM cases LIMIT 1").fetchone()
    stray = dict(zip(columns, row, strict=True)) | {"case_no": "330481001201-20990101-0001"}
    conn.execute(f"INSERT INTO cases VALUES ({', '.join('?' * len(columns))})", list(stray.values()))
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="left cases other than the replay did"):
        check._write_rate(other, replayed, after, [records])


def test_central_must_hold_every_case_in_its_final_state(city: tuple[Path, dict[str, Any]]) -> None:
    root, result = city
    assert check.cases_at_central(root, result["direct"], result["proxy"]) == []
    wrong = check.cases_at_central(root, result["direct"] + 1, result["proxy"])
    assert wrong and "expected" in wrong[0]


def test_the_month_is_the_same_every_run() -> None:
    plan = city_plan(TOWNS, VILLAGES, CASES)
    first = month_for(plan, plan.villages[0].code)
    assert first == month_for(plan, plan.villages[0].code)
    assert len(first.walkins) == CASES
    assert first != month_for(plan, plan.villages[1].code)
