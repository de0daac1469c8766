"""Scanned pages over real ZeroMQ with CURVE: village → town → central and a decision's
document back down; a village killed and a link cut in the middle of a transfer."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ErrorCode, TongbanError
from node.desk import Upload
from sync.link.file_link import FileLink
from sync.link.protocol import CHUNK_BYTES, FILE_CREDIT
from sync.projection.status import reported_files as status_files
from sync.record.filestore import FileStore
from tests.helpers import CITY, TOWN, VILLAGE, relay
from tests.integration.syncfaults import Child, Parent, free_port, read, stop_all, sync_cli
from tests.integration.syncnet import City, build_delegated_city, proxy_form
from tests.scanfiles import PAGES, PLAIN_PDF, pdf


def big_pdf(size: int) -> bytes:
    """A scanned PDF of about ``size`` bytes (its pages' image as a stream of noise)."""
    stream = os.urandom(size)
    image = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    return pdf(b"<< /Type /Catalog /Pages 2 0 R >>", *PAGES, image)


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_delegated_city(tmp_path)


def ok(result: object) -> None:
    assert getattr(result, "ok", False), getattr(result, "error", None)


def store(city: City, code: str) -> FileStore:
    return FileStore(city.home(code) / "files")


def database(city: City, code: str) -> Path:
    return city.home(code) / ("central.db" if code == CITY else "node.db")


def take_in_with(city: City, *pages: bytes) -> tuple[str, list[str]]:
    """A case taken in at the village with ``pages`` (PDFs, kept byte for byte)."""
    with city.desk(VILLAGE) as desk:
        form = proxy_form(desk, TOWN)
        uploads = tuple(Upload(form.materials[0], f"page{i}.pdf", page) for i, page in enumerate(pages))
        case = desk.intake(dataclasses.replace(form, uploads=uploads), actor="wangli")
    return case.case_no, [hashlib.sha256(page).hexdigest() for page in pages]


def whole(city: City, code: str, sha: str) -> bool:
    """The file is held, matches its hash and is noted held."""
    noted = read(database(city, code), "SELECT count(*) FROM files_held WHERE sha256 = ?", sha)[0][0]
    return store(city, code).check(sha) is None and noted == 1


def test_an_intakes_pages_reach_the_town_and_central_and_a_decision_comes_down(city: City) -> None:
    page = big_pdf(3 * CHUNK_BYTES)
    case_no, shas = take_in_with(city, page, PLAIN_PDF)
    with city.desk(VILLAGE) as desk:
        assert desk.sync_status().files_up == len(page) + len(PLAIN_PDF)
    with city.serving(CITY, TOWN):
        village = city.sync(VILLAGE)
        ok(village)
        assert village.summary.files_up == 2
        assert village.traffic.file_chunks == village.summary.file_bytes_sent == len(page) + len(PLAIN_PDF)
        assert all(whole(city, TOWN, sha) for sha in shas)
        assert not any(store(city, CITY).has(sha) for sha in shas)
        town = city.sync(TOWN)  # the town relays them
        ok(town)
        assert town.summary.files_up == 2 and all(whole(city, CITY, sha) for sha in shas)

        letter = big_pdf(CHUNK_BYTES + 10)
        with city.desk(TOWN) as desk:
            desk.act(case_no, "approve", {}, "shenpi", uploads=[Upload("", "决定书.pdf", letter)])
        ok(city.sync(VILLAGE))  # the village learns the town's letter's record, and the file
        letter_sha = hashlib.sha256(letter).hexdigest()
        assert whole(city, VILLAGE, letter_sha)
        # the root's copies: a town learns them from central, a village from its town
        ok(city.sync(TOWN))
        result = city.sync(VILLAGE)
        ok(result)
        assert result.summary.file_bytes_sent == 0 and result.summary.files_down == 0  # nothing twice
    at_root = {
        row[0] for row in read(database(city, VILLAGE), "SELECT sha256 FROM files_held WHERE at_root = 1")
    }
    assert set(shas) <= at_root
    with city.desk(VILLAGE) as desk:
        status = desk.sync_status()
        assert (status.files_up, status.files_down) == (0, 0)
    # the village's node.status names its files' bytes (a v4 session); central keeps them
    with city.serving(CITY, TOWN):
        ok(city.sync(VILLAGE))
        ok(city.sync(TOWN))
    opened = city.open(CITY)
    try:
        up, down, held = status_files(opened.log.db)[VILLAGE]
    finally:
        opened.close()
    assert (up, down) == (0, 0) and held == len(page) + len(PLAIN_PDF) + len(letter)


def test_a_v4_town_refuses_nothing_an_honest_village_sends(city: City) -> None:
    _, shas = take_in_with(city, PLAIN_PDF)
    with city.serving(TOWN):
        ok(city.sync(VILLAGE))
    refused = read(database(city, TOWN), "SELECT count(*) FROM link_rejections WHERE code LIKE 'E_FILE_%'")
    assert refused[0][0] == 0 and whole(city, TOWN, shas[0])


@pytest.fixture
def processes() -> Iterator[list[Parent | Child | None]]:
    running: list[Parent | Child | None] = []
    yield running
    stop_all(running)


def part_of(city: City, code: str, sha: str) -> int:
    return store(city, code).partial_offset(sha)


def wait_for_part(city: City, child: Child, sha: str, at_least: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.running:
        child.wait_events(child.events + 1, 0.2)
        if part_of(city, TOWN, sha) >= at_least:
            return part_of(city, TOWN, sha)
    raise AssertionError(f"no part of {at_least} bytes at the town; the child said {child.outcome!r}")


@pytest.mark.parametrize("cut", ["village killed", "link cut"])
def test_a_transfer_cut_in_the_middle_resumes_at_its_chunk(
    city: City, tmp_path: Path, processes: list[Parent | Child | None], cut: str
) -> None:
    page = big_pdf(32 * CHUNK_BYTES)
    _, (sha,) = take_in_with(city, page)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    town = Parent(city.home(TOWN), endpoint, tmp_path / "town.log")
    processes.append(town)
    town.start()
    # 8 Mbit/s: the page takes about two seconds, so the cut comes in its middle
    child = Child(city.home(VILLAGE), endpoint, 3.0, tmp_path / "village.log", kbit=8000)
    processes.append(child)
    wait_for_part(city, child, sha, 6 * CHUNK_BYTES)
    if cut == "village killed":
        child.kill()
    else:
        town.kill()
    child.finish(15)
    kept = part_of(city, TOWN, sha)
    assert kept % CHUNK_BYTES == 0 and 0 < kept < len(page)
    # what the parent acknowledged it kept: the cut loses at most the chunks in flight
    assert child.file_bytes - kept <= FILE_CREDIT * CHUNK_BYTES
    town.ensure()
    done, _, _, output = sync_cli(city.home(VILLAGE), endpoint)
    assert done, output
    assert f"({len(page) - kept} bytes sent)" in output  # resumed at the chunk it reached
    assert whole(city, TOWN, sha) and part_of(city, TOWN, sha) == 0
    with city.serving(CITY):  # the town passes it on: whole at every store that should hold it
        ok(city.sync(TOWN))
    assert all(whole(city, code, sha) for code in (VILLAGE, TOWN, CITY))


def test_a_parent_asks_for_no_more_than_its_budget_leaves(city: City) -> None:
    page = big_pdf(2 * CHUNK_BYTES)
    _, (big, small) = take_in_with(city, page, PLAIN_PDF)
    relay(city.home(VILLAGE), city.home(TOWN), city.clock, up=True)  # the records, not the files
    opened = city.open(TOWN)
    try:
        roomy = FileLink(opened.log, opened.files, VILLAGE, VILLAGE, lambda *_: None)
        assert {w.sha for w in roomy.wants()} == {big, small}
        tight = FileLink(opened.log, opened.files, VILLAGE, VILLAGE, lambda *_: None, budget=len(page))
        assert [w.sha for w in tight.wants()] == [small] or [w.sha for w in tight.wants()] == [big]
        full = FileLink(
            opened.log, opened.files, VILLAGE, VILLAGE, lambda *_: None, budget=len(PLAIN_PDF) - 1
        )
        assert full.wants() == []
        with pytest.raises(TongbanError) as info:
            full.admit(small, len(PLAIN_PDF))
        assert info.value.code is ErrorCode.FILE_BUDGET
    finally:
        opened.close()
