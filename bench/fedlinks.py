"""The alliance running: every central a process of its own (``python -m tongban.run DIR
--only sync``: its sync endpoint, its duties, its peer endpoint and pushers), the towns and
villages driven from the benchmark's process over real sync sessions (ZeroMQ, CURVE), each
node on a thread of its own as each runs its own agent, the towns' approvers with them.

A node syncs again :data:`INTERVAL` seconds after a session that moved records (or after its
approver decided something), and waits twice as long after each idle one, at most
:data:`IDLE_MAX` seconds. Every wait is bounded by the caller's deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.fedcities import CitySpec, central_dir, node_dir
from core.clock import Clock, SystemClock
from core.errors import StoreError
from node.desk import Desk
from sync.link.endpoint import ParentServer
from sync.link.transport import sync_once, upstreams_for
from tongban.homes import open_home

INTERVAL = 0.5
IDLE_MAX = 4.0
APPROVER = "shenpi"
READY_SECONDS = 180.0


@dataclass
class Centrals:
    """The centrals' processes, by net."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def signal(self, signum: int) -> None:
        for process in self.processes.values():
            process.send_signal(signum)

    def peak_rss_mb(self) -> dict[str, float]:
        """Each central's peak resident set (``VmHWM``), in MB."""
        out = {}
        for net, process in self.processes.items():
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        out[net] = int(line.split()[1]) / 1e3
        return out


def _listening(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def centrals(root: Path, cities: list[CitySpec], logs: Path) -> Iterator[Centrals]:
    """Start every central's process and wait until its sync and peer endpoints listen."""
    running = Centrals()
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for city in cities:
            with (logs / f"{city.code}.log").open("wb") as log:
                running.processes[city.net] = subprocess.Popen(
                    [sys.executable, "-m", "tongban.run", str(central_dir(root, city)), "--only", "sync"],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
        deadline = time.monotonic() + READY_SECONDS
        for city in cities:
            while not (_listening(city.sync_listen) and _listening(city.peer_listen)):
                process = running.processes[city.net]
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{city.net}'s central did not start: see {logs / city.code}.log")
                time.sleep(0.1)
        yield running
    finally:
        running.signal(signal.SIGCONT)
        running.signal(signal.SIGTERM)
        for process in running.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@dataclass
class Stats:
    sessions: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    approved: int = 0
    approvals_retried: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, ok: bool, error: str) -> None:
        with self.lock:
            self.sessions += 1
            if not ok:
                self.failures[error] += 1


class Agents:
    """Every town and village syncing on its own thread, the towns approving, until stopped."""

    def __init__(self, root: Path, cities: list[CitySpec], clock: Clock | None = None) -> None:
        self.root, self.cities, self.clock = root, cities, clock or SystemClock()
        self.stop = threading.Event()
        self.stats = Stats()
        self.threads: list[threading.Thread] = []
        self.stack = ExitStack()

    def start(self) -> None:
        for city in self.cities:
            town_home = node_dir(self.root, city, city.town)
            town = ParentServer(lambda h=town_home: open_home(h, self.clock), "tcp://127.0.0.1:*").start()
            self.stack.callback(town.stop)
            self._thread(town_home, city.code, city.sync_listen, city.town)
            for village in city.villages:
                self._thread(node_dir(self.root, city, village), city.town, town.endpoint, None)
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)
        self.stack.close()

    def _thread(self, home: Path, parent: str, endpoint: str, approver: str | None) -> None:
        self.threads.append(
            threading.Thread(target=self._run, args=(home, parent, endpoint, approver), daemon=True)
        )

    def _run(self, home: Path, parent: str, endpoint: str, approver: str | None) -> None:
        try:
            with open_home(home, self.clock) as opened, ExitStack() as stack:
                desk = stack.enter_context(Desk.open(home, self.clock)) if approver else None
                ups = upstreams_for(opened.log, parent, endpoint, None, False)
                delay = INTERVAL
                while not self.stop.is_set():
                    result = sync_once(opened, ups, timeout=60, connect_timeout=10)
                    self.stats.note(result.ok, result.error.code.value if result.error else "")
                    busy = result.ok and bool(result.summary.up or result.summary.down)
                    if desk is not None and approver is not None:
                        try:
                            busy = self._approve(desk, approver) > 0 or busy
                        except StoreError as exc:  # busy: the approver tries again soon
                            with self.stats.lock:
                                self.stats.approvals_retried[exc.code.value] += 1
                            busy = True
                    delay = INTERVAL if busy else min(IDLE_MAX, delay * 2)
                    self.stop.wait(delay)
        except Exception as exc:  # a thread's failure is reported, not lost
            self.stats.errors.append(f"{home.name}: {exc!r}")

    def _approve(self, desk: Desk, town: str) -> int:
        """The town's approver decides every case forwarded to it (all approved, in order)."""
        rows = desk.db.conn.execute(
            "SELECT case_no FROM cases WHERE decider = ? AND state = 'forwarded' ORDER BY received", (town,)
        ).fetchall()
        for (case_no,) in rows:
            desk.act(case_no, "approve", {"reason": "材料齐全，准予办理"}, APPROVER)
            with self.stats.lock:
                self.stats.approved += 1
        return len(rows)


def read_only(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.execute("PRAGMA cache_size = -256")
    return conn


def decided(conn: sqlite3.Connection, numbers: list[str]) -> dict[str, int]:
    """The cases of ``numbers`` this store shows decided (approved), each with the second
    its store took the approval in (``received_at``, by the clock every node shares)."""
    marks = ",".join("?" * len(numbers))
    rows = conn.execute(
        "SELECT e.case_no, min(r.received_at) FROM case_events e JOIN records r ON r.id = e.record_id"
        f" JOIN cases c ON c.case_no = e.case_no WHERE e.event = 'approve' AND c.state = 'approved'"
        f" AND e.case_no IN ({marks}) GROUP BY e.case_no",
        numbers,
    )
    return {str(r[0]): int(r[1]) for r in rows}


def revoked(conn: sqlite3.Connection, peer: str) -> int | None:
    """The second this store took in a revocation of its city's agreement with ``peer``
    (None: it holds none)."""
    row = conn.execute(
        "SELECT min(r.received_at) FROM peer_revocations p JOIN records r ON r.id = p.record_id"
        " WHERE p.peer = ?",
        (peer,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
