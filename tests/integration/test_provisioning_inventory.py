"""The org-tree file, the inventory written from it, and ansible-lint on ansible/.

The demo's org tree (central/demo/org-tree.yaml) with a host for every center must give a
valid inventory that ansible-inventory reads; each kind of mistake in a tree is refused
with a code. ansible-lint runs from its own venv (``make ansible-lint`` makes it).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ErrorCode, TongbanError
from provisioning import inventory, orgtree

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def demo_tree() -> dict[str, Any]:
    """The demo org tree, every center on a host of its own."""
    data = yaml.safe_load((REPO / "central" / "demo" / "org-tree.yaml").read_text(encoding="utf-8"))
    data["city"]["host"] = "10.20.0.1"
    for index, node in enumerate(data["nodes"], start=2):
        node["host"] = f"10.20.{index // 250}.{index % 250}"
    return data


def test_the_demo_tree_gives_one_host_per_center_with_its_links() -> None:
    data = demo_tree()
    tree = orgtree.parse(data)
    built = inventory.build(tree)
    groups = built["all"]["children"]
    assert list(groups["central"]["hosts"]) == ["tongban-330481"]
    tiers = groups["nodes"]["children"]
    assert list(tiers) == ["city", "town", "village"]
    assert len(tiers["town"]["hosts"]) == 12
    assert sum(len(g["hosts"]) for g in tiers.values()) == len(data["nodes"])
    town = tiers["town"]["hosts"]["tongban-330481101"]
    village = tiers["village"]["hosts"]["tongban-330481101201"]
    city_hall = tiers["city"]["hosts"]["tongban-330481000"]
    central = groups["central"]["hosts"]["tongban-330481"]
    assert central["tongban_central_sync_listen"] == "tcp://0.0.0.0:7700"
    assert town["tongban_node_sync_parent"] == "tcp://10.20.0.1:7700"
    assert town["tongban_node_sync_listen"] == "tcp://0.0.0.0:7700"
    assert village["tongban_node_sync_parent"] == f"tcp://{town['ansible_host']}:7700"
    assert village["tongban_node_sync_fallback"] == "tcp://10.20.0.1:7700"
    assert village["tongban_node_sync_listen"] == "" and city_hall["tongban_node_sync_listen"] == ""
    assert village["tongban_node_parent"] == "330481101" and village["tongban_node_tier"] == "village"
    assert "ansible_connection" not in village  # remote hosts: Ansible's default connection
    assert built["all"]["vars"]["tongban_node_central_host"] == "tongban-330481"


def test_ansible_reads_the_written_inventory(tmp_path: Path) -> None:
    data = demo_tree()
    data["city"]["host"] = "127.0.0.1"
    path = tmp_path / "hosts.yml"
    path.write_text(inventory.render(orgtree.parse(data)), encoding="utf-8")
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert "tongban-330481101201" in listed["village"]["hosts"]
    assert listed["nodes"]["children"] == ["city", "town", "village"]
    central = listed["_meta"]["hostvars"]["tongban-330481"]
    assert central["ansible_connection"] == "local"  # a center on this machine
    assert central["tongban_central_name"] == "海宁市"


def refused(change: Any) -> TongbanError:
    data = demo_tree()
    change(data)
    with pytest.raises(TongbanError) as info:
        orgtree.parse(copy.deepcopy(data))
    return info.value


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        (lambda d: d["nodes"][1].update(colour="red"), ErrorCode.CONFIG, "unknown key 'colour'"),
        (lambda d: d["nodes"][1].update(code=330481001), ErrorCode.CONFIG, "must be quoted"),
        (lambda d: d["nodes"][1].pop("host"), ErrorCode.CONFIG, "'host' is required"),
        (lambda d: d["nodes"][-1].update(sync_port=7800), ErrorCode.CONFIG, "serves no sync endpoint"),
        (lambda d: d["nodes"][1].update(web_port=70000), ErrorCode.CONFIG, "port number"),
        (lambda d: d["nodes"][1].update(tier="hamlet"), ErrorCode.CONFIG, "'tier' must be"),
        (lambda d: d["nodes"].append(dict(d["nodes"][1])), ErrorCode.CONFIG, "appears twice"),
        (lambda d: d["nodes"][1].update(parent="330482"), ErrorCode.ADMIN_CODE, "parent must be"),
        (
            lambda d: d["nodes"][1].update(code="330482001", parent="330482"),
            ErrorCode.CONFIG,
            "not in the city",
        ),
        (lambda d: d.update(vars={"colour": 1}), ErrorCode.CONFIG, "not a tongban_* or ansible_*"),
        (lambda d: d.update(extra=1), ErrorCode.CONFIG, "unknown key 'extra'"),
    ],
)
def test_a_mistake_in_the_tree_is_refused_with_its_code(change: Any, code: ErrorCode, says: str) -> None:
    error = refused(change)
    assert error.code is code and says in (error.detail or ""), error.detail


def test_a_village_whose_town_is_missing_is_refused() -> None:
    def drop_town(data: dict[str, Any]) -> None:
        data["nodes"] = [n for n in data["nodes"] if n["code"] != "330481101"]

    error = refused(drop_town)
    assert "parent 330481101 is not a town of the tree" in (error.detail or "")


def test_two_centers_on_one_port_of_one_host_are_refused() -> None:
    def share(data: dict[str, Any]) -> None:
        data["nodes"][2]["host"] = data["nodes"][1]["host"]

    error = refused(share)
    assert "port 8400 on" in (error.detail or "")
    data = demo_tree()
    data["nodes"][2].update(host=data["nodes"][1]["host"], web_port=8401, sync_port=7701, prefix="/srv/t2")
    orgtree.parse(data)  # its own port and prefix: fine


def test_state_of_a_directory_that_holds_no_center(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(BIN / "tongban"), "provision", "state", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and json.loads(out.stdout) == {"role": "none"}


def test_ansible_lint_passes_with_the_production_profile() -> None:
    lint = Path(sys.prefix) / "lint" / "bin" / "ansible-lint"
    assert lint.exists(), "ansible-lint's own venv is missing: run 'make ansible-lint'"
    out = subprocess.run(
        [str(lint), "--offline", "--nocolor", "--profile", "production", "ansible/"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PATH": f"{lint.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Profile 'production' was required, and it passed" in out.stdout + out.stderr
