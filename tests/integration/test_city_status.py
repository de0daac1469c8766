"""``tongban city status`` at central: every node in one table, and what needs attention.

A city on real sync sessions over loopback (tests.integration.syncnet); the command runs
as IT staff run it, on central's directory, and exits 1 when any node needs a look.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from central import authority
from central.city_status import DAY, city_status
from sync.link.protocol import VERSIONS
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.forknet import ok
from tests.integration.syncnet import VILLAGE_2, City, build_delegated_city
from tests.integration.test_forks import forked_city
from tongban.cli.city import display_width
from web.health import SOFTWARE_VERSION

TONGBAN = str(Path(sys.executable).parent / "tongban")


def status_at(city: City, now: int) -> dict[str, list[str]]:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        return {row.code: row.attention for row in city_status(central.store.db, now)}


def command(city: City, *args: str) -> tuple[int, str]:
    out = subprocess.run(
        [TONGBAN, "city", "status", str(city.net.central_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode, out.stdout + out.stderr


def synced_city(root: Path) -> City:
    city = build_delegated_city(root)
    with city.serving(CITY, TOWN):
        for _ in range(2):  # the second round reports what the first brought (the catalog)
            for code in (VILLAGE, VILLAGE_2, TOWN):
                ok(city.sync(code))
    return city


def test_a_synced_city_needs_no_attention_and_a_silent_one_is_stale(tmp_path: Path) -> None:
    city = synced_city(tmp_path)
    now = city.clock.now()
    with authority.open_central(city.net.central_dir, city.clock) as central:
        rows = {row.code: row for row in city_status(central.store.db, now)}
    assert set(rows) >= {TOWN, VILLAGE, VILLAGE_2}
    village = rows[VILLAGE]
    assert (village.tier, village.parent, village.forks, village.revoked) == ("village", TOWN, 0, False)
    assert (village.version, village.protocol) == (SOFTWARE_VERSION, VERSIONS[0]) and village.catalog
    assert village.last_contact is not None and village.cert_expires is not None
    assert village.attention == [] and rows[TOWN].attention == []
    # Two hours on with no session: every node is stale.
    later = status_at(city, now + 2 * 3600)
    assert all(any(a.startswith("stale") for a in later[code]) for code in (TOWN, VILLAGE, VILLAGE_2))


def test_a_certificate_near_its_expiry_needs_attention(tmp_path: Path) -> None:
    city = synced_city(tmp_path)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        (row,) = [r for r in city_status(central.store.db, city.clock.now()) if r.code == VILLAGE]
    assert row.cert_expires is not None
    soon = status_at(city, row.cert_expires - 10 * DAY)
    assert (
        "certificate expires in 10 days" in soon[VILLAGE] or "certificate expires in 9 days" in soon[VILLAGE]
    )
    assert "certificate expired" in status_at(city, row.cert_expires + 1)[VILLAGE]


def test_a_fork_is_reported_and_the_command_exits_non_zero(tmp_path: Path) -> None:
    city, _thief, _before = forked_city(tmp_path)
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))  # the town carries the fork's evidence up
    assert "1 fork(s)" in status_at(city, city.clock.now())[VILLAGE]
    code, out = command(city, "--json")
    assert code == 1, out
    nodes = {row["code"]: row for row in json.loads(out)["nodes"]}
    assert nodes[VILLAGE]["forks"] == 1 and "1 fork(s)" in nodes[VILLAGE]["attention"]
    code, out = command(city)
    assert code == 1 and f"! {VILLAGE} 新阳村便民服务中心: 1 fork(s)" in out, out
    assert out.splitlines()[0].split()[:3] == ["code", "name", "tier"]


def test_the_command_prints_every_node_in_one_table(tmp_path: Path) -> None:
    city = synced_city(tmp_path)
    # the city's clock runs an hour behind this machine's: a generous staleness
    code, out = command(city, "--stale-minutes", "600")
    lines = out.splitlines()
    header = "code name tier version protocol last contact backlog rejected forks cert expires catalog"
    assert lines[0].split() == header.split()
    assert [line.split()[0] for line in lines[1:4]] == [TOWN, VILLAGE, VILLAGE_2]
    assert lines[2].split()[1] == "新阳村便民服务中心"  # names beside the codes, aligned
    assert len({display_width(line[: line.index(" village") + 1]) for line in lines[2:4]}) == 1
    assert (code, lines[-1]) == (0, "all 3 nodes fine"), out
    code, out = command(city, "--stale-minutes", "1")  # an hour without a session: stale
    assert code == 1 and f"! {VILLAGE} 新阳村便民服务中心: stale: last contact" in out, out
