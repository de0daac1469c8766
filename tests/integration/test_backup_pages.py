"""Central's backup carries the scanned pages with its database, and a restore puts them
back checked by their hashes.

Central receives a village's pages as the sync does it (each kept in its file store and
noted as held). ``tongban central backup`` copies the pages its copy says central holds
into ``DEST/files``, once each; ``tongban central restore`` then puts back a page central
lost from the copy, keeps one it still holds whole, and gives up one neither holds whole —
central no longer counts it as held: it is a page not received yet, not a damaged one.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from central import config as central_config
from central.store import CentralStore
from core.errors import ErrorCode
from node.desk import Upload
from sync.projection import files
from sync.record.db import transaction
from sync.record.filestore import FileStore, beside
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.forknet import ok
from tests.integration.syncnet import City, build_delegated_city, proxy_form
from tests.integration.webnode import free_port
from tests.scanfiles import jpeg, png
from tongban.cli import main


def central_store(city: City) -> CentralStore:
    return CentralStore.open(central_config.load(city.home(CITY)).database_path, city.clock)


def village_pages(city: City) -> list[str]:
    """A case taken in at the village with three pages, its records synced up to central;
    the pages' hashes, in page order."""
    with city.desk(VILLAGE) as desk:
        form = proxy_form(desk, TOWN)
        material = form.materials[0]
        uploads = (
            Upload(material, "身份证.jpg", jpeg((400, 300))),
            Upload(material, "户口簿.jpg", jpeg((300, 400))),
            Upload(material, "证明.png", png()),
        )
        case = desk.intake(replace(form, uploads=uploads), actor="wangli")
        intake = desk.intake_of(case.case_no)
        assert intake is not None
        shas = [ref.hex for ref in intake.files]
    with city.serving(CITY, TOWN):
        ok(city.sync(VILLAGE))
        ok(city.sync(TOWN))
    return shas


def central_receives(city: City, shas: list[str]) -> None:
    """What the sync does with a page that arrives at central: kept, and noted as held."""
    village = beside(city.home(VILLAGE) / "node.db")
    with central_store(city) as store:
        for sha in shas:
            data = village.read(sha)
            assert store.files.put(data) == sha
            with transaction(store.db):
                files.note_held(store.db, sha, len(data), "image/jpeg", city.clock.now())


def backup(city: City, dest: Path, *args: str) -> str:
    made = CliRunner().invoke(main, ["central", "backup", str(city.home(CITY)), str(dest), *args])
    assert made.exit_code == 0, made.output
    return made.output


def restore(city: City, copy: Path) -> str:
    """``tongban central restore`` in its own process, finished once the town has synced;
    its output."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    command = ["central", "restore", str(copy), str(city.home(CITY)), "--listen", endpoint, "--wait", "120"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tongban", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "serving the nodes at" in line:
                break
        else:
            raise AssertionError(f"the restore did not start (exit {proc.wait()}): {''.join(seen)}")
        city.endpoints[CITY] = endpoint
        ok(city.sync(TOWN))
        seen.append(proc.stdout.read())
        assert proc.wait(60) == 0, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return "".join(seen)


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_backup_carries_the_pages_and_the_restore_checks_them(tmp_path: Path) -> None:
    city = build_delegated_city(tmp_path / "city")
    _, lost_at_central, damaged_everywhere = shas = village_pages(city)
    central_receives(city, shas)
    dest = tmp_path / "backups"

    output = backup(city, dest, "--keep", "2")
    assert "with 3 scanned page(s) (3 new)" in output, output
    saved = FileStore(dest / "files")
    assert sorted(saved.shas()) == sorted(shas)
    for sha in shas:
        assert hashlib.sha256(saved.read(sha)).hexdigest() == sha
    city.clock.advance(1)
    assert "with 3 scanned page(s) (0 new)" in backup(city, dest, "--keep", "2")  # each copied once
    copy = sorted(dest.glob("central-*.db"))[-1]

    # Central's disk loses one page and damages another; the backup's copy of that one is
    # damaged too.
    central_files = beside(city.home(CITY) / "central.db")
    central_files.remove(lost_at_central)
    damage(central_files.path(damaged_everywhere))
    damage(saved.path(damaged_everywhere))

    output = restore(city, copy)
    assert "3 page(s) held" not in output
    assert "2 scanned page(s) held, 1 of them from the copy's files/" in output, output
    assert f"{ErrorCode.FILE_MISSING.value}: page {damaged_everywhere} is whole in neither" in output
    assert "signs on from" in output
    # The damaged page was no longer counted as held, so central asked for it again: the
    # town's session with the restored central brought it back whole.
    for sha in shas:
        assert central_files.check(sha) is None
    with central_store(city) as store:
        assert set(files.held(store.db)) == set(shas)
        faults, warnings = files.check_files(store.db, store.files, CITY)
    assert faults == [] and warnings == []
    city.verify_all()


def test_pages_no_kept_copy_lists_leave_the_backup_with_the_copies(tmp_path: Path) -> None:
    city = build_delegated_city(tmp_path / "city")
    first, *rest = shas = village_pages(city)
    central_receives(city, shas)
    dest = tmp_path / "backups"
    backup(city, dest, "--keep", "1")
    with central_store(city) as store, transaction(store.db):
        files.note_removed(store.db, first)  # central lets a page go
    city.clock.advance(1)
    output = backup(city, dest, "--keep", "1")
    assert "with 2 scanned page(s) (0 new)" in output, output
    assert sorted(FileStore(dest / "files").shas()) == sorted(rest)


def test_a_page_central_lacks_is_named_and_the_copy_still_made(tmp_path: Path) -> None:
    city = build_delegated_city(tmp_path / "city")
    shas = village_pages(city)
    central_receives(city, shas)
    beside(city.home(CITY) / "central.db").remove(shas[1])
    result = CliRunner().invoke(main, ["central", "backup", str(city.home(CITY)), str(tmp_path / "backups")])
    assert result.exit_code == 0, result.output
    assert "with 2 scanned page(s) (2 new)" in result.output
    assert f"{ErrorCode.FILE_MISSING.value}: page {shas[1]} is missing or damaged" in result.stderr
    assert len(list((tmp_path / "backups").glob("central-*.db"))) == 1
