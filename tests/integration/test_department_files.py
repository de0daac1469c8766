"""Scanned pages at a department's back office, over a real RabbitMQ: a window's scans reach
the department desk in chunks and are shown there with safe headers to its clerks only; a
decision letter signed on the desk reaches central's file store whole; what does not belong
is refused with its code and changes nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from central import decisions, department_files
from central.department.contract import MAX_CHUNK, FileAnswer, encode_chunk
from central.department.desk import DepartmentDesk
from central.department.entrypoints import CentralClient
from central.department.files import Transfers
from central.department.store import DepartmentStore
from central.department_store import pending
from central.store import CentralStore
from core.errors import ErrorCode, TongbanError, error
from core.files import DECISION_MATERIAL
from node.desk import Upload
from sync.projection import files
from tests.helpers import CITY, VILLAGE, wait_for
from tests.integration.backoffice import GA, PASSWORD, Backoffice, build_backoffice, running
from tests.integration.test_run import answers
from tests.integration.webnode import free_port
from tests.scanfiles import PAGES, PLAIN_PDF, jpeg, pdf, png
from tongban.rabbitmq import Broker

pytestmark = pytest.mark.slow


@pytest.fixture
def office(tmp_path: Path, broker: Broker) -> Backoffice:
    return build_backoffice(tmp_path, broker)


def department_holds(office: Backoffice) -> set[str]:
    with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
        return {sha for sha in store.files.shas() if files.is_held(store.db, sha)}


def central_state(office: Backoffice) -> tuple[set[str], set[str], list[str]]:
    """Central's files: held whole, partial copies, the bookkeeping's list."""
    with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as store:
        partial = {sha for sha, _ in store.files.partials()}
        return set(store.files.shas()), partial, files.held(store.db)


def first_material(office: Backoffice) -> str:
    with office.city.desk(VILLAGE) as desk:
        auth = next(a for a in desk.items() if a.item.code == "GA-0001")
        return next(m.code for m in auth.item.materials if m.required)


def test_scans_reach_the_department_desk_and_its_decision_letter_reaches_central(
    office: Backoffice, page: Page
) -> None:
    material = first_material(office)
    photo = jpeg((640, 480))
    case_no = office.take_in(
        uploads=(Upload(material, "户口页.jpg", photo), Upload(material, "证明.pdf", PLAIN_PDF))
    )
    office.sync_up()
    web = f"127.0.0.1:{free_port()}"
    url = f"http://{web}"
    office.start("central")
    office.start("department")
    office.start("desk", web)
    try:
        office.wait_ready("central")
        office.wait_at_department(case_no)
        with DepartmentDesk.open(office.department_dir, office.city.clock) as desk:
            assert len(desk.case(case_no).files) == 2
        carried = sorted(central_state(office)[0])  # the sync links carried both scans up to central
        assert len(carried) == 2
        wait_for(lambda: department_holds(office) >= set(carried), "the scans at the department", 30)

        wait_for(lambda: answers(url + "/login"), "the department desk", 60, 0.3)
        # a file is for the department's logged-in clerks only
        anonymous = page.request.get(f"{url}/cases/{case_no}/files/{carried[0]}")
        assert anonymous.status == 403 and "E_FILE_FORBIDDEN" in anonymous.text()

        page.goto(url + "/")
        page.fill("input[name=user]", "huzheng")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        page.goto(f"{url}/cases/{case_no}")
        pages = page.locator(f"#pages-{material}")
        thumb = pages.locator("img")
        expect(thumb).to_be_visible()
        thumb.evaluate("i => i.decode()")  # loaded (a broken image rejects)
        assert thumb.evaluate("i => i.naturalWidth") == 240  # a thumbnail, not the page
        expect(pages.locator("a.pdf")).to_contain_text("仅下载")
        expect(page.locator("#files-arriving")).to_have_count(0)

        image_href = pages.locator("a.image").get_attribute("href")
        image = page.request.get(url + str(image_href))
        assert image.status == 200 and image.headers["content-type"] == "image/jpeg"
        assert hashlib.sha256(image.body()).hexdigest() in carried
        pdf_href = pages.locator("a.pdf").get_attribute("href")
        pdf = page.request.get(url + str(pdf_href))
        assert pdf.status == 200 and pdf.body() == PLAIN_PDF
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].startswith("attachment;")
        for answer in (image, pdf):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert "default-src 'self'" in answer.headers["content-security-policy"]
            assert answer.headers["cache-control"].startswith("private")
        other = page.request.get(f"{url}/cases/{case_no}/files/{'0' * 64}")
        assert other.status == 400 and "E_FILE_SCOPE" in other.text()

        # the decision with its scanned letter
        letter = png((600, 800))
        page.fill("#decide-approve input[name=reason]", "材料齐全，准予登记")
        page.set_input_files(
            "#decide-approve input[name=letter]",
            files=[{"name": "决定书.png", "mimeType": "image/png", "buffer": letter}],
        )
        page.click("#decide-approve button")
        expect(page.locator("#state")).to_have_text("办结（准予）")
        expect(page.locator("#pages-decision img")).to_be_visible()
        page.click("#lang")
        expect(page.locator(f"#pages-{material} a.pdf")).to_contain_text("download only")
        office.wait_decided_at_central(case_no)

        with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
            decision = [
                r for r in files.refs_of_case(store.db, case_no) if r.ref.material == DECISION_MATERIAL
            ]
            assert len(decision) == 1 and decision[0].origin == GA and decision[0].event == "approve"
            sha = decision[0].ref.hex
            letter_bytes = store.files.read(sha)

        def at_central() -> bool:
            held, partial, noted = central_state(office)
            return sha in held and sha in noted and sha not in partial

        wait_for(at_central, "the decision letter at central", 30)
        with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as store:
            assert store.files.check(sha) is None and store.files.read(sha) == letter_bytes
    finally:
        office.close()
    with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
        assert files.at_root(store.db, sha)  # central confirmed it: the department sends it no more
    office.verify_all()


def test_central_refuses_a_bad_chunk_and_files_not_of_the_department_s_cases(office: Backoffice) -> None:
    material = first_material(office)
    case_no = office.take_in(uploads=(Upload(material, "户口页.jpg", jpeg((320, 240))),))
    office.sync_up()
    (scan,) = office.carry_files_up()
    with running(office, "central", "department"):
        office.wait_at_department(case_no)
        wait_for(lambda: scan in department_holds(office), "the scan at the department", 30)
        office.decide(case_no, "reject", reason="迁入地址不在本市")
        office.wait_decided_at_central(case_no, "rejected")
        office.stop("department")  # the test speaks for the department from here on
        other = other_scan(office)
        before = central_state(office)
        uri = office.broker.setup.uri(GA)
        letter = jpeg((200, 100))
        letter_sha = hashlib.sha256(letter).hexdigest()
        with CentralClient(uri, GA, GA) as central:
            # a file no record lists
            data, digest = encode_chunk(letter)
            answer = FileAnswer.from_message(central.submit_file(letter_sha, 0, data, digest))
            assert (answer.status, answer.code) == ("refused", "E_FILE_UNREFERENCED")
            # the window's scan is not the department's to send
            data, digest = encode_chunk(b"\xff\xd8 not the scan")
            answer = FileAnswer.from_message(central.submit_file(scan, 0, data, digest))
            assert answer.code == "E_FILE_SCOPE"
            # a chunk whose bytes do not hash to its digest
            data, _ = encode_chunk(letter)
            answer = FileAnswer.from_message(central.submit_file(letter_sha, 0, data, "0" * 64))
            assert answer.code == "E_FILE_HASH"
            # a file central holds, of a case another party decides
            reply = central.file_chunk(other, 0, 1024)
            assert reply["code"] == "E_FILE_SCOPE" and reply["data"] == ""
            # the department's own case: given
            reply = central.file_chunk(scan, 0, 1024)
            assert reply["code"] == "" and reply["size"] > 0
        # another department's account may not ask for this department's scans
        with CentralClient(office.broker.setup.uri("330481RS"), "330481RS", "330481RS") as central:
            reply = central.file_chunk(scan, 0, 1024)
            assert reply["code"] == "E_DEPARTMENT_USER" and reply["data"] == ""
        assert central_state(office) == before  # nothing stored changed


def other_scan(office: Backoffice) -> str:
    """A file of a case a party other than the department decides, held at central."""
    with office.city.desk(VILLAGE) as desk:
        auth = next(a for a in desk.items() if a.decider != GA and a.item.materials)
        code = auth.item.code
    page = Upload(auth.item.materials[0].code, "其他.png", png((120, 90)))
    office.materials.pop(code, None)
    office.take_in(item=code, doc_no="110105194912310038", uploads=(page,))
    office.sync_up()
    shas = office.carry_files_up()
    with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
        own = {r.ref.hex for r in files.refs_of_sha(store.db, shas[0])} if shas else set()
    return next(sha for sha in shas if sha not in department_holds(office) and sha not in own)


class Link:
    """Central's file calls as the broker carries them, made in this process on central's
    real store; the link breaks (``E_BROKER_UNREACHABLE``) after ``cut`` calls."""

    def __init__(self, office: Backoffice, cut: int | None = None) -> None:
        self.path = office.city.home(CITY) / "central.db"
        self.clock = office.city.clock
        self.cut = cut
        self.offsets: list[int] = []

    def _call(self, offset: int) -> CentralStore:
        if self.cut is not None and len(self.offsets) >= self.cut:
            raise error(ErrorCode.BROKER_UNREACHABLE, "the link broke")
        self.offsets.append(offset)
        return CentralStore.open(self.path, self.clock)

    def file_chunk(self, sha: str, offset: int, size: int) -> dict[str, Any]:
        with self._call(offset) as store:
            return department_files.chunk(store, GA, sha, offset, size).to_message()

    def submit_file(self, sha: str, offset: int, data: str, digest: str) -> dict[str, Any]:
        with self._call(offset) as store:
            return department_files.receive(store, GA, sha, offset, data, digest).to_message()


def big_pdf(size: int) -> bytes:
    body = b"<< /Length %d >>\nstream\n" % size + os.urandom(size) + b"\nendstream"
    return pdf(b"<< /Type /Catalog /Pages 2 0 R >>", *PAGES, body)


def deliver(office: Backoffice) -> None:
    """Central's outbox into the department's store, as the broker link delivers it."""
    with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as central:
        rows = [(r, central.log.get(r.record_id)) for r in pending(central.db, 1000) if r.department == GA]
    with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
        for row, record in rows:
            assert record is not None
            store.receive(row.record_id, row.seq, row.kind, record.envelope)


def hand_over(store: DepartmentStore, central: CentralStore) -> None:
    head = store.log.head(GA)
    assert head is not None
    for seq in range(1, head.seq + 1):
        rid = store.log.id_at(GA, seq)
        record = store.log.get(rid) if rid is not None else None
        assert record is not None
        reply = decisions.submit(central, record.envelope, GA)
        assert reply.status == "appended" or reply.code == "E_RECORD_REPLAYED", reply


def test_a_cut_transfer_resumes_where_it_stopped_both_ways_and_a_bad_copy_is_dropped(
    office: Backoffice,
) -> None:
    material = first_material(office)
    scan = big_pdf(3 * MAX_CHUNK + 1000)
    case_no = office.take_in(uploads=(Upload(material, "户籍证明.pdf", scan),))
    office.sync_up()
    (sha,) = office.carry_files_up()
    deliver(office)
    path = office.department_dir / "department.db"
    with DepartmentStore.open(path, office.city.clock) as store:
        transfers = Transfers(GA)
        with pytest.raises(TongbanError) as cut:
            transfers.fetch(store, Link(office, cut=2))
        assert cut.value.code is ErrorCode.BROKER_UNREACHABLE
        assert store.files.partial_offset(sha) == 2 * MAX_CHUNK and not store.files.has(sha)
        link = Link(office)
        assert Transfers(GA).fetch(store, link) == 1  # a restarted link
        assert link.offsets == [2 * MAX_CHUNK, 3 * MAX_CHUNK]  # it resumed at its partial copy
        assert store.files.read(sha) == scan and files.is_held(store.db, sha)

    # the decision letter goes up, is cut, and resumes where central's copy ends
    letter = big_pdf(2 * MAX_CHUNK + 10)
    with DepartmentDesk.open(office.department_dir, office.city.clock) as desk:
        # a letter that is no scan, or on a step that takes none: refused, nothing signed or kept
        records = desk.store.log.count()
        refusals = (
            ("approve", ("决定书.pdf", b"not a scan"), ErrorCode.FILE_TYPE),
            ("request_supplement", ("决定书.pdf", letter), ErrorCode.FIELD_INVALID),
        )
        for event, bad, code in refusals:
            with pytest.raises(TongbanError) as refused:
                desk.decide(
                    case_no, event, {"reason": "补正", "missing": "户口簿"}, actor="huzheng", letter=bad
                )
            assert refused.value.code is code
        assert desk.store.log.count() == records and set(desk.store.files.shas()) == {sha}
        desk.decide(case_no, "approve", {"reason": "准予"}, actor="huzheng", letter=("决定书.pdf", letter))
        letter_sha = hashlib.sha256(letter).hexdigest()
        assert Transfers(GA).send(desk.store, Link(office)) == 0  # central does not hold the decision yet
        with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as central:
            hand_over(desk.store, central)  # the department's records, as its sender hands them over
            assert not central.files.has(letter_sha) and central.files.partial_offset(letter_sha) == 0
        with pytest.raises(TongbanError):
            Transfers(GA).send(desk.store, Link(office, cut=1))
        link = Link(office)
        assert Transfers(GA).send(desk.store, link) == 1
        assert link.offsets == [0, MAX_CHUNK, 2 * MAX_CHUNK]  # refused at 0, resumed at central's end
        assert files.at_root(desk.db, letter_sha)
    with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as central:
        assert central.files.read(letter_sha) == letter and files.is_held(central.db, letter_sha)

    # a copy at central that does not match its hash never takes its name at the department
    with DepartmentStore.open(path, office.city.clock) as store:
        store.files.remove(sha)
        files.note_removed(store.db, sha)
        with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as central:
            damaged = central.files.path(sha)
        damaged.write_bytes(scan[:-1] + b"!")
        assert Transfers(GA).fetch(store, Link(office)) == 0
        assert not store.files.has(sha) and store.files.partial_offset(sha) == 0
        assert not files.is_held(store.db, sha)
