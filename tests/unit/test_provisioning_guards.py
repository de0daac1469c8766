"""The guards of a provisioning run that need no host: the roles' list of known
variables, and the lock that keeps two runs of one org tree apart."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import yaml

from core.errors import ErrorCode

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"
TONGBAN = str(Path(sys.executable).parent / "tongban")


def known() -> set[str]:
    data = yaml.safe_load((ROLES / "tongban_common" / "vars" / "main.yml").read_text(encoding="utf-8"))
    return set(data["tongban_common_known_variables"])


def test_every_role_default_is_a_known_variable() -> None:
    defaults: set[str] = set()
    for path in ROLES.glob("*/defaults/main.yml"):
        defaults |= set(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert defaults <= known(), sorted(defaults - known())
    assert "tongban_target" in known()  # passed with -e to rotate-keys.yml and replace-node.yml


def test_a_second_run_of_one_org_tree_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    tree = tmp_path / "haining.yaml"
    tree.write_text("city: {}\n", encoding="utf-8")
    with open(tmp_path / "haining.yaml.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("pid 4242 since 2026-03-02 10:00:00 +0800\n")
        lock.flush()
        out = subprocess.run(
            [TONGBAN, "provision", "apply", "--playbook", str(REPO / "ansible" / "site.yml"), str(tree)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode != 0
    assert ErrorCode.PROVISION_BUSY.value in out.stderr and "pid 4242" in out.stderr, out.stderr
    assert not (tmp_path / "haining.inventory.yml").exists()  # nothing was written meanwhile
