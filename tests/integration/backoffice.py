"""A city with a department back office for the broker tests: central, a town, two villages
and 公安户政 (330481GA), linked by real ZeroMQ sessions and a real RabbitMQ.

The broker links run as real processes (``tongban.run DIR --only broker``: central's and the
department's), so that a test can kill one with SIGKILL; the sync sessions run in the test
(:mod:`tests.integration.syncnet`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import amqp.exceptions
from kombu import Connection

from central.department.contract import SERVICE, queue_name
from central.department.desk import DepartmentDesk
from central.department.store import DepartmentStore
from central.department.store import verify as verify_department
from central.store import CentralStore
from node.desk import IntakeForm, Upload
from sync.projection import case_queries, files
from sync.record.db import transaction
from tests.helpers import CITY, TOWN, VILLAGE, add_department, wait_for
from tests.integration.syncnet import City, build_city, delegate
from tongban import rabbitmq
from tongban.demo_files import set_section
from tongban.rabbitmq import Broker
from web.accounts import hash_password

GA = "330481GA"
POLICE = "海宁市公安局"
HOUSEHOLD = ("GA-0001", "GA-0007")
PASSWORD = "tongban-test-2026"
DOC_NO = "11010519491231002X"


@dataclass
class Backoffice:
    city: City
    broker: Broker
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    materials: dict[str, tuple[str, ...]] = field(default_factory=dict)  # required, by item

    @property
    def department_dir(self) -> Path:
        return self.city.net.node_dir(GA)

    def command(self, name: str, web: str = "") -> list[str]:
        if name == "central":
            return [sys.executable, "-m", "tongban.run", str(self.city.home(CITY)), "--only", "broker"]
        if name == "department":
            return [sys.executable, "-m", "tongban.run", str(self.department_dir), "--only", "broker"]
        home = str(self.department_dir)
        return [sys.executable, "-m", "tongban.run", home, "--only", "web", "--listen", web]

    def start(self, name: str, web: str = "") -> None:
        log = (self.city.net.root / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(self.command(name, web), stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, name: str, seconds: float = 60) -> None:
        """Until the link ``name`` consumes its queue (central's RPC queue, the department's)."""
        queue = f"rpc-{SERVICE}" if name == "central" else queue_name(GA)

        def consumed() -> bool:
            with Connection(self.broker.setup.uri(rabbitmq.CENTRAL_USER)) as connection:
                try:
                    return int(connection.channel().queue_declare(queue, passive=True).consumer_count) > 0
                except amqp.exceptions.NotFound:
                    return False

        wait_for(consumed, f"the {name} link to consume {queue}", seconds)

    def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def log(self, name: str) -> str:
        return (self.city.net.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    # -- the case's way -----------------------------------------------------------------------

    def take_in(
        self,
        village: str = VILLAGE,
        item: str = "GA-0001",
        doc_no: str = DOC_NO,
        uploads: tuple[Upload, ...] = (),
    ) -> str:
        """A case of ``item`` taken in at ``village``, with the scanned pages ``uploads``."""
        with self.city.desk(village) as desk:
            if item not in self.materials:
                auth = next(a for a in desk.items() if a.item.code == item)
                self.materials[item] = tuple(m.code for m in auth.item.materials if m.required)
            form = IntakeForm(
                item, "王秀英", "resident_id", doc_no, "13800138000", self.materials[item], uploads=uploads
            )
            case = desk.intake(form, actor="wangli")
        assert case.decider == GA or item not in HOUSEHOLD, case.decider
        return case.case_no

    def carry_files_up(self, village: str = VILLAGE) -> list[str]:
        """Every file of ``village``'s store into central's file store, noted held, as the
        sync links bring them up; the hashes carried."""
        with self.city.desk(village) as desk:
            source = desk.store.files
            shas = sorted(source.shas())
            blobs = [(sha, source.read(sha)) for sha in shas]
        with CentralStore.open(self.city.home(CITY) / "central.db", self.city.clock) as store:
            for sha, data in blobs:
                assert store.files.put(data) == sha
                kind = files.refs_of_sha(store.db, sha)[0].ref.type
                with transaction(store.db):
                    files.note_held(store.db, sha, len(data), kind, self.city.clock.now())
        return shas

    def sync_up(self, village: str = VILLAGE) -> None:
        with self.city.serving(CITY, TOWN):
            assert self.city.sync(village).ok
            assert self.city.sync(TOWN).ok

    def sync_down(self, village: str = VILLAGE) -> None:
        with self.city.serving(CITY, TOWN):
            assert self.city.sync(TOWN).ok
            assert self.city.sync(village).ok

    def department_case(self, case_no: str) -> case_queries.CaseRow | None:
        with DepartmentStore.open(self.department_dir / "department.db", self.city.clock) as store:
            return case_queries.case(store.db, case_no)

    def central_case(self, case_no: str) -> case_queries.CaseRow | None:
        with CentralStore.open(self.city.home(CITY) / "central.db", self.city.clock) as store:
            return case_queries.case(store.db, case_no)

    def village_case(self, case_no: str, village: str = VILLAGE) -> Any:
        with self.city.desk(village) as desk:
            return desk.case(case_no)

    def decide(self, case_no: str, event: str = "approve", **form: str) -> None:
        with DepartmentDesk.open(self.department_dir, self.city.clock) as desk:
            desk.decide(case_no, event, form, actor="huzheng")

    def wait_at_department(self, case_no: str, seconds: float = 60) -> None:
        wait_for(lambda: self.department_case(case_no) is not None, f"{case_no} at the department", seconds)

    def wait_decided_at_central(self, case_no: str, state: str = "approved", seconds: float = 60) -> None:
        def decided() -> bool:
            case = self.central_case(case_no)
            return case is not None and case.state.value == state

        wait_for(decided, f"{case_no} {state} at central", seconds)

    def verify_all(self) -> None:
        self.city.verify_all()
        report = verify_department(self.department_dir / "department.db", self.city.clock)
        assert report.ok, report.faults


def build_backoffice(root: Path, broker: Broker) -> Backoffice:
    """The city, its department enrolled and its accounts made, both linked to ``broker``."""
    city = build_city(root, proxy=HOUSEHOLD)
    home = add_department(city.net, GA, HOUSEHOLD, POLICE, name="海宁市公安局户政管理")
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok
        assert delegate(city, VILLAGE) > 0
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
    with DepartmentDesk.open(home, city.clock) as desk:
        digest = hash_password(PASSWORD)
        desk.accounts.add(desk.keys, "huzheng", "胡政", ["approver"], digest, actor="sys:test")
    set_section(city.home(CITY) / "central.toml", "amqp", {"uri": broker.setup.uri(rabbitmq.CENTRAL_USER)})
    set_section(home / "department.toml", "amqp", {"uri": broker.setup.uri(GA)})
    return Backoffice(city, broker)


@contextlib.contextmanager
def running(office: Backoffice, *names: str) -> Iterator[Backoffice]:
    """The named broker links running for the block (``central``, ``department``)."""
    try:
        for name in names:
            office.start(name)
        for name in names:
            office.wait_ready(name)
        yield office
    finally:
        office.close()
