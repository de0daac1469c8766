"""`make demo`'s commands: a demo network built, run under a real supervisord, and stopped.

With rabbitmq-server installed the demo also runs a private broker and 公安户政's desk: a
case from a village window reaches the desk and its decision comes back to the village."""

from __future__ import annotations

import random
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from central.department.desk import DepartmentDesk
from core.catalog import Mode
from core.clock import SystemClock
from node.card_reader import reader_for
from node.desk import Desk, IntakeForm
from tests.helpers import open_desk, wait_for
from tongban import rabbitmq

pytestmark = pytest.mark.slow


def tongban(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tongban", *args], capture_output=True, text=True, timeout=180
    )


def demo_ports() -> int:
    """A base port for the demo with its web (base…+9), sync (+100…) and broker (+200…) ports
    free, below the ephemeral range, so no outgoing connection takes one of them meanwhile."""
    for base in random.sample(range(20_000, 32_000, 10), 50):
        try:
            for port in (base + offset + i for offset in (0, 100, 200) for i in range(10)):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free ports for the demo")


def test_demo_runs_every_node_under_supervisord_and_stops(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    assert tongban("demo", "init", str(home)).returncode == 0
    port = demo_ports()
    started = tongban("demo", "start", str(home), "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert "tongban-demo-2026" in started.stdout and "wangli" in started.stdout
        urls = [line.split()[2] for line in started.stdout.splitlines() if "http://127.0.0.1:" in line]
        desks = 1 if rabbitmq.installed() else 0  # 公安户政's desk, with the demo's broker
        # 3 nodes, central, Qingpu's central and its town, and the department's desk
        assert len(urls) == 6 + desks and "shixiang (catalog_admin)" in started.stdout
        assert ("department desk: off" in started.stdout) is not bool(desks)
        for url in urls:
            with urllib.request.urlopen(url + "login", timeout=10) as resp:
                assert resp.status == 200 and "通办" in resp.read().decode()
        village_dir = home / "330481107201"
        card = reader_for("simulated", village_dir, "reader-card.json").read()  # the window's reader
        assert card.name == "沈晓燕" and card.number == "330481198806152429"
        case_no = take_in(village_dir)
        # The nodes sync by themselves: village → town → central.
        wait_for(lambda: held(home / "central" / "central.db", case_no), "the case to reach central", 90)
        assert held(home / "330481107" / "node.db", case_no)
        if desks:
            decide_at_the_department(home, case_no)
            village = home / "330481107201" / "node.db"
            wait_for(lambda: state(village, case_no) == "approved", "the decision to reach the village", 90)
            sms = village_dir / "sms.log"  # the resident is told by the demo's SMS gateway
            wait_for(lambda: sms.exists() and "13900139000" in sms.read_text("utf-8"), "the SMS", 30)
        cross_to_qingpu_and_back(home)
        for code in (
            "330481107201",
            "330481107202",
            "330481107",
            "central",
            *(["330481GA"] if desks else []),
            "qingpu/central",
            "qingpu/310118107",
        ):
            verified = tongban("verify", str(home / code))
            assert verified.returncode == 0, verified.stdout
    finally:
        stopped = tongban("demo", "stop", str(home))
    assert stopped.returncode == 0 and "demo stopped" in stopped.stdout
    assert not (home / "supervisor.sock").exists()


def cross_to_qingpu_and_back(home: Path) -> None:
    """The demo's 异地代收 case at 庆云村 crosses to Qingpu by itself (the link between the
    centrals), is accepted there, its acceptance back at the village; Qingpu's town approves
    it and the decision comes back."""
    village = home / "330481107201" / "node.db"
    rows = sqlite3.connect(village).execute("SELECT case_no FROM cases WHERE item = 'QPRS-0001'").fetchall()
    assert len(rows) == 1
    case_no = str(rows[0][0])

    def accepted() -> bool:
        with closing(sqlite3.connect(village, timeout=10)) as conn:
            sql = (
                "SELECT count(*) FROM case_events WHERE case_no = ? AND event = 'peer_accept' AND status = ?"
            )
            return bool(conn.execute(sql, (case_no, "applied")).fetchone()[0])

    wait_for(accepted, "Qingpu's acceptance to reach the village", 120)
    town = home / "qingpu" / "310118107"
    found: list[str] = []

    def at_town() -> bool:
        with closing(sqlite3.connect(town / "node.db", timeout=10)) as conn:
            found[:] = [
                str(r[0]) for r in conn.execute("SELECT case_no FROM cases WHERE state = 'forwarded'")
            ]
        return bool(found)

    wait_for(at_town, "the case to reach Qingpu's town", 60)
    theirs = found[0]
    with Desk.open(town, SystemClock()) as desk:
        desk.act(theirs, "approve", {}, actor="shenpi")
    wait_for(lambda: state(village, case_no) == "approved", "Qingpu's decision to reach the village", 120)


def take_in(village: Path) -> str:
    desk = open_desk(village, SystemClock())  # type: ignore[arg-type]
    try:
        # 出生登记: the town takes it in for 公安户政, which decides it
        auth = next(a for a in desk.items() if a.item.code == "GA-0001" and a.mode is Mode.PROXY)
        form = IntakeForm(
            item=auth.item.code,
            name="周建国",
            doc_type="resident_id",
            doc_no="11010519491231002X",
            phone="13900139000",
            materials=tuple(m.code for m in auth.item.materials if m.required),
        )
        return desk.intake(form, actor="wangli").case_no
    finally:
        desk.store.close()


def decide_at_the_department(home: Path, case_no: str) -> None:
    department = home / "330481GA" / "department.db"
    wait_for(lambda: state(department, case_no) == "forwarded", "the case to reach 公安户政", 90)
    with DepartmentDesk.open(home / "330481GA", SystemClock()) as desk:
        desk.decide(case_no, "approve", {"reason": "准予登记"}, actor="huzheng")


def state(database: Path, case_no: str) -> str | None:
    with closing(sqlite3.connect(database, timeout=10)) as conn:
        row = conn.execute("SELECT state FROM cases WHERE case_no = ?", (case_no,)).fetchone()
        return str(row[0]) if row else None


def held(database: Path, case_no: str) -> bool:
    with closing(sqlite3.connect(database, timeout=10)) as conn:
        return conn.execute("SELECT count(*) FROM cases WHERE case_no = ?", (case_no,)).fetchone()[0] == 1
