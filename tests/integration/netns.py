"""Two network namespaces joined by a veth pair, for sync tests over a shaped link.

:func:`veth_link` creates the namespaces and the pair (names unique to this process and
call), and deletes them again however the test ends, after stopping every process the
test started in them. The link can be slowed (``tc … tbf``: rate and queueing latency on
both ends), made lossy (an nftables ``numgen random`` drop on the input hook of each
namespace) and cut (both ends set down) and restored. Needs root, iproute2 and nftables
(``scripts/system-deps.sh``); without them the test fails and says so: it never skips.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TONGBAN = [sys.executable, "-m", "tongban"]
COMMAND_TIMEOUT = 30.0
_serial = itertools.count(1)


def require_netns() -> None:
    """Fail (not skip) unless this process can make namespaces and shape a link in them."""
    if os.geteuid() != 0:
        pytest.fail("the network-namespace sync tests must run as root (ip netns, tc, nft)", pytrace=False)
    missing = [tool for tool in ("ip", "tc", "nft") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install iproute2 and nftables (scripts/system-deps.sh)",
            pytrace=False,
        )


def run(*args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a system command; fail the test with its output if it fails."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(args)}` exited with {result.returncode}: {result.stderr.strip()}", pytrace=False
        )
    return result


@dataclass
class End:
    """One end of the link: its namespace, device and address."""

    netns: str
    dev: str
    address: str

    def exec_args(self, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *args]


@dataclass
class Link:
    """A veth pair between two namespaces: ``a`` (the parent's side) and ``b`` (the child's)."""

    a: End
    b: End
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def ends(self) -> tuple[End, End]:
        return self.a, self.b

    def shape(self, rate: str, burst: str, latency: str) -> None:
        """Limit both directions to ``rate`` with a token bucket (``tc qdisc … tbf``)."""
        for end in self.ends:
            tbf = ["rate", rate, "burst", burst, "latency", latency]
            run(*end.exec_args(["tc", "qdisc", "replace", "dev", end.dev, "root", "tbf", *tbf]))

    def lose(self, tenths: int) -> None:
        """Drop about ``tenths``/10 of the packets arriving in each namespace (nftables)."""
        rules = (
            "table inet tongban_loss {\n"
            "  chain input { type filter hook input priority 0; policy accept;"
            f" numgen random mod 10 < {tenths} counter drop; }}\n"
            "}\n"
        )
        for end in self.ends:
            result = subprocess.run(
                end.exec_args(["nft", "-f", "-"]), input=rules, capture_output=True, text=True, timeout=30
            )
            if result.returncode != 0:
                pytest.fail(f"nft in {end.netns}: {result.stderr.strip()}", pytrace=False)

    def dropped(self) -> int:
        """Packets the loss rules dropped so far, both namespaces."""
        total = 0
        for end in self.ends:
            listed = run(*end.exec_args(["nft", "list", "table", "inet", "tongban_loss"])).stdout
            total += sum(int(n) for n in re.findall(r"counter packets (\d+)", listed))
        return total

    def cut(self) -> None:
        for end in self.ends:
            run("ip", "-n", end.netns, "link", "set", end.dev, "down")

    def restore(self) -> None:
        for end in self.ends:
            run("ip", "-n", end.netns, "link", "set", end.dev, "up")

    def qdiscs(self, end: End) -> str:
        return run("ip", "netns", "exec", end.netns, "tc", "qdisc", "show", "dev", end.dev).stdout

    def tongban(
        self, end: End, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tongban ARGS`` inside ``end``'s namespace and wait (bounded) for it."""
        return subprocess.run(
            end.exec_args([*TONGBAN, *args]), capture_output=True, text=True, timeout=timeout
        )

    def start(self, end: End, *args: str, log: Path) -> subprocess.Popen[str]:
        """Start ``tongban ARGS`` inside ``end``'s namespace, its output to ``log``; stopped at teardown."""
        with log.open("w") as out:
            proc = subprocess.Popen(
                end.exec_args([*TONGBAN, *args]), stdout=out, stderr=subprocess.STDOUT, text=True
            )
        self.processes.append(proc)
        return proc

    def serve(self, end: End, home: Path, port: int, log: Path, wait: float = 20.0) -> str:
        """Run ``tongban serve-sync`` for ``home`` in ``end``'s namespace; its endpoint once it listens."""
        endpoint = f"tcp://{end.address}:{port}"
        proc = self.start(end, "serve-sync", str(home), "--listen", endpoint, log=log)
        deadline = time.monotonic() + wait
        while "serving sync" not in log.read_text():
            if proc.poll() is not None:
                pytest.fail(f"serve-sync exited with {proc.returncode}: {log.read_text()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"serve-sync did not start within {wait:.0f} s: {log.read_text()}", pytrace=False)
            time.sleep(0.1)
        return endpoint

    def stop_processes(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def veth_link(subnet: int = 0) -> Iterator[Link]:
    """Namespaces ``tbPIDNa``/``tbPIDNb`` joined by a veth pair, 10.77.S.1 and 10.77.S.2 (/24)."""
    require_netns()
    tag = f"tb{os.getpid()}{next(_serial)}"
    third = (os.getpid() + subnet) % 250 + 1
    link = Link(
        End(f"{tag}a", f"{tag}a"[:15], f"10.77.{third}.1"),
        End(f"{tag}b", f"{tag}b"[:15], f"10.77.{third}.2"),
    )
    made: list[str] = []
    try:
        for end in link.ends:
            run("ip", "netns", "add", end.netns)
            made.append(end.netns)
        peer = ["peer", "name", link.b.dev, "netns", link.b.netns]
        run("ip", "link", "add", link.a.dev, "netns", link.a.netns, "type", "veth", *peer)
        for end in link.ends:
            run("ip", "-n", end.netns, "addr", "add", f"{end.address}/24", "dev", end.dev)
            run("ip", "-n", end.netns, "link", "set", end.dev, "up")
            run("ip", "-n", end.netns, "link", "set", "lo", "up")
        yield link
    finally:
        link.stop_processes()
        for netns in made:
            _kill_leftovers(netns)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=COMMAND_TIMEOUT)


def _kill_leftovers(netns: str) -> None:
    """Anything still running in a namespace this module made was started by the test."""
    found = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30)
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def namespaces() -> set[str]:
    """The names of the network namespaces that exist now."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}
