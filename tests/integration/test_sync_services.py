"""The nameko services in real processes: central's endpoint, a town running both sides."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import CITY, TOWN, VILLAGE, wait_for
from tests.integration.syncnet import City, build_city, delegate, take_in
from tests.integration.webnode import free_port

NAMEKO = str(Path(sys.executable).parent / "nameko")


@contextmanager
def nameko(home: Path, *services: str, **config: str) -> Iterator[subprocess.Popen[bytes]]:
    path = home / "nameko.yaml"
    lines = [f"SYNC_HOME: '{home}'"] + [f"{key}: '{value}'" for key, value in config.items()]
    path.write_text("\n".join(lines) + "\n")
    log = open(home / "nameko.log", "wb")  # noqa: SIM115 — closed below
    proc = subprocess.Popen(
        [NAMEKO, "run", "--config", str(path), *[f"tongban.sync_services:{s}" for s in services]],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def add_sync_section(home: Path, text: str) -> None:
    config = home / ("central.toml" if (home / "central.toml").exists() else "node.toml")
    config.write_text(config.read_text() + "\n[sync]\n" + text)


@pytest.mark.slow
def test_a_town_relays_a_villages_case_to_central_under_nameko(tmp_path: Path) -> None:
    city: City = build_city(tmp_path)
    central_port, town_port = free_port(), free_port()
    central_ep, town_ep = f"tcp://127.0.0.1:{central_port}", f"tcp://127.0.0.1:{town_port}"
    add_sync_section(city.home(CITY), f'listen = "{central_ep}"\n')
    add_sync_section(city.home(TOWN), f'parent = "{central_ep}"\nlisten = "{town_ep}"\ninterval = 1\n')
    add_sync_section(city.home(VILLAGE), f'parent = "{town_ep}"\nfallback = "{central_ep}"\ninterval = 1\n')
    city.endpoints.update({CITY: central_ep, TOWN: town_ep})
    with (
        nameko(city.home(CITY), "SyncEndpoint") as central,
        nameko(city.home(TOWN), "SyncEndpoint", "SyncAgent") as town,
    ):
        grants = "SELECT count(*) FROM grants WHERE aud = ?"
        wait_for(lambda: city.count(TOWN, grants, TOWN) > 0, "the town's agent to fetch its grants")
        assert delegate(city, VILLAGE) > 0
        wait_for(
            lambda: city.sync(VILLAGE).ok and city.count(VILLAGE, grants, VILLAGE) > 0, "the village grants"
        )
        with nameko(city.home(VILLAGE), "SyncAgent") as village:
            case_no = take_in(city, VILLAGE)
            cases = "SELECT count(*) FROM cases WHERE case_no = ?"
            wait_for(lambda: city.count(CITY, cases, case_no) == 1, "the case to reach central")
            receipts = "SELECT count(*) FROM records WHERE kind = 'link.receipt' AND origin = ?"
            wait_for(lambda: city.count(CITY, receipts, TOWN) > 0, "the town's receipts to reach central")
            assert village.poll() is None
        assert central.poll() is None and town.poll() is None
    city.verify_all()
