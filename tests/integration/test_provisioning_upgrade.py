"""ansible/upgrade.yml: a rolling upgrade of a three-node city to a new build and back.

The city (central, a town, a village on this machine, as in test_provisioning.py) is
provisioned with a wheel of this checkout, then upgraded to a new build of it (another
version number), then offered a broken build — which central, upgraded first, does not
survive: it is rolled back and nothing after it is touched — and finally moved back to
the first wheel. Every store verifies at the end.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_provisioning import (
    CITY,
    HOST,
    PIP_WHEEL,
    TOWN,
    VILLAGE,
    City,
    build_wheel,
    play_failing,
    shut_down,
    write_tree,
)
from tests.integration.webnode import free_port

pytestmark = pytest.mark.slow
CODES = (CITY, TOWN, VILLAGE)
READ_VERSION = (
    "import importlib.metadata as m, sysconfig; own = [sysconfig.get_path('purelib')];"
    " print(next(d.version for d in m.distributions(path=own) if d.metadata['Name'] == 'tongban'))"
)


def build(root: Path, version: str, *, broken: bool = False) -> Path:
    """A wheel of this checkout numbered ``version``; ``broken``: its programs exit at once."""
    src = root / f"src-{version}"
    shutil.copytree(root / "src", src)
    for name, key in (("pyproject.toml", "version"), ("tongban/__init__.py", "__version__")):
        path = src / name
        text, n = re.subn(
            rf'^{key} = "[^"]+"', f'{key} = "{version}"', path.read_text(encoding="utf-8"), flags=re.M
        )
        assert n == 1, name
        path.write_text(text, encoding="utf-8")
    if broken:
        run = src / "tongban" / "run.py"
        text = run.read_text(encoding="utf-8")
        run.write_text(
            text.replace(
                "    args = parser.parse_args(argv)\n", "    raise SystemExit('a broken build')\n", 1
            )
        )
    out = subprocess.run(
        [*PIP_WHEEL, "-w", str(root / f"wheels-{version}"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (root / f"wheels-{version}").glob("tongban-*.whl")
    return wheel


def versions(city: City) -> dict[str, str]:
    found = {}
    for code in CODES:
        python = str(city.prefix(code) / "venv" / "bin" / "python")
        out = subprocess.run([python, "-c", READ_VERSION], capture_output=True, text=True, timeout=60)
        found[code] = out.stdout.strip()
    return found


def upgrade(wheel: Path, version: str, *more: str) -> tuple[str, ...]:
    return ("-e", f"tongban_common_package={wheel}", "-e", f"tongban_common_version={version}", *more)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    root = tmp_path_factory.mktemp("upgrade")
    ports = {name: free_port() for name in ("cw", "cs", "tw", "ts", "vw")}
    built = City(root, write_tree(root, build_wheel(root), ports), ports)
    try:
        built.play()
        yield built
    finally:
        for code in (VILLAGE, TOWN, CITY):
            shut_down(built.prefix(code))


def test_a_city_moves_to_a_new_build_and_back(city: City) -> None:
    (first,) = (city.root / "wheels").glob("tongban-*.whl")
    assert versions(city) == dict.fromkeys(CODES, "0.1.0")
    recap = city.play(*upgrade(build(city.root, "0.1.1"), "0.1.1"), playbook="upgrade.yml")
    assert all(recap[HOST[code]][1] > 0 for code in CODES)
    assert versions(city) == dict.fromkeys(CODES, "0.1.1")
    for code in CODES:
        backup = {"backup": "RUNNING"} if code == CITY else {}
        assert city.programs(code) == {"web": "RUNNING", "sync": "RUNNING", **backup}, code

    # A build whose programs do not start: central, first, is rolled back; no one else moves.
    broken = build(city.root, "0.1.2", broken=True)
    out = play_failing(
        city, *upgrade(broken, "0.1.2", "-e", "tongban_common_wait_seconds=15"), playbook="upgrade.yml"
    )
    assert f"{HOST[CITY]}: the upgrade from 0.1.1 to 0.1.2 failed at" in out, out[-4000:]
    assert "the host runs 0.1.1 again" in out and "TASK [tongban_node" not in out
    assert versions(city) == dict.fromkeys(CODES, "0.1.1")
    assert city.programs(CITY) == {"web": "RUNNING", "sync": "RUNNING", "backup": "RUNNING"}

    # Back to this version, the same way.
    city.play(*upgrade(first, "0.1.0"), playbook="upgrade.yml")
    assert versions(city) == dict.fromkeys(CODES, "0.1.0")
    for code in CODES:
        out = city.tongban(code, "verify", str(city.home(code)))
        assert "OK: every signature, chain link, certificate and projection checks out" in out, out
