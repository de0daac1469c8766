"""ansible/site.yml as a city's IT staff run it: the documented defaults, a service account
that is not root, check mode first, and the run failing loudly when something is wrong.

Central, a town and a village are provisioned on this machine (Ansible's local connection)
with the roles' defaults: the roles create the service account (a name of this test's
own, removed at the end), run every Tongban command as it through sudo, install the host
packages they need, copy the wheel to each host and check, after converging, that every
program runs and answers ``/healthz``. Only what this machine lacks is set: no systemd
(supervisord is started directly), no package index (the dependencies come from the
test's environment), and Debian's own Python, which the service account can run.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sysconfig
import tempfile
import threading
import urllib.request
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from supervisor.xmlrpc import SupervisorTransport

from tests.helpers import wait_for
from tests.integration.test_provisioning import (
    CITY,
    HOST,
    RECAP,
    REPO,
    TONGBAN,
    TOWN,
    VILLAGE,
    build_wheel,
    shut_down,
)
from tests.integration.webnode import free_port

SYSTEM_PYTHON = "/usr/bin/python3"
APPLY = [TONGBAN, "provision", "apply", "--playbook", str(REPO / "ansible" / "site.yml")]
EXTRA = ["-e", f"ansible_python_interpreter={SYSTEM_PYTHON}"]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating a service account needs root"),
    pytest.mark.skipif(
        not Path(SYSTEM_PYTHON).exists() or not shutil.which("sudo"), reason="needs Debian's python3 and sudo"
    ),
]


@dataclass
class Run:
    rc: int
    out: str
    recap: dict[str, tuple[int, ...]]


@dataclass
class City:
    root: Path
    tree: Path
    user: str
    ports: dict[str, int]

    def prefix(self, code: str) -> Path:
        return self.root / {CITY: "central", TOWN: "town", VILLAGE: "village"}[code]

    def home(self, code: str) -> Path:
        return self.prefix(code) / ("central" if code == CITY else "node")

    def play(self, *args: str) -> Run:
        """``tongban provision apply`` of site.yml, with Debian's Python for the modules."""
        out = subprocess.run(
            [*APPLY, str(self.tree), *EXTRA, *args],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
            cwd=self.root,
        )
        recap = {m[0]: tuple(int(n) for n in m[1:]) for m in RECAP.findall(out.stdout)}
        return Run(out.returncode, out.stdout + out.stderr, recap)

    def converge(self, *args: str) -> Run:
        run = self.play(*args)
        assert run.rc == 0 and run.recap, run.out[-6000:]
        assert all(r[2:] == (0, 0) for r in run.recap.values()), run.out[-6000:]
        return run

    def as_user(self, code: str, *args: str) -> str:
        """The provisioned ``tongban`` of ``code``, run as the service account."""
        tongban = str(self.prefix(code) / "venv" / "bin" / "tongban")
        out = subprocess.run(
            ["runuser", "-u", self.user, "--", tongban, *args], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def supervisor(self, code: str) -> Any:
        sock = f"unix://{self.prefix(code)}/run/supervisor.sock"
        proxy = xmlrpc.client.ServerProxy("http://localhost", transport=SupervisorTransport(None, None, sock))
        return proxy.supervisor

    def states(self, code: str) -> dict[str, str]:
        return {p["name"]: p["statename"] for p in self.supervisor(code).getAllProcessInfo()}


def write_tree(root: Path, wheel: Path, user: str, ports: dict[str, int]) -> Path:
    def at(name: str, **more: object) -> dict[str, object]:
        return {"host": "127.0.0.1", "prefix": str(root / name), **more}

    tree = {
        "city": {
            "code": CITY,
            "name": "海宁市",
            **at("central", web_port=ports["cw"], sync_port=ports["cs"]),
        },
        "defaults": {"bind": "127.0.0.1"},
        "vars": {
            "tongban_common_user": user,
            "tongban_common_systemd": False,
            "tongban_common_site_dirs": [sysconfig.get_path("purelib")],
            "tongban_common_package": str(wheel),
            "tongban_common_pip_extra_args": "--no-deps",
            "tongban_node_sync_interval": 2,
        },
        "nodes": [
            {"code": TOWN, "name": "斜桥镇便民服务中心", "tier": "town", "parent": CITY}
            | at("town", web_port=ports["tw"], sync_port=ports["ts"]),
            {"code": VILLAGE, "name": "新阳村便民服务中心", "tier": "village", "parent": TOWN}
            | at("village", web_port=ports["vw"]),
        ],
    }
    path = root / "haining.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def city() -> Iterator[City]:
    """Check mode on the bare prefixes, then the converge; everything removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="tongban-ops-", dir="/tmp"))
    root.chmod(0o755)  # the service account reads the tree's directory and the wheel's
    user = f"tbops{os.getpid() % 100000}"
    ports = {name: free_port() for name in ("cw", "cs", "tw", "ts", "vw")}
    wheel = build_wheel(root)
    built = City(root, write_tree(root, wheel, user, ports), user, ports)
    try:
        check = built.play("--check")
        assert check.rc == 0 and set(check.recap) == set(HOST.values()), check.out[-6000:]
        assert all(r[2:] == (0, 0) and r[1] > 0 for r in check.recap.values()), check.out[-6000:]
        assert sorted(p.name for p in root.iterdir()) == [
            "haining.inventory.yml",
            "haining.yaml",
            "haining.yaml.lock",
            "src",
            "wheels",
        ]
        with pytest.raises(KeyError):
            pwd.getpwnam(user)  # check mode created no account either
        built.converge()
        yield built
    finally:
        for code in (VILLAGE, TOWN, CITY):
            shut_down(built.prefix(code))
        subprocess.run(["userdel", user], capture_output=True, check=False)
        subprocess.run(["groupdel", user], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_the_city_runs_as_its_own_service_account(city: City) -> None:
    account = pwd.getpwnam(city.user)
    assert account.pw_uid != 0 and account.pw_shell == "/usr/sbin/nologin"
    for code in (CITY, TOWN, VILLAGE):
        assert set(city.states(code).values()) == {"RUNNING"}, code
        pid = int((city.prefix(code) / "run" / "supervisord.pid").read_text())
        assert os.stat(f"/proc/{pid}").st_uid == account.pw_uid, code
        assert city.home(code).stat().st_uid == account.pw_uid
        # the wheel was copied to the host, and installed from there
        assert [p.name for p in (city.prefix(code) / "dist").iterdir()] == [
            p.name for p in (city.root / "wheels").iterdir()
        ]
    health = json.loads(
        urllib.request.urlopen(f"http://127.0.0.1:{city.ports['vw']}/healthz", timeout=10).read()
    )
    assert health["status"] == "ok" and health["code"] == VILLAGE


def test_program_logs_have_times_access_lines_and_a_line_per_sync(city: City) -> None:
    logs = city.prefix(VILLAGE) / "log"
    urllib.request.urlopen(f"http://127.0.0.1:{city.ports['vw']}/healthz", timeout=10).read()
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ "
    wait_for(
        lambda: re.search(
            stamp + r"INFO sync.link.services: synced with " + TOWN, (logs / "sync.log").read_text(), re.M
        ),
        "a sync line",
        60,
        1,
    )
    web = (logs / "web.log").read_text()
    assert re.search(stamp + r'INFO nameko.web.server: 127.0.0.1 .*"GET /healthz HTTP/1.1" 200', web, re.M), (
        web
    )


def test_a_misspelled_role_variable_is_refused(city: City) -> None:
    run = city.play("--limit", HOST[VILLAGE], "-e", "tongban_node_sync_intervall=5")
    assert run.rc != 0
    assert "unknown variable tongban_node_sync_intervall" in run.out, run.out[-4000:]


def test_a_stopped_program_fails_the_run_naming_host_and_program(city: City) -> None:
    city.supervisor(VILLAGE).stopProcess("tongban:sync")
    try:
        run = city.play("--limit", HOST[VILLAGE])
        assert run.rc != 0 and run.recap[HOST[VILLAGE]][3] == 1, run.out[-4000:]
        assert re.search(rf"{HOST[VILLAGE]}: not running: tongban:sync STOPPED", run.out), run.out[-4000:]
    finally:
        city.supervisor(VILLAGE).startProcess("tongban:sync")


class Other(BaseHTTPRequestHandler):
    """Another service that took the village's web port: it answers everything with 200."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def taken(port: int) -> Iterator[None]:
    server = HTTPServer(("127.0.0.1", port), Other)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_web_port_fails_the_run(city: City) -> None:
    supervisor = city.supervisor(VILLAGE)
    supervisor.stopProcess("tongban:web")
    try:
        with taken(city.ports["vw"]):
            supervisor.startProcess("tongban:web", False)  # as a reboot would start it
            run = city.play("--limit", HOST[VILLAGE])
        assert run.rc != 0, run.out[-4000:]
        assert re.search(rf"{HOST[VILLAGE]}: not running: tongban:web (FATAL|EXITED|BACKOFF)", run.out), (
            run.out[-4000:]
        )
    finally:
        wait_for(lambda: city.states(VILLAGE)["web"] != "STARTING", "the web program to settle", 60, 0.5)
        if city.states(VILLAGE)["web"] != "RUNNING":
            supervisor.startProcess("tongban:web")
    city.converge("--limit", HOST[VILLAGE])  # mended: the run passes again


def test_a_second_run_at_the_same_time_is_refused(city: City) -> None:
    first = subprocess.Popen(
        [*APPLY, str(city.tree), *EXTRA, "--limit", HOST[VILLAGE]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        cwd=city.root,
    )
    lock = city.root / "haining.yaml.lock"
    try:
        wait_for(lambda: f"pid {first.pid}" in lock.read_text(), "the first run to take the lock", 30, 0.1)
        second = city.play("--limit", HOST[VILLAGE])
        assert second.rc != 0 and not second.recap
        assert "E_PROVISION_BUSY" in second.out and f"pid {first.pid}" in second.out, second.out
        assert "another provisioning run" in second.out.lower(), second.out
    finally:
        out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out[-4000:]


def test_a_node_revoked_at_central_fails_the_run(city: City) -> None:
    city.as_user(CITY, "central", "revoke-node", str(city.home(CITY)), VILLAGE, "--reason", "test")
    run = city.play("--limit", HOST[VILLAGE])
    assert run.rc != 0, run.out[-4000:]
    assert f"{HOST[VILLAGE]}: central holds no live certificate of {VILLAGE}" in run.out, run.out[-4000:]
    assert "replace-node.yml" in run.out
