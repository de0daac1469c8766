"""ansible/site.yml, rotate-keys.yml and replace-node.yml against this machine.

Central, a town and a village are provisioned from one org-tree file into three prefixes
(Ansible's local connection), each with its own virtualenv, supervisord and ports. The
virtualenvs get a wheel of this checkout, built here without a download; their
dependencies come from the test's own environment (``tongban_common_site_dirs``). Every
supervisord is shut down at the end, even when a test fails.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.parse
import urllib.request
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from supervisor.xmlrpc import SupervisorTransport

from core.clock import SystemClock
from core.errors import ErrorCode
from node import config as node_config
from node.desk import Desk
from node.store import NodeStore
from sync.record import keys, kinds
from sync.record.envelope import Payload, seal
from sync.record.log import decode_stored
from sync.record.outcome import Status
from tests.helpers import wait_for
from tests.integration.webnode import GOOD_ID, ID_2, PASSWORD, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CITY, TOWN, VILLAGE = "330481", "330481107", "330481107201"
HOST = {code: f"tongban-{code}" for code in (CITY, TOWN, VILLAGE)}
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
CLOCK = SystemClock()
TONGBAN = str(Path(sys.executable).parent / "tongban")
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]


@dataclass
class City:
    root: Path
    tree: Path
    ports: dict[str, int]
    check: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    converge: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    after_check: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)

    def prefix(self, code: str) -> Path:
        return self.root / {CITY: "central", TOWN: "town", VILLAGE: "village"}[code]

    def home(self, code: str) -> Path:
        return self.prefix(code) / ("central" if code == CITY else "node")

    def tongban(self, code: str, *args: str, check: bool = True, stdin: str | None = None) -> str:
        """Run the provisioned ``tongban`` of ``code``'s prefix, as IT staff would there."""
        out = subprocess.run(
            [str(self.prefix(code) / "venv" / "bin" / "tongban"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            input=stdin,
        )
        if check:
            assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout + out.stderr

    def state(self, code: str) -> dict[str, Any]:
        return dict(json.loads(self.tongban(code, "provision", "state", str(self.home(code)))))

    def query(self, code: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
        db = self.home(code) / ("central.db" if code == CITY else "node.db")
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def supervisor(self, code: str) -> Any:
        sock = f"unix://{self.prefix(code)}/run/supervisor.sock"
        return xmlrpc.client.ServerProxy("http://localhost", transport=SupervisorTransport(None, None, sock))

    def programs(self, code: str) -> dict[str, str]:
        """Each program's state once none is still STARTING (supervisor's startsecs)."""

        def states() -> dict[str, str]:
            return {p["name"]: p["statename"] for p in self.supervisor(code).supervisor.getAllProcessInfo()}

        wait_for(lambda: "STARTING" not in states().values(), f"{code}'s programs to settle", 60, 0.5)
        return states()

    def play(self, *args: str, playbook: str = "site.yml") -> dict[str, tuple[int, int, int, int]]:
        """``tongban provision apply`` with a playbook; the PLAY RECAP per host."""
        out = subprocess.run(
            [
                TONGBAN,
                "provision",
                "apply",
                "--playbook",
                str(REPO / "ansible" / playbook),
                str(self.tree),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
            cwd=self.root,
        )
        recap = {m[0]: tuple(int(n) for n in m[1:]) for m in RECAP.findall(out.stdout)}
        assert recap and out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
        assert all(r[2:] == (0, 0) for r in recap.values()), out.stdout[-6000:]
        return recap  # type: ignore[return-value]


def build_wheel(root: Path) -> Path:
    """A wheel of this checkout, built from a clean copy (no build/ left in the tree)."""
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("core", "sync", "web", "node", "central", "provisioning", "tongban"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run(
        [*PIP_WHEEL, "-w", str(root / "wheels"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (root / "wheels").glob("tongban-*.whl")
    return wheel


def write_tree(root: Path, wheel: Path, ports: dict[str, int]) -> Path:
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
            "tongban_common_user": "root",
            "tongban_common_group": "root",
            "tongban_common_create_user": False,
            "tongban_common_become_user": False,
            "tongban_common_systemd": False,
            "tongban_common_venv_command": f"{sys.executable} -m venv",
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


def shut_down(prefix: Path) -> None:
    """Stop ``prefix``'s supervisord and its programs; bounded, and by pid at the end."""
    pidfile = prefix / "run" / "supervisord.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip() or 0)
    sock = f"unix://{prefix}/run/supervisor.sock"
    with contextlib.suppress(OSError, xmlrpc.client.Error):
        proxy = xmlrpc.client.ServerProxy("http://localhost", transport=SupervisorTransport(None, None, sock))
        proxy.supervisor.shutdown()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """Check mode on the new city, then the converge; shut down whatever was started."""
    root = tmp_path_factory.mktemp("city")
    ports = {name: free_port() for name in ("cw", "cs", "tw", "ts", "vw")}
    built = City(root, write_tree(root, build_wheel(root), ports), ports)
    try:
        built.check = built.play("--check")
        built.after_check = sorted(p.name for p in root.iterdir())
        built.converge = built.play()
        yield built
    finally:
        for code in (VILLAGE, TOWN, CITY):
            shut_down(built.prefix(code))


def test_check_mode_on_a_new_city_predicts_changes_and_creates_nothing(city: City) -> None:
    assert set(city.check) == set(HOST.values())
    assert all(changed > 0 for _, changed, _, _ in city.check.values())
    assert city.after_check == ["haining.inventory.yml", "haining.yaml", "haining.yaml.lock", "src", "wheels"]


def test_the_city_runs_under_supervisor_enrolled_and_syncing(city: City) -> None:
    assert all(changed > 0 for _, changed, _, _ in city.converge.values())
    for code in (CITY, TOWN, VILLAGE):
        backup = {"backup": "RUNNING"} if code == CITY else {}  # central's online backup
        assert city.programs(code) == {"web": "RUNNING", "sync": "RUNNING", **backup}, code
    village, town = city.state(VILLAGE), city.state(TOWN)
    assert village["enrolled"] and town["enrolled"]
    central = city.state(CITY)
    assert central["live"][VILLAGE] == village["kid"] and central["live"][TOWN] == town["kid"]
    # Each center's own configuration came from the org tree: its ports, its links.
    config = node_config.load(city.home(VILLAGE))
    assert config.web.listen == f"127.0.0.1:{city.ports['vw']}"
    assert config.sync.parent == f"tcp://127.0.0.1:{city.ports['ts']}"
    assert config.sync.fallback == f"tcp://127.0.0.1:{city.ports['cs']}"
    # Keys were made on the node and stay there: no private key file outside its prefix.
    key_files = sorted(p.relative_to(city.root) for p in city.root.rglob("*.key"))
    assert [str(k) for k in key_files if "node.key" in k.name] == [
        "town/node/keys/node.key",
        "village/node/keys/node.key",
    ]
    assert (city.home(VILLAGE) / "keys" / "node.key").stat().st_mode & 0o077 == 0


def test_a_second_run_changes_nothing(city: City) -> None:
    pids = {code: city.supervisor(code).supervisor.getAllProcessInfo() for code in (CITY, VILLAGE)}
    recap = city.play()
    assert {host: changed for host, (_, changed, _, _) in recap.items()} == dict.fromkeys(HOST.values(), 0)
    for code, before in pids.items():  # nothing was restarted either
        after = city.supervisor(code).supervisor.getAllProcessInfo()
        assert {p["name"]: p["pid"] for p in after} == {p["name"]: p["pid"] for p in before}


def open_desk(home: Path) -> Desk:
    config = node_config.load(home)
    store = NodeStore.open(config.database_path, CLOCK)
    return Desk(store, keys.load_key_file(config.key_path), config, CLOCK)


def delegate_to_village(city: City) -> None:
    """Central grants the town its items; the town passes them on to the village."""
    catalog = REPO / "central" / "demo" / "catalog.yaml"
    city.tongban(CITY, "central", "publish-catalog", str(city.home(CITY)), str(catalog))
    city.tongban(CITY, "central", "grant", str(city.home(CITY)), TOWN)

    def delegated() -> bool:
        desk = open_desk(city.home(TOWN))
        try:
            delegation = desk.delegation
            if VILLAGE not in {c.code for c in delegation.children()}:
                return False
            made = []
            for parent in delegation.parents():
                with contextlib.suppress(Exception):  # items not offered at village level
                    made += delegation.delegate(VILLAGE, parent.id, list(parent.items), 30, actor="guanli")
            return bool(made)
        finally:
            desk.store.close()

    wait_for(delegated, "the town to hold its grants and the village's certificate", 90, 1)


def api(city: City, method: str, path: str, token: str, body: object = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{city.ports['vw']}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def take_in(city: City, doc_no: str) -> str:
    """A walk-in at the village, through its API with a new device token; the case number."""
    token = city.tongban(VILLAGE, "node", "device", "add", str(city.home(VILLAGE)), f"kiosk{len(city.cases)}")
    token = token.strip().splitlines()[-1]

    def granted() -> list[dict[str, Any]]:
        status, body = api(city, "GET", "/api/v1/items", token)
        return [i for i in body.get("items", []) if i["mode"]] if status == 200 else []

    wait_for(granted, "the village to hold its grants", 90, 1)
    item = granted()[0]
    status, body = api(
        city,
        "POST",
        "/api/v1/cases",
        token,
        {
            "item": item["code"],
            "name": "王秀英",
            "doc_type": "resident_id",
            "doc_no": doc_no,
            "phone": "13800138000",
            "materials": [m["code"] for m in item["materials"] if m["required"]],
            "confirm_duplicate": True,
        },
    )
    assert status == 201, body
    case_no = str(body["case"]["case_no"])
    city.cases.append(case_no)
    return case_no


def at_central(city: City, case_no: str) -> bool:
    sql = "SELECT envelope FROM records WHERE kind = ? AND origin = ?"
    rows = city.query(CITY, sql, kinds.CASE_INTAKE, VILLAGE)
    return any(decode_stored(bytes(row[0])).body["case"] == case_no for row in rows)


def test_a_case_taken_in_at_the_village_reaches_central(city: City) -> None:
    delegate_to_village(city)
    case_no = take_in(city, GOOD_ID)
    wait_for(lambda: at_central(city, case_no), f"case {case_no} to reach central", 90, 1)


def cut_off(city: City, kid: str) -> int | None:
    rows = city.query(
        CITY,
        "SELECT r.last_good_seq FROM revocations r JOIN certs c ON c.cert_id = r.cert_id"
        " WHERE c.code = ? AND c.kid = ?",
        VILLAGE,
        bytes.fromhex(kid),
    )
    return int(rows[0][0]) if rows else None


def first_seq(city: City, kid: str) -> int | None:
    """The first seq central holds signed with ``kid`` (None until the node's sync brings one)."""
    sql = "SELECT min(seq) FROM records WHERE origin = ? AND kid = ?"
    found = city.query(CITY, sql, VILLAGE, bytes.fromhex(kid))[0][0]
    return int(found) if found is not None else None


def forge_after_the_cut_off(city: City, key_file: Path) -> Any:
    """What a thief with the old key would send: the next record of the village's chain."""
    from central.store import CentralStore

    supervisor = city.supervisor(VILLAGE).supervisor
    supervisor.stopProcessGroup("tongban")  # the village must not extend its chain meanwhile
    try:
        local = city.state(VILLAGE)["head"]
        wait_for(
            lambda: city.state(CITY)["heads"][VILLAGE] == local, "central to hold the village's chain", 60
        )
        old = keys.load_key_file(key_file)
        with CentralStore.open(city.home(CITY) / "central.db", CLOCK) as store:
            head = store.log.head(VILLAGE)
            anchor = store.log.anchor()
            cert = store.db.conn.execute("SELECT cert_id FROM certs WHERE kid = ?", (old.kid,)).fetchone()[0]
            assert head is not None and anchor is not None
            payload = Payload(
                net=anchor.net,
                kind=kinds.NODE_ENROLLED,
                origin=VILLAGE,
                kid=old.kid,
                seq=head.seq + 1,
                prev=head.id,
                ts=CLOCK.now(),
                body={"cert": bytes(cert), "software": "stolen"},
                actor="sys:enroll",
            )
            return store.log.ingest(seal(payload, old).envelope, "test:thief")
    finally:
        supervisor.startProcessGroup("tongban")


def clerk_login(city: City, user: str, password: str) -> int:
    """The village's login page as a clerk's browser sends it; the status (303: logged in)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    url = f"http://127.0.0.1:{city.ports['vw']}/login"
    with opener.open(url, timeout=30) as page:
        found = re.search(r'name="login_csrf" value="([^"]+)"', page.read().decode())
    assert found
    data = urllib.parse.urlencode({"user": user, "password": password, "login_csrf": found[1], "next": "/"})
    try:
        with opener.open(urllib.request.Request(url, data=data.encode(), method="POST"), timeout=30) as done:
            return int(done.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_rotating_the_village_keys_keeps_it_syncing_and_refuses_the_old_key(city: City) -> None:
    if not city.cases:
        test_a_case_taken_in_at_the_village_reaches_central(city)
    home = str(city.home(VILLAGE))
    clerk = ["wangli", "--name", "王丽", "--role", "clerk", "--password-stdin"]
    city.tongban(VILLAGE, "node", "clerk", "add", home, *clerk, stdin=f"{PASSWORD}\n")
    kiosk = city.tongban(VILLAGE, "node", "device", "add", home, "kiosk-window").strip().splitlines()[-1]
    assert clerk_login(city, "wangli", PASSWORD) == 303
    old = city.state(VILLAGE)
    recap = city.play("-e", f"tongban_target={HOST[VILLAGE]}", playbook="rotate-keys.yml")
    assert recap[HOST[VILLAGE]][1] > 0 and HOST[TOWN] not in recap
    new = city.state(VILLAGE)
    assert new["enrolled"] and new["kid"] != old["kid"]
    assert city.state(CITY)["live"][VILLAGE] == new["kid"]
    assert city.programs(VILLAGE) == {"web": "RUNNING", "sync": "RUNNING"}
    # Clerks and kiosks go on logging in: their secrets were carried to the new directory.
    assert clerk_login(city, "wangli", PASSWORD) == 303
    assert api(city, "GET", "/api/v1/items", kiosk)[0] == 200
    # The old key was kept aside, untouched; the new one continues the chain after the cut-off.
    retired = city.prefix(VILLAGE) / "retired" / f"{VILLAGE}-{old['kid']}"
    assert keys.load_key_file(retired / "keys" / "node.key").kid.hex() == old["kid"]
    last_good = cut_off(city, old["kid"])
    assert last_good is not None and last_good >= old["head"]
    # The new node's first records reach central at its first sync with the town.
    wait_for(lambda: first_seq(city, new["kid"]) is not None, "the new key's records at central", 90, 1)
    assert first_seq(city, new["kid"]) == last_good + 1
    # Still syncing: a walk-in reaches central, with the next case number of the village.
    case_no = take_in(city, ID_2)
    assert case_no > city.cases[0]
    wait_for(lambda: at_central(city, case_no), f"case {case_no} to reach central", 90, 1)
    # The old CURVE key is refused by the town's ZAP handler, and counted there.
    sql = "SELECT count(*) FROM link_rejections WHERE peer = ? AND code = ?"
    out = city.tongban(VILLAGE, "node", "sync", str(retired), "--once", "--timeout", "10", check=False)
    assert ErrorCode.SYNC_PEER_UNKNOWN.value in out, out
    assert city.query(TOWN, sql, VILLAGE, ErrorCode.SYNC_PEER_REVOKED.value)[0][0] > 0
    # A record signed with the old key after the cut-off is refused everywhere.
    outcome = forge_after_the_cut_off(city, retired / "keys" / "node.key")
    assert (outcome.status, outcome.code) == (Status.REJECTED, ErrorCode.CERT_REVOKED)


def test_replacing_a_lost_village_machine(city: City) -> None:
    if not city.cases:
        test_a_case_taken_in_at_the_village_reaches_central(city)
    old = city.state(VILLAGE)
    wait_for(lambda: all(at_central(city, c) for c in city.cases), "the cases to reach central", 90, 1)
    shut_down(city.prefix(VILLAGE))
    shutil.rmtree(city.prefix(VILLAGE))  # the machine is lost, keys and all
    recap = city.play("-e", f"tongban_target={HOST[VILLAGE]}", playbook="replace-node.yml")
    assert recap[HOST[VILLAGE]][1] > 0
    new = city.state(VILLAGE)
    assert new["enrolled"] and new["kid"] != old["kid"]
    assert city.state(CITY)["live"][VILLAGE] == new["kid"]
    assert cut_off(city, old["kid"]) is not None
    assert city.programs(VILLAGE) == {"web": "RUNNING", "sync": "RUNNING"}
    # The new machine holds the village's history from central and goes on from it.
    held = {row[0] for row in city.query(VILLAGE, "SELECT case_no FROM cases")}
    assert set(city.cases) <= held
    case_no = take_in(city, GOOD_ID)
    assert case_no not in held
    wait_for(lambda: at_central(city, case_no), f"case {case_no} to reach central", 90, 1)
    assert city.query(CITY, "SELECT count(*) FROM forks") == [(0,)]
    assert city.query(TOWN, "SELECT count(*) FROM forks") == [(0,)]


def play_failing(city: City, *args: str, playbook: str) -> str:
    """A run that must fail; its output."""
    out = subprocess.run(
        [
            TONGBAN,
            "provision",
            "apply",
            "--playbook",
            str(REPO / "ansible" / playbook),
            str(city.tree),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        cwd=city.root,
    )
    assert out.returncode != 0, out.stdout[-3000:]
    return out.stdout + out.stderr


def test_city_status_from_the_controller_with_the_org_tree(city: City) -> None:
    """``tongban city status ORG_TREE`` runs the command at central through Ansible."""
    args = ["city", "status", str(city.tree), "--playbook", str(REPO / "ansible" / "city-status.yml")]
    listed = subprocess.run([TONGBAN, *args, "--json"], capture_output=True, text=True, timeout=300)
    assert listed.returncode in (0, 1), listed.stdout + listed.stderr
    rows = {row["code"]: row for row in json.loads(listed.stdout)["nodes"]}
    assert {TOWN, VILLAGE} <= set(rows) and rows[VILLAGE]["last_contact"] is not None
    assert rows[VILLAGE]["protocol"] is not None and not rows[VILLAGE]["revoked"]
    shown = subprocess.run([TONGBAN, *args], capture_output=True, text=True, timeout=300)
    assert shown.returncode == listed.returncode and shown.stdout.split()[:3] == ["code", "name", "tier"]


def test_decommissioning_the_village(city: City) -> None:
    if not city.cases:
        test_a_case_taken_in_at_the_village_reaches_central(city)
    target = ("-e", f"tongban_target={HOST[VILLAGE]}")
    # Its cases are still open: the run refuses, naming them, and changes nothing.
    out = play_failing(city, *target, playbook="decommission.yml")
    assert f"case(s) taken in at {VILLAGE} are neither delivered nor withdrawn" in out, out[-3000:]
    assert city.cases[0] in out and city.programs(VILLAGE) == {"web": "RUNNING", "sync": "RUNNING"}
    old = city.state(VILLAGE)
    recap = city.play(*target, "-e", "tongban_node_decommission_unfinished=true", playbook="decommission.yml")
    assert recap[HOST[VILLAGE]][1] > 0 and HOST[TOWN] not in recap
    # Central holds its whole chain and revoked its key after it.
    assert VILLAGE not in city.state(CITY)["live"]
    last_good = cut_off(city, old["kid"])
    assert last_good is not None and last_good >= old["head"]
    # The host is clean but for the retired directory (its store and key, to be shredded).
    prefix = city.prefix(VILLAGE)
    assert sorted(p.name for p in prefix.iterdir()) == ["retired"]
    assert (prefix / "retired" / f"{VILLAGE}-{old['kid']}" / "keys" / "node.key").exists()
    # The city goes on: the town runs, and city status shows the village revoked.
    assert city.programs(TOWN) == {"web": "RUNNING", "sync": "RUNNING"}
    tongban = str(city.prefix(CITY) / "venv" / "bin" / "tongban")
    listed = subprocess.run(
        [tongban, "city", "status", str(city.home(CITY)), "--json"], capture_output=True, text=True
    )
    status = json.loads(listed.stdout)
    (row,) = [n for n in status["nodes"] if n["code"] == VILLAGE]
    assert row["revoked"] and row["cert_expires"] is None
    # A second run finds nothing to do.
    recap = city.play(*target, "-e", "tongban_node_decommission_unfinished=true", playbook="decommission.yml")
    assert recap[HOST[VILLAGE]][1] == 0
