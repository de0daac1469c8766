"""The alliance running: every central a process of its own (``python -m tongban.run DIR
--only sync``: its sync endpoint, its duties, its peer endpoint and pushers); the towns and
villages in :data:`PROCESSES` processes of their own (a city's town and villages in the same
one), over real sync sessions (ZeroMQ, CURVE), each node on a thread of its own as each runs
its own agent, the towns' approvers with them.

A node syncs again :data:`INTERVAL` seconds after a session that moved records (or after its
approver decided something), and waits twice as long after each idle one, at most
:data:`IDLE_MAX` seconds. Every wait is bounded by the caller's deadline.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fedcities import CitySpec, central_dir, node_dir
from core.clock import Clock, SystemClock
from core.errors import StoreError
from node.desk import Desk
from sync.link.endpoint import ParentServer
from sync.link.transport import sync_once, upstreams_for
from tongban.homes import open_home

INTERVAL = 0.5
DAY = 86_400.0
IDLE_MAX = 4.0
APPROVER = "shenpi"
READY_SECONDS = 120.0
STARTING = 4
PROCESSES = int(os.environ.get("TONGBAN_BENCH_FED_PROCESSES", "0")) or max(2, os.cpu_count() or 2)
"""The towns' and villages' processes: as many as there are cores (two at least). Under one
interpreter lock the 135 nodes of 45 cities got a fifth of a core on a loaded machine."""


@dataclass
class Centrals:
    """The centrals' processes, by net."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def signal(self, signum: int) -> None:
        for process in self.processes.values():
            process.send_signal(signum)

    def cpu_seconds(self) -> float:
        """The CPU time (user and system) every central's process has used so far."""
        return cpu_seconds(p.pid for p in self.processes.values())

    def peak_rss_mb(self) -> dict[str, float]:
        """Each central's peak resident set (``VmHWM``), in MB."""
        out = {}
        for net, process in self.processes.items():
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        out[net] = int(line.split()[1]) / 1e3
        return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """The CPU time (user and system) the processes ``pids`` have used so far."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _listening(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def centrals(root: Path, cities: list[CitySpec], logs: Path) -> Iterator[Centrals]:
    """Start every central's process, :data:`STARTING` at a time (each checks its store
    first: 45 at once on two cores starve each other), each until its sync and peer
    endpoints listen."""
    running = Centrals()
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    logs.mkdir(parents=True, exist_ok=True)
    try:
        waiting = list(cities)
        starting: dict[str, tuple[CitySpec, float]] = {}
        while waiting or starting:
            while waiting and len(starting) < STARTING:
                city = waiting.pop(0)
                with (logs / f"{city.code}.log").open("wb") as log:
                    running.processes[city.net] = subprocess.Popen(
                        [sys.executable, "-m", "tongban.run", str(central_dir(root, city)), "--only", "sync"],
                        env=env, stdout=log, stderr=subprocess.STDOUT,
                    )  # fmt: skip
                starting[city.net] = (city, time.monotonic() + READY_SECONDS)
            for net, (city, deadline) in list(starting.items()):
                exited = running.processes[net].poll() is not None  # another program's port?
                if not exited and _listening(city.sync_listen) and _listening(city.peer_listen):
                    del starting[net]
                elif exited or time.monotonic() > deadline:
                    tail = (logs / f"{city.code}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{net}'s central did not start; its log ends:\n{tail}")
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

    def plain(self) -> dict[str, object]:
        """What a nodes' process sends back (a lock does not cross processes)."""
        return {
            "sessions": self.sessions, "failures": dict(self.failures), "approved": self.approved,
            "approvals_retried": dict(self.approvals_retried), "errors": list(self.errors),
        }  # fmt: skip

    def add(self, plain: dict[str, Any]) -> None:
        self.sessions += plain["sessions"]
        self.failures.update(plain["failures"])
        self.approved += plain["approved"]
        self.approvals_retried.update(plain["approvals_retried"])
        self.errors.extend(plain["errors"])

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

    def serve(self) -> None:
        """The towns' sync endpoints, listening; the nodes' threads made, not started."""
        for city in self.cities:
            town_home = node_dir(self.root, city, city.town)
            town = ParentServer(lambda h=town_home: open_home(h, self.clock), "tcp://127.0.0.1:*").start()
            self.stack.callback(town.stop)
            self._thread(town_home, city.code, city.sync_listen, city.town)
            for village in city.villages:
                self._thread(node_dir(self.root, city, village), city.town, town.endpoint, None)

    def start(self) -> None:
        """Every node's agent, on the threads :meth:`serve` made."""
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


class Nodes:
    """Every city's town and villages as :class:`Agents` in :data:`PROCESSES` processes of
    their own (the cities dealt out in turn), ready before the links return: :meth:`go`
    starts every node's agent at once."""

    def __init__(self, root: Path, cities: list[CitySpec], processes: int = PROCESSES) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited state
        self.going, self.halting = context.Event(), context.Event()
        self.results: Any = context.Queue()
        shares = [cities[n :: max(1, processes)] for n in range(min(processes, len(cities)))]
        self.processes = [
            context.Process(
                target=_nodes, args=(root, share, self.going, self.halting, self.results), daemon=True
            )
            for share in shares
        ]
        self.stats = Stats()

    def __enter__(self) -> Nodes:
        for process in self.processes:
            process.start()
        ready, deadline = 0, time.monotonic() + READY_SECONDS
        while ready < len(self.processes):
            try:
                kind, detail = self.results.get(timeout=1)
            except queue.Empty:
                if time.monotonic() > deadline or any(p.exitcode is not None for p in self.processes):
                    self._abort()
                    raise RuntimeError("a nodes' process did not start (its error is above)") from None
                continue
            if kind != "ready":
                self._abort()
                raise RuntimeError(f"a nodes' process did not start: {detail}")
            ready += 1
        return self

    def go(self) -> None:
        self.going.set()

    def _abort(self) -> None:
        """A process did not start: the others end at once rather than wait to be told to go."""
        self.halting.set()
        self.going.set()

    def cpu_seconds(self) -> float:
        return cpu_seconds(p.pid for p in self.processes if p.pid is not None)

    def __exit__(self, *exc: object) -> None:
        self.halting.set()
        try:
            for _ in self.processes:
                kind, detail = self.results.get(timeout=180)
                if kind == "stats":
                    self.stats.add(detail)
                else:
                    self.stats.errors.append(str(detail))
        finally:
            for process in self.processes:
                process.join(30)
                if process.is_alive():
                    process.kill()


def _nodes(root: Path, cities: list[CitySpec], going: Any, halting: Any, results: Any) -> None:
    """A nodes' process: its cities' towns serving, every node's agent from ``going`` until
    ``halting``; what it counted, to ``results``."""
    agents = Agents(root, cities)
    try:
        agents.serve()
    except Exception as exc:  # told to the benchmark, which stops
        results.put(("failed", repr(exc)))
        return
    results.put(("ready", ""))
    going.wait(READY_SECONDS * 4)
    agents.start()
    halting.wait(DAY)
    agents.close()
    results.put(("stats", agents.stats.plain()))


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
