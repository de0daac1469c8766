"""A key rotation on the same machine keeps the clerks and kiosks logging in.

The village's keys are rotated as ``ansible/rotate-keys.yml`` does it (its chain at
central, the old key revoked, the directory moved aside, a new one enrolled that continues
the chain); its accounts come back with its records, their passwords and the device tokens
are local secrets that only ``tongban provision carry-secrets`` brings over.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from central import authority
from node import identity
from tests.helpers import TOWN, VILLAGE, relay, seeded_random
from tests.integration.test_web import login
from tests.integration.webnode import PASSWORD, build_city, device_token, serve

TONGBAN = str(Path(sys.executable).parent / "tongban")


def carry(retired: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TONGBAN, "provision", "carry-secrets", str(retired), str(home)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rotated_village_keeps_its_clerks_and_kiosks(tmp_path: Path) -> None:
    net = build_city(tmp_path)
    home = net.node_dir(VILLAGE)
    token = device_token(home, "kiosk1")
    # The village's chain reaches central through the town, then its key is retired.
    relay(home, net.node_dir(TOWN), net.clock, up=True)
    relay(net.node_dir(TOWN), net.central_dir, net.clock, up=True)
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.revoke_node(central, VILLAGE, reason="rotation")
        new_token, _ = authority.issue_enroll_token(central, VILLAGE, random=seeded_random("token/2"))
    retired = tmp_path / "retired" / VILLAGE
    retired.parent.mkdir()
    shutil.move(home, retired)
    made = identity.init(
        home,
        tier="village",
        code=VILLAGE,
        name="新阳村便民服务中心",
        parent=TOWN,
        clock=net.clock,
        random=seeded_random(f"{VILLAGE}/2"),
        token=new_token,
    )
    with authority.open_central(net.central_dir, net.clock) as central:
        _, bundle = authority.enroll(central, made.request_path.read_bytes())
    identity.enroll(home, bundle, clock=net.clock, anchor_fingerprint=net.fingerprint)

    with serve(home) as web:
        # The accounts came back with the chain, their secrets did not: locked out.
        status, page = login(web, "wangli")
        assert status == 401 and "E_LOGIN_FAILED" in page
        assert web.api("GET", "/api/v1/items", token)[0] == 401
        done = carry(retired, home)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"accounts": 3, "devices": 1, "pages": 0}
        status, _ = login(web, "wangli", PASSWORD)
        assert status == 303
        assert web.api("GET", "/api/v1/items", token)[0] == 200
    # Run again, it changes nothing; another code's directory is refused.
    again = carry(retired, home)
    assert again.returncode == 0 and json.loads(again.stdout) == {"accounts": 3, "devices": 0, "pages": 0}
    wrong = carry(net.node_dir(TOWN), home)
    assert wrong.returncode != 0 and "E_CONFIG" in wrong.stderr
