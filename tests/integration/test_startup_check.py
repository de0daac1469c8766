"""A service never starts on a damaged store: it says why and exits 3, and supervisor gives up.

Each entry point — ``python -m tongban.run`` (what supervisor runs), ``tongban node run``
and ``tongban central run`` — opens the store, takes its migrations and runs SQLite's
``quick_check`` before any service starts. A store damaged where opening it does not look
(an index's pages) and one whose header is gone are both refused with
``E_STORE_CORRUPT: 中文 / English (detail)`` on stderr, nothing listens, and the programs
of the Ansible role, run by a real supervisord, end FATAL after a bounded number of tries
instead of restarting without end.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from tests.helpers import VILLAGE, wait_for
from tests.integration.webcentral import build_central
from tests.integration.webnode import free_port

REPO = Path(__file__).resolve().parents[2]
REFUSED = "E_STORE_CORRUPT: 数据库文件损坏 / The database file is damaged ("


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_central(tmp_path_factory.mktemp("city")).root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built, tmp_path / "city")
    return tmp_path / "city"


def damage_index(db: Path, index: str) -> None:
    """Overwrite the root page of ``index``: opening the store never reads it, a check does."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        (page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()
    finally:
        conn.close()
    with db.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\x0d" + b"\xff" * (size - 1))


def damage_header(db: Path) -> None:
    with db.open("r+b") as f:
        f.write(b"not a database, any more")


def start(*args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", *args, "--listen", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, port


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("damage", ["index", "header"])
def test_no_entry_point_starts_a_service_on_a_damaged_store(root: Path, damage: str) -> None:
    node, central = root / VILLAGE, root / "central"
    for db, index in ((node / "node.db", "cases_name"), (central / "central.db", "intake_checks_verdict")):
        damage_index(db, index) if damage == "index" else damage_header(db)
    for args in (
        ("tongban.run", str(node), "--only", "web"),
        ("tongban.run", str(node)),
        ("tongban", "node", "run", str(node)),
        ("tongban.run", str(central)),
        ("tongban", "central", "run", str(central)),
    ):
        done, port = start(*args)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        assert done.stderr.startswith(REFUSED), (args, done.stderr)
        assert "Traceback" not in done.stderr and not listening(port)


def test_a_sound_store_passes_its_first_check_and_starts(root: Path) -> None:
    port = free_port()
    args = ["tongban.run", str(root / VILLAGE), "--only", "web", "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: listening(port) or proc.poll() is not None, "the web service to listen", 30, 0.1)
        assert proc.poll() is None and listening(port)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _programs(home: Path, prefix: Path) -> str:
    """The Ansible role's supervisor programs for ``home``, rendered as the role does."""
    template = REPO / "ansible" / "roles" / "tongban_common" / "templates" / "programs.conf.j2"
    return jinja2.Template(template.read_text(encoding="utf-8")).render(
        ansible_managed="rendered by the test",
        tongban_common_programs_title="the test node",
        tongban_common_programs=[{"name": "web", "part": "web"}],
        tongban_common_venv=str(Path(sys.executable).parent.parent),
        tongban_common_programs_home=str(home),
        tongban_common_prefix=str(prefix),
    )


def test_supervisor_gives_up_on_a_refused_start_instead_of_restarting_it_without_end(root: Path) -> None:
    home, prefix = root / VILLAGE, root / "prefix"
    (prefix / "log").mkdir(parents=True)
    damage_index(home / "node.db", "cases_name")
    sock = prefix / "supervisor.sock"
    conf = prefix / "supervisord.conf"
    conf.write_text(
        "\n".join(
            [
                "[supervisord]",
                f"logfile={prefix}/supervisord.log",
                f"pidfile={prefix}/supervisord.pid",
                "nodaemon=false",
                "[unix_http_server]",
                f"file={sock}",
                "[rpcinterface:supervisor]",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
                "[supervisorctl]",
                f"serverurl=unix://{sock}",
                "",
                _programs(home, prefix),
            ]
        ),
        encoding="utf-8",
    )
    ctl = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf)]
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
    try:

        def state() -> str:
            return subprocess.run([*ctl, "status", "tongban:web"], capture_output=True, text=True).stdout

        wait_for(lambda: "FATAL" in state(), "supervisor to give up on the refused start", 90, 0.5)
        spawned = (prefix / "supervisord.log").read_text(encoding="utf-8").count("spawned: 'web'")
        assert spawned == 4  # the start and startretries=3 more, no more
        assert (prefix / "log" / "web.log").read_text(encoding="utf-8").count(REFUSED) == spawned
    finally:
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=60)


def test_a_department_desk_does_not_start_on_a_damaged_store(tmp_path: Path) -> None:
    """The department's desk and link run from ``python -m tongban.run`` too: the same check."""
    from central.department.store import DepartmentStore
    from tests.helpers import add_department
    from tests.integration.backoffice import GA, HOUSEHOLD, POLICE
    from tests.integration.syncnet import build_city

    city = build_city(tmp_path / "city", proxy=HOUSEHOLD)
    home = add_department(city.net, GA, HOUSEHOLD, POLICE, name="海宁市公安局户政管理")
    with DepartmentStore.open(home / "department.db", city.clock) as sound:
        sound.check()
    damage_header(home / "department.db")
    done, port = start("tongban.run", str(home), "--only", "web")
    assert done.returncode == 3 and done.stderr.startswith(REFUSED), done.stderr
    assert "Traceback" not in done.stderr and not listening(port)
