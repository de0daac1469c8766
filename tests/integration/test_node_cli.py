"""`tongban node clerk …` and `tongban node device …` as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import CITY, TOWN, make_network


def tongban(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tongban", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_clerk_and_device_commands(tmp_path: Path) -> None:
    net = make_network(tmp_path)
    home = str(net.add_node(TOWN, "town", CITY))
    added = tongban(
        "node",
        "clerk",
        "add",
        home,
        "shenpi",
        "--name",
        "沈批",
        "--role",
        "approver",
        "--role",
        "clerk",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert added.returncode == 0, added.stderr
    weak = tongban(
        "node",
        "clerk",
        "add",
        home,
        "other",
        "--name",
        "x",
        "--role",
        "clerk",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 3 and "E_PASSWORD_WEAK" in weak.stderr
    again = tongban(
        "node",
        "clerk",
        "add",
        home,
        "shenpi",
        "--name",
        "x",
        "--role",
        "clerk",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert again.returncode == 3 and "E_ACCOUNT_EXISTS" in again.stderr
    assert (
        tongban(
            "node", "clerk", "passwd", home, "shenpi", "--password-stdin", stdin="another long one\n"
        ).returncode
        == 0
    )
    assert tongban("node", "clerk", "disable", home, "shenpi").returncode == 0
    listed = tongban("node", "clerk", "list", home).stdout
    assert "shenpi" in listed and "disabled" in listed and "approver" in listed
    unknown = tongban("node", "clerk", "disable", home, "nobody")
    assert unknown.returncode == 3 and "E_ACCOUNT_UNKNOWN" in unknown.stderr
    token = tongban("node", "device", "add", home, "kiosk1").stdout.strip()
    assert token.startswith("tbd_")
    assert tongban("node", "device", "disable", home, "kiosk1").returncode == 0
    log = tongban("log", home, "--kind", "clerk.set").stdout
    assert len(log.strip().splitlines()) == 2 and "sys:cli" in log  # created, disabled
