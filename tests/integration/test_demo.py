"""`make demo`'s commands: a demo network built, run under a real supervisord, and stopped."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.integration.webnode import free_port

pytestmark = pytest.mark.slow


def tongban(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tongban", *args], capture_output=True, text=True, timeout=180
    )


def test_demo_runs_every_node_under_supervisord_and_stops(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    assert tongban("demo", "init", str(home)).returncode == 0
    port = free_port()
    started = tongban("demo", "start", str(home), "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert "tongban-demo-2026" in started.stdout and "wangli" in started.stdout
        urls = [line.split()[2] for line in started.stdout.splitlines() if "http://127.0.0.1:" in line]
        assert len(urls) == 3
        for url in urls:
            with urllib.request.urlopen(url + "login", timeout=10) as resp:
                assert resp.status == 200 and "通办" in resp.read().decode()
        for code in ("330481107201", "330481107202", "330481107"):
            verified = tongban("verify", str(home / code))
            assert verified.returncode == 0, verified.stdout
    finally:
        stopped = tongban("demo", "stop", str(home))
    assert stopped.returncode == 0 and "demo stopped" in stopped.stdout
    assert not (home / "supervisor.sock").exists()
