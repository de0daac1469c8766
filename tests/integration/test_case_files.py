"""Scanned pages at the window, on real stores: taken in with the record, refused with
nothing stored, a supplement's pages and a decision's letter, and the store kept tidy."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.errors import ErrorCode, InputError, RecordError, StoreError, TongbanError
from core.files import DECISION_MATERIAL, JPEG, PDF
from node import config
from node.desk import Desk, IntakeForm, Upload
from node.files import ORPHAN_AGE, PARTIAL_AGE, carry_pages
from node.store import NodeStore, verify
from sync.projection import files
from sync.record.db import transaction
from sync.record.filestore import FileStore
from tests.helpers import CITY, TOWN, VILLAGE, Network, delegate_demo_items, make_network, open_desk, relay
from tests.integration.forknet import backup
from tests.scanfiles import ACTIVE_PDF, PLAIN_PDF, jpeg, phone_photo, png_header

DAY = 86_400
GOOD_ID = "11010519491231002X"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    network = make_network(tmp_path, FixedClock(t=1_795_400_000, step=1))
    network.add_node(TOWN, "town", CITY)
    network.add_node(VILLAGE, "village", TOWN)
    delegate_demo_items(network, TOWN, [VILLAGE], valid_days=30)
    return network


def proxy_form(desk: Desk, *uploads: Upload, agent: bool = False) -> IntakeForm:
    auth = next(
        a for a in desk.items() if a.mode is not None and a.mode.value == "proxy" and a.decider == TOWN
    )
    materials = tuple(m.code for m in auth.item.materials if m.required)
    return IntakeForm(
        item=auth.item.code,
        name="王秀英",
        doc_type="resident_id",
        doc_no=GOOD_ID,
        phone="13800138000",
        materials=materials + (("agent_authorization",) if agent else ()),
        agent=("李强", "resident_id", "110105194912310037", "13900139000") if agent else None,
        uploads=uploads,
    )


def first_material(desk: Desk) -> str:
    return proxy_form(desk).materials[0]


def store_of(net: Network, code: str) -> FileStore:
    return FileStore(config.load(net.node_dir(code)).database_path.parent / "files")


def held_on_disk(net: Network, code: str) -> set[str]:
    return set(store_of(net, code).shas())


def counts(desk: Desk) -> tuple[int, int]:
    return desk.store.log.count(), desk.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0]


def test_a_proxy_case_takes_in_a_photo_and_a_pdf_cleaned_and_signed(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        material = first_material(desk)
        case = desk.intake(
            proxy_form(
                desk, Upload(material, "IMG_0001.jpg", phone_photo()), Upload(material, "表.pdf", PLAIN_PDF)
            ),
            actor="wangli",
        )
        intake = desk.intake_of(case.case_no)
        assert intake is not None
        photo, pdf = intake.files
        assert (photo.type, photo.material, pdf.type, pdf.size) == (JPEG, material, PDF, len(PLAIN_PDF))
        path, ref, active = desk.file(case.case_no, photo.hex)
        data = path.read_bytes()
        assert ref == photo and not active and hashlib.sha256(data).digest() == photo.sha256
        assert b"PhoneMaker" not in data  # the cleaned photo is what is kept and signed
        assert desk.file(case.case_no, pdf.hex)[0].read_bytes() == PLAIN_PDF
        shown = desk.files_of(case.case_no)
        assert [(s.ref, s.held, s.event, s.page) for s in shown] == [
            (photo, True, "intake", 0),
            (pdf, True, "intake", 1),
        ]
        assert files.held_bytes(desk.db) == photo.size + pdf.size
        with pytest.raises(InputError) as scope:
            desk.file(case.case_no, hashlib.sha256(b"other").hexdigest())
        assert scope.value.code is ErrorCode.FILE_SCOPE
    assert held_on_disk(net, VILLAGE) == {photo.hex, pdf.hex}
    report = verify(config.load(net.node_dir(VILLAGE)).database_path, net.clock)
    assert report.ok, report.faults


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (Upload("", "bomb.png", png_header(30_000, 30_000)), ErrorCode.FILE_BOMB),
        (Upload("", "photo.jpg", PLAIN_PDF), ErrorCode.FILE_TYPE_MISMATCH),
        (Upload("", "half.jpg", jpeg()[:2000]), ErrorCode.FILE_DAMAGED),
        (Upload("", "notes.txt", "备注".encode()), ErrorCode.FILE_TYPE),
        (Upload("not_a_material", "page.jpg", jpeg()), ErrorCode.FIELD_INVALID),
    ],
)
def test_a_bad_page_refuses_the_intake_and_stores_nothing(
    net: Network, upload: Upload, code: ErrorCode
) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        good = Upload(first_material(desk), "good.jpg", jpeg())
        bad = upload if upload.material else Upload(first_material(desk), upload.name, upload.data)
        before = counts(desk)
        with pytest.raises(TongbanError) as err:
            desk.intake(proxy_form(desk, good, bad), actor="wangli")
        assert err.value.code is code
        assert counts(desk) == before and files.held_bytes(desk.db) == 0
    assert held_on_disk(net, VILLAGE) == set()


def test_a_page_past_the_budget_is_refused_and_the_banner_warns_before(net: Network) -> None:
    home = net.node_dir(VILLAGE)
    with (home / config.CONFIG_FILE).open("a", encoding="utf-8") as toml:
        toml.write("\n[files]\nbudget_mb = 1\n")
    big = jpeg((1500, 1500), quality=95)
    with open_desk(home, net.clock) as desk:
        assert all(b.code != ErrorCode.FILE_BUDGET.value for b in desk.banners())
        material = first_material(desk)
        desk.intake(proxy_form(desk, Upload(material, "a.jpg", big)), actor="wangli")
        used, budget = desk.case_files.used()
        assert 0 < used < budget
        with transaction(desk.db):  # the store fills up to 95 % (another case's pages)
            files.note_held(desk.db, "0" * 64, int(budget * 0.95) - used, PDF, net.clock.now())
        assert [b.level for b in desk.banners() if b.code == ErrorCode.FILE_BUDGET.value] == ["warn"]
        before = counts(desk)
        with pytest.raises(StoreError) as err:
            desk.intake(proxy_form(desk, Upload(material, "b.jpg", jpeg((1400, 1400)))), actor="wangli")
        assert err.value.code is ErrorCode.FILE_BUDGET and "MB" in err.value.text("zh")
        assert counts(desk) == before
        with transaction(desk.db):  # files that came by sync filled it
            files.note_held(desk.db, "1" * 64, budget, PDF, net.clock.now())
        assert [b.level for b in desk.banners() if b.code == ErrorCode.FILE_BUDGET.value] == ["error"]
        desk.intake(proxy_form(desk), actor="wangli")  # a case without pages is taken in still
    assert len(held_on_disk(net, VILLAGE)) == 1


def test_a_refused_record_keeps_none_of_the_pages_it_brought(net: Network, tmp_path: Path) -> None:
    """A store restored from an older copy refuses to sign (E_CHAIN_BEHIND) after the pages
    were put: they are removed again, the page another case still lists is kept."""
    home = net.node_dir(VILLAGE)
    database = config.load(home).database_path
    copy = tmp_path / "copy.db"
    with open_desk(home, net.clock) as desk:
        shared = Upload(first_material(desk), "id.jpg", jpeg())
        backup(database, copy)
        desk.intake(proxy_form(desk, shared), actor="wangli")
    kept = held_on_disk(net, VILLAGE)
    backup(copy, database)  # the case above is not in the copy: its page is an orphan now
    with open_desk(home, net.clock) as desk:
        new = Upload(first_material(desk), "new.jpg", jpeg((300, 200)))
        with pytest.raises(RecordError) as err:
            desk.intake(proxy_form(desk, new, shared), actor="wangli")
        assert err.value.code is ErrorCode.CHAIN_BEHIND
    assert held_on_disk(net, VILLAGE) == kept  # the new page went, the one already held stayed


def test_the_town_decides_with_a_letter_and_the_village_supplies_pages(net: Network) -> None:
    village, town = net.node_dir(VILLAGE), net.node_dir(TOWN)
    with open_desk(village, net.clock) as desk:
        case = desk.intake(proxy_form(desk, Upload(first_material(desk), "id.jpg", jpeg())), actor="wangli")
        number = case.case_no
    relay(village, town, net.clock, up=True)
    with open_desk(town, net.clock) as desk:
        shown = desk.files_of(number)
        assert [(s.event, s.held) for s in shown] == [("intake", False)]  # the record came, the file not yet
        with pytest.raises(StoreError) as missing:
            desk.file(number, shown[0].ref.hex)
        assert missing.value.code is ErrorCode.FILE_MISSING
        with pytest.raises(InputError) as wrong:
            desk.act(
                number,
                "request_supplement",
                {"missing": "户口簿"},
                "shenpi",
                uploads=[Upload("", "x.pdf", PLAIN_PDF)],
            )
        assert wrong.value.code is ErrorCode.FIELD_INVALID
        desk.act(number, "request_supplement", {"missing": "户口簿"}, "shenpi")
    relay(town, village, net.clock)
    with open_desk(village, net.clock) as desk:
        material = first_material(desk)
        desk.act(number, "supply", {}, "wangli", uploads=[Upload(material, "p2.jpg", jpeg((500, 400)))])
        assert [s.event for s in desk.files_of(number)] == ["intake", "supply"]
    relay(village, town, net.clock, up=True)
    with open_desk(town, net.clock) as desk:
        desk.act(number, "approve", {}, "shenpi", uploads=[Upload("", "决定书.pdf", ACTIVE_PDF)])
        letter = desk.files_of(number)[-1]
        assert (letter.event, letter.ref.material, letter.held) == ("approve", DECISION_MATERIAL, True)
        assert desk.file(number, letter.ref.hex)[2] is True  # active: only ever a download
    relay(town, village, net.clock)
    with open_desk(village, net.clock) as desk:
        assert [(s.event, s.held) for s in desk.files_of(number)] == [
            ("intake", True),
            ("supply", True),
            ("approve", False),
        ]
    # the village lacks the town's letter (sync brings it): a warning, not a fault
    report = verify(config.load(village).database_path, net.clock)
    assert report.ok, report.faults
    assert any(w.startswith("E_FILE_MISSING: 1 file") for w in report.warnings)
    # the town lacks the village's pages (on their way): warnings; its own letter is whole
    report = verify(config.load(town).database_path, net.clock)
    assert report.ok, report.faults
    assert any(w.startswith("E_FILE_MISSING: 2 file") for w in report.warnings)


def test_verify_reports_a_damaged_and_a_missing_page(net: Network) -> None:
    home = net.node_dir(VILLAGE)
    with open_desk(home, net.clock) as desk:
        material = first_material(desk)
        case = desk.intake(
            proxy_form(desk, Upload(material, "a.jpg", jpeg()), Upload(material, "b.pdf", PLAIN_PDF)),
            actor="wangli",
        )
        photo, pdf = desk.files_of(case.case_no)
    store = store_of(net, VILLAGE)
    data = bytearray(store.read(photo.ref.hex))
    data[len(data) // 2] ^= 0xFF
    store.path(photo.ref.hex).write_bytes(bytes(data))
    store.remove(pdf.ref.hex)
    report = verify(config.load(home).database_path, net.clock)
    assert not report.ok
    assert sorted(f.split(":")[0] for f in report.faults) == ["E_FILE_HASH", "E_FILE_MISSING"]
    assert any(photo.ref.hex in f for f in report.faults) and any(pdf.ref.hex in f for f in report.faults)


def test_orphans_and_stale_transfers_are_swept_after_their_time(net: Network) -> None:
    home = net.node_dir(VILLAGE)
    with open_desk(home, net.clock) as desk:
        case = desk.intake(proxy_form(desk, Upload(first_material(desk), "a.jpg", jpeg())), actor="wangli")
        listed = desk.files_of(case.case_no)[0].ref.hex
        orphan = desk.store.files.put(b"%PDF-1.4 no record lists this")
        with transaction(desk.db):
            files.note_held(desk.db, orphan, 29, PDF, net.clock.now())
        desk.store.files.append("a" * 64, 0, b"half a transfer")
        part = desk.store.files.root / "partial" / ("a" * 64 + ".part")
        os.utime(part, (net.clock.now(), net.clock.now()))
        assert desk.housekeep() == (0, 0)  # all of it is too young
        net.clock.advance(ORPHAN_AGE + 1)
        assert desk.housekeep() == (1, 0)
        assert not desk.store.files.has(orphan) and not files.is_held(desk.db, orphan)
        assert desk.store.files.has(listed) and desk.store.files.partial_offset("a" * 64) == 15
        os.utime(part, (net.clock.now() - PARTIAL_AGE, net.clock.now() - PARTIAL_AGE))
        assert desk.housekeep() == (1, 0)
        assert desk.store.files.partial_offset("a" * 64) == 0


def test_a_village_lets_a_file_go_once_central_holds_it_and_its_case_closed_long_ago(net: Network) -> None:
    village, town = net.node_dir(VILLAGE), net.node_dir(TOWN)
    with open_desk(village, net.clock) as desk:
        case = desk.intake(proxy_form(desk, Upload(first_material(desk), "a.jpg", jpeg())), actor="wangli")
        number = case.case_no
        sha = desk.files_of(number)[0].ref.hex
    relay(village, town, net.clock, up=True)
    with open_desk(town, net.clock) as desk:
        desk.act(number, "approve", {}, "shenpi")
    relay(town, village, net.clock)
    with open_desk(village, net.clock) as desk:
        desk.act(number, "deliver", {"delivery": "pickup"}, "wangli")
        net.clock.advance(40 * DAY)
        assert desk.case_files.retain() == 0  # central does not hold it yet
        with transaction(desk.db):
            files.mark_at_root(desk.db, [sha])
        net.clock.advance(-15 * DAY)  # closed 25 days ago: kept
        assert desk.case_files.retain() == 0 and desk.store.files.has(sha)
        net.clock.advance(15 * DAY)
        assert desk.case_files.retain() == 1
        assert not desk.store.files.has(sha)
        assert [s.held for s in desk.files_of(number)] == [False]
        assert files.missing(desk.db) == []  # let go on purpose: not asked for again
    report = verify(config.load(village).database_path, net.clock)
    assert report.ok, report.faults
    with open_desk(town, net.clock) as desk:
        assert desk.case_files.retain() == 0  # a town keeps its files


def test_tongban_verify_names_a_damaged_page_and_fails(net: Network) -> None:
    from click.testing import CliRunner

    from tongban.cli import main

    home = net.node_dir(VILLAGE)
    with open_desk(home, net.clock) as desk:
        case = desk.intake(proxy_form(desk, Upload(first_material(desk), "a.jpg", jpeg())), actor="wangli")
        sha = desk.files_of(case.case_no)[0].ref.hex
    runner = CliRunner()
    assert runner.invoke(main, ["verify", str(home)]).exit_code == 0
    path = store_of(net, VILLAGE).path(sha)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    result = runner.invoke(main, ["verify", str(home)])
    assert result.exit_code == 1, result.output
    assert f"E_FILE_HASH: file {sha}" in result.output


def test_a_rotated_store_takes_the_pages_of_the_directory_moved_aside(net: Network, tmp_path: Path) -> None:
    """The new store of a key rotation holds the village's records but none of its pages:
    ``carry_pages`` brings each one over whole, noted held; a damaged one stays behind."""
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        material = first_material(desk)
        pages = (Upload(material, "a.jpg", jpeg((400, 300))), Upload(material, "b.jpg", jpeg((300, 400))))
        case = desk.intake(proxy_form(desk, *pages), actor="wangli")
        intake = desk.intake_of(case.case_no)
        assert intake is not None
        good, bad = (ref.hex for ref in intake.files)
    database = config.load(net.node_dir(VILLAGE)).database_path
    new_home = tmp_path / "rotated"
    new_home.mkdir()
    backup(database, new_home / "node.db")  # the records came back with the new enrollment
    old_files = store_of(net, VILLAGE)
    data = bytearray(old_files.read(bad))
    data[100] ^= 0xFF
    old_files.path(bad).write_bytes(bytes(data))
    with (
        NodeStore.open(database, net.clock) as source,
        NodeStore.open(new_home / "node.db", net.clock) as target,
    ):
        with transaction(target.db):
            for sha in files.held(target.db):
                files.note_removed(target.db, sha)
        assert carry_pages(source, target, net.clock.now()) == 1
        assert files.held(target.db) == [good]
        assert target.files.check(good) is None and not target.files.has(bad)
        assert carry_pages(source, target, net.clock.now()) == 0  # again: nothing to do
