"""Provisioning a department with the real ansible-playbook on this machine, as
test_provisioning.py provisions a city: central (with its RabbitMQ) and a town, then 公安户政
added to the org tree once the catalog is published. Random ports; every process stopped.

Checks: the broker runs under central's supervisord and listens on loopback only, with a
user per department; the department is enrolled for its items, its desk and link run; a
case central publishes reaches its store; a second run changes nothing.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from central.department import config as department_config
from tests.helpers import wait_for
from tests.integration.test_provisioning import City, build_wheel, shut_down, write_tree
from tests.integration.webnode import free_port
from tongban import rabbitmq

pytestmark = pytest.mark.slow

CITY, TOWN, GA = "330481", "330481107", "330481GA"
CATALOG = Path(__file__).resolve().parents[2] / "central" / "demo" / "catalog.yaml"


def add_department(city: City, ports: dict[str, int]) -> None:
    tree = yaml.safe_load(city.tree.read_text(encoding="utf-8"))
    tree["nodes"] = [n for n in tree["nodes"] if n["tier"] != "village"]
    tree["city"]["amqp_port"] = ports["amqp"]
    tree["departments"] = [
        {
            "code": GA,
            "name": "海宁市公安局户政管理",
            "department": "海宁市公安局",
            "items": ["GA-0001", "GA-0007"],
            "host": "127.0.0.1",
            "prefix": str(city.root / "department"),
            "web_port": ports["dw"],
        }
    ]
    tree["vars"] |= {
        "tongban_rabbitmq_install": False,  # installed by scripts/system-deps.sh already
        "tongban_rabbitmq_epmd_port": ports["epmd"],
        "tongban_rabbitmq_dist_port": ports["dist"],
        "tongban_common_credentials": str(city.root / "credentials"),
    }
    city.tree.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[City, dict[str, int]]]:
    if not rabbitmq.installed():
        pytest.skip("rabbitmq-server is not installed: scripts/system-deps.sh installs it")
    root = tmp_path_factory.mktemp("provisioned")
    ports = {n: free_port() for n in ("cw", "cs", "tw", "ts", "vw", "dw", "amqp", "epmd", "dist")}
    built = City(root, write_tree(root, build_wheel(root), ports), ports)
    add_department(built, ports)
    try:
        # Central first (with its broker), then the catalog the department's items are in.
        built.play("--limit", f"tongban-{CITY}")
        built.tongban(CITY, "central", "publish-catalog", str(built.home(CITY)), str(CATALOG))
        built.converge = built.play()
        yield built, ports
    finally:
        shut_down(root / "department")
        shut_down(built.prefix(TOWN))
        shut_down(built.prefix(CITY))


def listening(port: int) -> list[str]:
    """The local addresses something listens on at ``port`` (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hexport = local.split(":")
        if state == "0A" and int(hexport, 16) == port:
            found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_central_runs_its_broker_on_loopback_with_a_user_per_department(
    city: tuple[City, dict[str, int]],
) -> None:
    built, ports = city
    assert built.programs(CITY) == {
        "web": "RUNNING", "sync": "RUNNING", "backup": "RUNNING",
        "broker": "RUNNING", "epmd": "RUNNING", "rabbitmq": "RUNNING",
    }  # fmt: skip
    for port in (ports["amqp"], ports["epmd"], ports["dist"]):
        assert listening(port) == ["127.0.0.1"], port
    definitions = json.loads((built.prefix(CITY) / "rabbitmq" / "definitions.json").read_text())
    assert {u["name"] for u in definitions["users"]} == {rabbitmq.CENTRAL_USER, GA}


def test_the_department_is_enrolled_for_its_items_and_takes_central_s_events(
    city: tuple[City, dict[str, int]],
) -> None:
    built, ports = city
    home = built.root / "department" / "department"
    state: dict[str, Any] = json.loads(built.tongban(CITY, "provision", "state", str(home)))
    assert state["role"] == "department" and state["enrolled"]
    central = built.state(CITY)
    assert central["live"][GA] == state["kid"]
    config = department_config.load(home)
    assert config.amqp.user == GA and f":{ports['amqp']}/" in config.amqp.uri
    assert (home / "department.toml").stat().st_mode & 0o077 == 0
    db = home / "department.db"

    def received() -> int:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return int(conn.execute("SELECT count(*) FROM inbox").fetchone()[0])

    wait_for(lambda: received() > 0, "central's events at the department", 120, 0.5)


def test_a_second_run_changes_nothing(city: tuple[City, dict[str, int]]) -> None:
    built, _ = city
    recap = built.play()
    assert {host: changed for host, (_, changed, _, _) in recap.items()} == dict.fromkeys(recap, 0)
