"""What every host process of the simulated city does (:mod:`bench.city.hosts`): its spec,
the running clock, being online or not, the commands every host answers (``clock``,
``online``, ``offline``, ``targets``, ``heads``, ``stats``), and the checks against the
targets that report on the events queue when a node came to hold the catalog release, the
revocation and finally everything (``("reached", code, what, monotonic)``).
"""

from __future__ import annotations

import resource
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.city.clock import SimClock
from sync.link.transport import Traffic
from tongban.homes import open_home

CHECK_EVERY = 0.2


@dataclass
class HostSpec:
    kind: str  # "central", "town" or "village"
    root: str
    codes: list[str]
    central: str
    parent_endpoint: str = ""  # a town's: central's; villages': their town's
    interval: float = 1.0
    workers: int = 19


@dataclass
class Targets:
    """What the nodes of a host must hold for the city to have converged."""

    heads: dict[str, int]  # origin -> the seq its own head had when the links came back
    release: bytes
    revocation: bytes


@dataclass
class NodeProgress:
    reached: set[str] = field(default_factory=set)  # "release", "revocation", "all"


def rss_mb() -> tuple[float, float]:
    """Resident memory now and at its peak, in MB, from ``/proc/self/status`` (whose peak,
    unlike ``getrusage``'s, starts afresh at ``exec``: not the coordinator's that forked us)."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1e3  # kB
    return fields["VmRSS"], fields["VmHWM"]


class Host:
    """What every host does: the clock, being online, checking targets, reporting."""

    def __init__(self, spec: HostSpec, events: Any) -> None:
        self.spec = spec
        self.root = Path(spec.root)
        self.events = events
        self.clock = SimClock(0)
        self.online = False
        self.targets: Targets | None = None
        self.progress = {code: NodeProgress() for code in spec.codes}
        self.traffic = Traffic()
        self.sessions = 0
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def home(self, code: str) -> Path:
        return self.root / code

    def hello(self) -> dict[str, Any]:
        return {}

    def wait(self) -> float:
        return 0.05 if self.online else 1.0

    def step(self) -> None:
        """Called between commands while online."""

    def close(self) -> None:
        """Called when the host stops."""

    # -- commands shared by every host ------------------------------------------------

    def do_clock(self, at: int, wall: float | None = None) -> None:
        if wall is None:
            self.clock.pin(at)
        else:
            self.clock.run(at, wall)

    def do_online(self) -> None:
        self.online = True

    def do_offline(self) -> None:
        self.online = False

    def do_targets(self, heads: dict[str, int], release: bytes, revocation: bytes) -> None:
        self.targets = Targets(heads, release, revocation)

    def do_heads(self) -> dict[str, int]:
        """Each hosted node's own head seq."""
        out = {}
        for code in self.spec.codes:
            with open_home(self.home(code), self.clock) as opened:
                head = opened.log.head(code)
                out[code] = head.seq if head else 0
        return out

    def do_stats(self) -> dict[str, Any]:
        now, peak = rss_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "kind": self.spec.kind,
            "nodes": len(self.spec.codes),
            "rss_mb": now,
            "peak_rss_mb": peak,
            "sessions": self.sessions,
            "failures": dict(self.failures),
            "sent": self.traffic.sent,
            "received": self.traffic.received,
        }

    # -- the checks -----------------------------------------------------------------------

    def check(self, code: str, conn: sqlite3.Connection) -> None:
        """Report what ``code`` newly holds of its targets (the caller's connection)."""
        targets, progress = self.targets, self.progress[code]
        if targets is None or "all" in progress.reached:
            return
        for what, rid in (("release", targets.release), ("revocation", targets.revocation)):
            if what in progress.reached:
                continue
            row = conn.execute("SELECT received_at FROM records WHERE id = ?", (rid,)).fetchone()
            if row is not None:
                # When the store committed it (a session can go on for long after its
                # revocations phase), not when this check saw it.
                self._reached(code, what, self.clock.wall_by(row[0]))
        if len(progress.reached) == 2 and self.holds_all(code, conn, targets):
            self._reached(code, "all")

    def holds_all(self, code: str, conn: sqlite3.Connection, targets: Targets) -> bool:
        raise NotImplementedError

    def _reached(self, code: str, what: str, wall: float | None = None) -> None:
        """Report ``what`` at ``code``: now, or at the wall-clock time ``wall`` (if earlier)."""
        self.progress[code].reached.add(what)
        ago = max(0.0, time.time() - wall) if wall is not None else 0.0
        self.events.put(("reached", code, what, time.monotonic() - ago))

    def note_session(self, code: str, ok: bool, traffic: Traffic, error: str = "") -> None:
        with self._lock:
            self.sessions += 1
            self.traffic.add(traffic)
            if not ok:
                self.failures[error] = self.failures.get(error, 0) + 1


def heads_reached(conn: sqlite3.Connection, heads: dict[str, int]) -> bool:
    """Whether every origin in ``heads`` is held up to (at least) its seq."""
    if not heads:
        return True
    marks = ",".join("?" * len(heads))
    held = dict(
        conn.execute(
            f"SELECT origin, max(seq) FROM records WHERE origin IN ({marks}) GROUP BY origin", list(heads)
        ).fetchall()
    )
    return all(held.get(origin, 0) >= seq for origin, seq in heads.items())
