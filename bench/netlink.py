"""Two network namespaces joined by a veth pair, for the benchmarks of a shaped link.

:func:`veth_pair` makes the namespaces ``<prefix>a`` (the town's side) and ``<prefix>b``
(the village's), with a prefix unique to the process and the call, and removes them — after
stopping every process started in them — however the benchmark ends. The link can be shaped
(``tc … tbf`` on both ends: rate, burst and queueing latency), made lossy (an nftables
``numgen random`` drop on the input hook of each namespace) and cut (both ends set down) and
restored. Needs root, iproute2 and nftables (``scripts/system-deps.sh``); without them a
:class:`LinkError` says so. Every command and every wait is bounded.
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

COMMAND_TIMEOUT = 30.0
PREFIX = "tbfb"
"""Namespaces and devices of this module start with it (and the process id)."""
_serial = itertools.count(1)


class LinkError(RuntimeError):
    """A namespace, device, qdisc or rule could not be made, or a process did not start."""


def check_tools() -> None:
    if os.geteuid() != 0:
        raise LinkError("a shaped link between network namespaces needs root (ip netns, tc, nft)")
    missing = [tool for tool in ("ip", "tc", "nft") if shutil.which(tool) is None]
    if missing:
        raise LinkError(f"{', '.join(missing)} not found: install iproute2 and nftables")


def run(*args: str, stdin: str | None = None) -> str:
    """Run a system command (bounded); its output, or a :class:`LinkError` with its errors."""
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if done.returncode != 0:
        raise LinkError(f"`{' '.join(args)}` exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class End:
    netns: str
    dev: str
    address: str

    def exec_args(self, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *args]


@dataclass
class Pair:
    """The veth pair: ``town`` (side a) and ``village`` (side b)."""

    town: End
    village: End
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ends(self) -> tuple[End, End]:
        return self.town, self.village

    def shape(self, rate: str = "1mbit", burst: str = "32kbit", latency: str = "400ms") -> None:
        """A token bucket on both ends: each direction at ``rate``, queueing at most ``latency``."""
        for end in self.ends:
            tbf = ["tbf", "rate", rate, "burst", burst, "latency", latency]
            run(*end.exec_args(["tc", "qdisc", "replace", "dev", end.dev, "root", *tbf]))

    def lose(self, one_in: int = 50, drop: int = 1) -> None:
        """Drop about ``drop`` packets in ``one_in`` arriving in each namespace (1 in 50: about
        2 %)."""
        rules = (
            "table inet tongban_bench_loss {\n"
            "  chain input { type filter hook input priority 0; policy accept;"
            f" numgen random mod {one_in} < {drop} counter drop; }}\n"
            "}\n"
        )
        for end in self.ends:
            run(*end.exec_args(["nft", "-f", "-"]), stdin=rules)

    def dropped(self) -> int:
        """Packets the loss rules dropped so far, both namespaces (0 without rules)."""
        total = 0
        for end in self.ends:
            with contextlib.suppress(LinkError):
                listed = run(*end.exec_args(["nft", "list", "table", "inet", "tongban_bench_loss"]))
                total += sum(int(n) for n in re.findall(r"counter packets (\d+)", listed))
        return total

    def qdiscs(self) -> str:
        return "".join(run(*end.exec_args(["tc", "qdisc", "show", "dev", end.dev])) for end in self.ends)

    def cut(self) -> None:
        for end in self.ends:
            run("ip", "-n", end.netns, "link", "set", end.dev, "down")

    def restore(self) -> None:
        for end in self.ends:
            run("ip", "-n", end.netns, "link", "set", end.dev, "up")

    def start(self, end: End, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``args`` in ``end``'s namespace, output to ``log``; stopped when the pair goes."""
        with log.open("wb") as out:
            proc = subprocess.Popen(end.exec_args(args), stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(proc)
        return proc

    def python(self, end: End, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        return self.start(end, [sys.executable, *args], log)

    def wait_for(self, proc: subprocess.Popen[bytes], log: Path, text: str, seconds: float = 30.0) -> None:
        """Wait (bounded) until ``text`` appears in ``log``; a :class:`LinkError` if it does not."""
        deadline = time.monotonic() + seconds
        while text not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise LinkError(f"{proc.args!r} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise LinkError(
                    f"{proc.args!r}: no {text!r} within {seconds:.0f} s: {log.read_text()[-2000:]}"
                )
            time.sleep(0.05)

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
        self.processes.clear()


@contextlib.contextmanager
def veth_pair(subnet: int = 0) -> Iterator[Pair]:
    """Namespaces joined by a veth pair, 10.78.S.1 (town) and 10.78.S.2 (village), /24."""
    check_tools()
    tag = f"{PREFIX}{os.getpid()}{next(_serial)}"[:13]
    third = (os.getpid() + subnet) % 250 + 1
    pair = Pair(End(f"{tag}a", f"{tag}a", f"10.78.{third}.1"), End(f"{tag}b", f"{tag}b", f"10.78.{third}.2"))
    made: list[str] = []
    try:
        for end in pair.ends:
            run("ip", "netns", "add", end.netns)
            made.append(end.netns)
        peer = ["peer", "name", pair.village.dev, "netns", pair.village.netns]
        run("ip", "link", "add", pair.town.dev, "netns", pair.town.netns, "type", "veth", *peer)
        for end in pair.ends:
            run("ip", "-n", end.netns, "addr", "add", f"{end.address}/24", "dev", end.dev)
            run("ip", "-n", end.netns, "link", "set", end.dev, "up")
            run("ip", "-n", end.netns, "link", "set", "lo", "up")
        yield pair
    finally:
        pair.stop_processes()
        for netns in made:
            _kill_leftovers(netns)
            # deleting a namespace deletes the veth end in it, and so the pair
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=COMMAND_TIMEOUT)


def _kill_leftovers(netns: str) -> None:
    """Anything still running in a namespace this module made was started by the benchmark."""
    found = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30)
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def namespaces() -> set[str]:
    """The network namespaces that exist now."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}
