"""The file_refs projection on a real node store: built with each record, rebuilt, verified."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from core.cases import CaseEvent, Event
from core.clock import FixedClock
from core.files import DECISION_MATERIAL, PDF, FileRef
from node import config
from node import store as node_store
from node.desk import IntakeForm
from sync.projection import files
from sync.record import kinds
from sync.record.db import transaction
from tests.helpers import CITY, TOWN, Network, delegate_demo_items, make_network, open_desk

GOOD_ID = "11010519491231002X"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    network = make_network(tmp_path, FixedClock(t=1_795_400_000, step=1))
    network.add_node(TOWN, "town", CITY)
    delegate_demo_items(network, TOWN, [], valid_days=10)
    return network


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def blob(text: str, size: int) -> bytes:
    return (text.encode() * size)[:size]


def test_file_refs_follow_the_records_and_survive_a_rebuild_and_verify(net: Network) -> None:
    home = net.node_dir(TOWN)
    with open_desk(home, net.clock) as desk:
        auth = next(a for a in desk.items() if a.mode is not None and a.decider == TOWN)
        materials = tuple(m.code for m in auth.item.materials if m.required)
        case = desk.intake(
            IntakeForm(auth.item.code, "王秀英", "resident_id", GOOD_ID, "13800138000", materials),
            actor="wangli",
        )
        intake = desk.intake_of(case.case_no)
        assert intake is not None
        blobs = [blob("id front", 2048), blob("id back", 1024), blob("letter", 4096)]
        page1 = FileRef(hashlib.sha256(blobs[0]).digest(), 2048, "image/jpeg", materials[0])
        page2 = FileRef(hashlib.sha256(blobs[1]).digest(), 1024, "image/png", materials[0])
        letter = FileRef(hashlib.sha256(blobs[2]).digest(), 4096, PDF, DECISION_MATERIAL)
        number = case.case_no[:-4] + "0999"
        with transaction(desk.db):
            desk.store.log.append_local(
                desk.keys, TOWN, kinds.CASE_INTAKE,
                dataclasses.replace(intake, case=number, files=(page1, page2)).to_body(), actor="wangli",
            )  # fmt: skip
            body = {"case": number} | CaseEvent(Event.APPROVE, net.clock.now(), files=(letter,)).to_body()
            desk.store.log.append_local(desk.keys, TOWN, kinds.CASE_EVENT, body, actor="wangli")
        rows = files.refs_of_case(desk.db, number)
        assert [(r.ref, r.event, r.page) for r in rows] == [
            (page1, "intake", 0),
            (page2, "intake", 1),
            (letter, "approve", 0),
        ]
        assert files.refs_of_case(desk.db, case.case_no) == []
        assert files.referenced(desk.db, page1.hex) and not files.referenced(desk.db, sha("x").hex())
        assert files.case_bytes(desk.db, number) == {page1.hex: 2048, page2.hex: 1024, letter.hex: 4096}
        assert files.missing(desk.db) == sorted([(page1.hex, 2048), (page2.hex, 1024), (letter.hex, 4096)])
        with transaction(desk.db):
            files.note_held(desk.db, page1.hex, 2048, "image/jpeg", net.clock.now())
            files.note_held(desk.db, sha("orphan").hex(), 10, PDF, net.clock.now())
        assert page1.hex not in {s for s, _ in files.missing(desk.db)}
        assert files.held_bytes(desk.db) == 2058
        assert files.orphans(desk.db, files.held(desk.db)) == [sha("orphan").hex()]
        with transaction(desk.db):
            files.mark_at_root(desk.db, [page1.hex])
            files.note_removed(desk.db, sha("orphan").hex())
        assert files.releasable(desk.db) == [(page1.hex, [number])]
        with transaction(desk.db):
            files.note_released(desk.db, page1.hex, net.clock.now())
        assert page1.hex not in {s for s, _ in files.should_hold(desk.db)}
        assert page1.hex not in {s for s, _ in files.missing(desk.db)}
        before = desk.db.conn.execute("SELECT * FROM file_refs ORDER BY record_id, page").fetchall()
        desk.store.log.rebuild()
        assert desk.db.conn.execute("SELECT * FROM file_refs ORDER BY record_id, page").fetchall() == before
        assert files.held_bytes(desk.db) == 0  # the bookkeeping is not a projection: kept
        assert files.at_root(desk.db, page1.hex)
    database = config.load(home).database_path
    report = node_store.verify(database, net.clock)
    # the files this node listed must be in its store (the one let go by retention aside)
    assert sorted(report.faults) == sorted(
        f"E_FILE_MISSING: file {r.hex} (a case of {TOWN}) is not in the file store" for r in (page2, letter)
    )
    with open_desk(home, net.clock) as desk:
        for data in blobs[1:]:
            desk.store.files.put(data)
    report = node_store.verify(database, net.clock)
    assert report.ok, report.faults


def test_a_nodes_and_centrals_file_store_lie_beside_their_databases(net: Network) -> None:
    from central import config as central_config
    from central.store import CentralStore

    database = central_config.load(net.central_dir).database_path
    with CentralStore.open(database, net.clock) as central:
        assert central.files.root == database.parent / "files"
        sha = central.files.put(b"%PDF-1.4 a page")
        assert (database.parent / "files" / sha[:2] / sha).is_file()
    with open_desk(net.node_dir(TOWN), net.clock) as desk:
        assert desk.store.files.root == config.load(net.node_dir(TOWN)).database_path.parent / "files"
