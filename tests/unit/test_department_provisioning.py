"""Provisioning departments: the org tree's departments and broker, the inventory written
from them, and the broker's files (listeners, users, permissions, TLS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError, InputError, TongbanError
from provisioning import inventory, orgtree
from tongban import rabbitmq

TREE: dict[str, Any] = {
    "city": {
        "code": "330481",
        "name": "海宁市",
        "host": "10.20.0.1",
        "amqp_listen": ["127.0.0.1", "10.20.0.1"],
    },
    "nodes": [
        {"code": "330481107", "name": "斜桥镇", "tier": "town", "parent": "330481", "host": "10.20.7.1"}
    ],
    "departments": [
        {
            "code": "330481GA",
            "name": "海宁市公安局户政管理",
            "department": "海宁市公安局",
            "items": ["GA-0007", "GA-0001"],
            "host": "10.20.9.1",
            "web_port": 8500,
        }
    ],
}


def tree(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(TREE))
    for key, value in changes.items():
        if key == "department":
            data["departments"][0].update(value)
        elif key == "city":
            data["city"].update(value)
        else:
            data[key] = value
    return data


def test_an_org_tree_lists_its_departments_and_the_broker_s_listeners() -> None:
    parsed = orgtree.parse(tree())
    (department,) = parsed.departments
    assert (department.code, department.items, department.web_port) == (
        "330481GA",
        ("GA-0001", "GA-0007"),
        8500,
    )
    assert parsed.amqp_listen == ("127.0.0.1", "10.20.0.1") and parsed.amqp_port == 5672
    assert orgtree.parse({k: v for k, v in TREE.items() if k != "departments"}).departments == ()


@pytest.mark.parametrize(
    "changes",
    [
        {"department": {"code": "330481107"}},  # a town's code
        {"department": {"code": "330482GA"}},  # another city's
        {"department": {"items": []}},
        {"department": {"items": ["ga-1"]}},
        {"department": {"tier": "department"}},  # an unknown key
        {"city": {"amqp_listen": ["127.0.0.1"]}},  # another host cannot reach a loopback broker
        {"department": {"host": "10.20.7.1", "web_port": 8400}},  # the town's web port
        {
            "nodes": [
                *TREE["nodes"],
                {"code": "330481GA", "name": "x", "tier": "department", "parent": "330481", "host": "h"},
            ]
        },
    ],
)
def test_a_wrong_department_is_refused_with_a_code(changes: dict[str, Any]) -> None:
    with pytest.raises((ConfigError, InputError, TongbanError)):
        orgtree.parse(tree(**changes))


def test_two_departments_never_decide_one_item() -> None:
    second = {**TREE["departments"][0], "code": "330481GAHZ", "items": ["GA-0001"], "web_port": 8501}
    with pytest.raises(ConfigError):
        orgtree.parse(tree(departments=[TREE["departments"][0], second]))


def test_the_inventory_gives_central_the_broker_and_each_department_its_link() -> None:
    built = inventory.build(orgtree.parse(tree()))["all"]
    central = built["children"]["central"]["hosts"]["tongban-330481"]
    assert central["tongban_rabbitmq_departments"] == ["330481GA"]
    assert central["tongban_rabbitmq_listen"] == ["127.0.0.1", "10.20.0.1"]
    host = built["children"]["departments"]["hosts"]["tongban-330481GA"]
    assert host["tongban_department_amqp_host"] == "10.20.0.1" and host["tongban_department_items"] == [
        "GA-0001",
        "GA-0007",
    ]
    assert built["vars"]["tongban_department_central_host"] == "tongban-330481"
    without = inventory.build(orgtree.parse({k: v for k, v in TREE.items() if k != "departments"}))["all"]
    assert (
        "departments" not in without["children"] and "tongban_department_central_host" not in without["vars"]
    )


def spec(base: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dir": str(base),
        "port": 5672,
        "epmd_port": 4370,
        "dist_port": 25672,
        "listen": ["127.0.0.1", "10.20.0.1"],
        "departments": ["330481GA"],
        "passwords": {rabbitmq.CENTRAL_USER: "central-secret-1", "330481GA": "ga-secret-1"},
        "tls": None,
    }
    return data | changes


def test_the_broker_listens_where_it_is_told_and_writes_the_same_files_twice(tmp_path: Path) -> None:
    setup = rabbitmq.setup_from_spec(spec(tmp_path / "b"))
    assert setup.write() is True
    assert setup.write() is False  # a second run changes nothing
    conf = (tmp_path / "b" / "rabbitmq.conf").read_text()
    assert "listeners.tcp.1 = 127.0.0.1:5672" in conf and "listeners.tcp.2 = 10.20.0.1:5672" in conf
    assert "ssl" not in conf
    defs = json.loads((tmp_path / "b" / "definitions.json").read_text())
    assert {u["name"] for u in defs["users"]} == {rabbitmq.CENTRAL_USER, "330481GA"}
    ga = next(p for p in defs["permissions"] if p["user"] == "330481GA")
    assert "tongban\\.department\\.330481GA" in ga["read"] and ga["configure"].startswith("^(rpc")
    rpc = r"^tongban_central\.(submit|contact|file_chunk|submit_file)$"
    assert defs["topic_permissions"][0]["write"] == rpc
    programs = rabbitmq.supervisor_programs(setup)
    assert "[program:epmd]" in programs and "[program:rabbitmq]" in programs and "ERL_EPMD_PORT" in programs


def test_the_broker_takes_tls_where_configured_and_refuses_a_spec_without_a_password(tmp_path: Path) -> None:
    tls = {
        "port": 5671,
        "certfile": "/etc/t/cert.pem",
        "keyfile": "/etc/t/key.pem",
        "cafile": "/etc/t/ca.pem",
    }
    conf = rabbitmq.setup_from_spec(spec(tmp_path, tls=tls)).config_text()
    assert "listeners.ssl.2 = 10.20.0.1:5671" in conf and "ssl_options.certfile = /etc/t/cert.pem" in conf
    with pytest.raises(ConfigError):
        rabbitmq.setup_from_spec(spec(tmp_path, passwords={rabbitmq.CENTRAL_USER: "x"}))
    with pytest.raises(ConfigError):
        rabbitmq.setup_from_spec({"dir": str(tmp_path)})
