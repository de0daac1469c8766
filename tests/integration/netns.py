"""Two network namespaces joined by a veth pair, for sync tests over a shaped link.

The namespaces, the pair, the shaping (``tc … tbf``), the loss rules (nftables) and the cut
are the benchmarks' (:mod:`bench.netlink`): :func:`veth_link` makes them for a test and
removes them however it ends, after stopping every process started in them, and a link
that cannot be made fails the test with what went wrong. Needs root, iproute2 and nftables
(``scripts/system-deps.sh``); without them the test fails and says so: it never skips.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import netlink
from bench.netlink import End, namespaces

__all__ = ["End", "Link", "namespaces", "veth_link"]

TONGBAN = [sys.executable, "-m", "tongban"]


@dataclass
class Link:
    """A veth pair between two namespaces: ``a`` (the parent's side) and ``b`` (the child's)."""

    pair: netlink.Pair

    @property
    def a(self) -> End:
        return self.pair.town

    @property
    def b(self) -> End:
        return self.pair.village

    def shape(self, rate: str, burst: str, latency: str) -> None:
        """Limit both directions to ``rate`` with a token bucket (``tc qdisc … tbf``)."""
        self.pair.shape(rate, burst, latency)

    def lose(self, tenths: int) -> None:
        """Drop about ``tenths``/10 of the packets arriving in each namespace (nftables)."""
        self.pair.lose(10, tenths)

    def dropped(self) -> int:
        """Packets the loss rules dropped so far, both namespaces."""
        return self.pair.dropped()

    def cut(self) -> None:
        self.pair.cut()

    def restore(self) -> None:
        self.pair.restore()

    def qdiscs(self, end: End) -> str:
        return netlink.run(*end.exec_args(["tc", "qdisc", "show", "dev", end.dev]))

    def tongban(
        self, end: End, *args: str, timeout: float = netlink.COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tongban ARGS`` inside ``end``'s namespace and wait (bounded) for it."""
        return subprocess.run(
            end.exec_args([*TONGBAN, *args]), capture_output=True, text=True, timeout=timeout
        )

    def start(self, end: End, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start ``tongban ARGS`` inside ``end``'s namespace, its output to ``log``; stopped at teardown."""
        return self.pair.start(end, [*TONGBAN, *args], log)

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


@contextlib.contextmanager
def veth_link(subnet: int = 0) -> Iterator[Link]:
    """Namespaces joined by a veth pair (:func:`bench.netlink.veth_pair`); a link that cannot
    be made, shaped, made lossy or cut fails the test with the command's own error."""
    try:
        with netlink.veth_pair(subnet) as pair:
            yield Link(pair)
    except netlink.LinkError as failed:
        pytest.fail(str(failed), pytrace=False)
