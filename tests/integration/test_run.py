"""`tongban node run` / `tongban central run`: what a directory runs, in real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from core.errors import ErrorCode, TongbanError
from tests.helpers import CITY, TOWN, VILLAGE, wait_for
from tests.integration.syncnet import City, build_city
from tests.integration.webnode import free_port
from tongban.demo_files import set_sync_section
from tongban.processes import plan_for


def tongban(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tongban", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_city(tmp_path)


def names(home: Path, only: str | None = None) -> list[str]:
    return [service.name for _, service, _ in plan_for(home, only=only).services]


def test_what_each_store_runs_follows_its_sync_section(city: City) -> None:
    assert names(city.home(VILLAGE)) == ["node_web"]
    assert "works offline only" in "\n".join(plan_for(city.home(VILLAGE)).lines)
    set_sync_section(
        city.home(TOWN) / "node.toml", {"parent": "tcp://127.0.0.1:7700", "listen": "tcp://127.0.0.1:7701"}
    )
    assert names(city.home(TOWN)) == ["node_web", "sync_endpoint", "sync_agent"]
    assert names(city.home(TOWN), "sync") == ["sync_endpoint", "sync_agent"]
    assert names(city.home(TOWN), "web") == ["node_web"]
    with pytest.raises(TongbanError) as refused:
        plan_for(city.home(VILLAGE), only="sync")
    assert refused.value.code is ErrorCode.CONFIG


def test_central_without_an_endpoint_runs_its_web_and_duties_and_says_so(city: City) -> None:
    assert names(city.home(CITY)) == ["central_web", "central_duties"]
    assert names(city.home(CITY), "web") == ["central_web"]
    assert "no [sync] listen is configured" in "\n".join(plan_for(city.home(CITY)).lines)
    set_sync_section(city.home(CITY) / "central.toml", {"listen": "tcp://127.0.0.1:7700"})
    assert names(city.home(CITY), "sync") == ["sync_endpoint", "central_duties"]


@pytest.mark.slow
def test_a_town_runs_its_web_and_serves_its_villages_in_one_process(city: City) -> None:
    central_ep, town_ep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    web = f"127.0.0.1:{free_port()}"
    set_sync_section(city.home(CITY) / "central.toml", {"listen": central_ep})
    set_sync_section(city.home(TOWN) / "node.toml", {"parent": central_ep, "listen": town_ep, "interval": 1})
    city.endpoints.update({CITY: central_ep, TOWN: town_ep})
    bin_dir = Path(sys.executable).parent
    central = subprocess.Popen(
        [bin_dir / "tongban", "central", "run", str(city.home(CITY)), "--only", "sync"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    town = subprocess.Popen(
        [bin_dir / "tongban", "node", "run", str(city.home(TOWN)), "--listen", web],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: answers(f"http://{web}/login"), "the town's web service", 60, 0.3)
        grants = "SELECT count(*) FROM grants WHERE aud = ?"
        wait_for(lambda: city.count(TOWN, grants, TOWN) > 0, "the town's agent to fetch its grants", 60, 0.3)
        result = city.sync(VILLAGE)
        assert result.ok and result.parent == TOWN, result.error
    finally:
        for proc in (town, central):
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=20)[0].decode() for proc in (town, central)]
    assert town.returncode == 0 and central.returncode == 0, outputs
    assert "sync endpoint for its villages" in outputs[0] and "sync agent" in outputs[0]
    city.verify_all()


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except OSError:
        return False
    return True
