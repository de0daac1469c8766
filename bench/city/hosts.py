"""The processes of the simulated city, and the commands the coordinator sends them.

Each host is one process (``spawn``) serving one or more nodes from their own directories,
with the node's own SQLite file, keys and certificate, over real ZeroMQ with CURVE on
127.0.0.1:

``central``
    central's :class:`sync.link.endpoint.ParentServer`; publishes and revokes when told.
``town``
    a town's endpoint for its villages, its link up to central (a session every
    ``interval`` seconds while online) and its approver, who decides every proxy case
    forwarded to the town as it arrives.
``village``
    several villages: the month's walk-ins at their desks while cut off, and once online a
    session of each every ``interval`` seconds (each village on a thread of its own, as
    each runs its own agent).

A host runs the coordinator's commands one at a time (``(name, args)`` over a pipe, the
answer back the same way) and, while online, its sessions in between. When given
targets (what each node should hold once the city has converged), it checks them after
every session and reports on the events queue when a node came to hold the catalog
release and the revocation (the second its store committed each, by the running clock)
and finally everything (``("reached", code, what, monotonic)``).
"""

from __future__ import annotations

import contextlib
import resource
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.city.clock import SimClock
from bench.city.plan import CityPlan, month_for
from central import authority
from core.catalog import Mode
from node.desk import Desk, IntakeForm
from sync.link.endpoint import ParentServer
from sync.link.transport import Traffic, sync_once, upstreams_for
from sync.projection.catalog import current_catalog
from tongban.homes import OpenedHome, open_home

CHECK_EVERY = 0.2
IDLE_MAX = 8.0
APPROVER = "shenpi"
CLERK = "wangli"


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
            opened = open_home(self.home(code), self.clock)
            try:
                head = opened.log.head(code)
                out[code] = head.seq if head else 0
            finally:
                opened.close()
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


# -- central ---------------------------------------------------------------------------------


class CentralHost(Host):
    def __init__(self, spec: HostSpec, events: Any) -> None:
        super().__init__(spec, events)
        self.code = spec.codes[0]
        self.dir = self.root / "central"
        self.server = ParentServer(lambda: open_home(self.dir, self.clock), "tcp://127.0.0.1:*").start()
        self.conn: sqlite3.Connection | None = None
        self.next_check = 0.0

    def home(self, code: str) -> Path:
        return self.dir

    def hello(self) -> dict[str, Any]:
        return {"endpoint": self.server.endpoint}

    def step(self) -> None:
        if self.targets is None or time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + CHECK_EVERY
        if self.conn is None:
            self.conn = sqlite3.connect(self.dir / "central.db")
            # The measurement's own connection: a small page cache, not counted as central's.
            self.conn.execute("PRAGMA cache_size = -256")
        self.check(self.code, self.conn)

    def holds_all(self, code: str, conn: sqlite3.Connection, targets: Targets) -> bool:
        others = {o: s for o, s in targets.heads.items() if o != code}
        if not heads_reached(conn, others):
            return False
        return conn.execute("SELECT count(*) FROM cases WHERE state = 'forwarded'").fetchone()[0] == 0

    def do_publish(self, at: int) -> bytes:
        """The next catalog release: the current items, one time limit shortened (the seeds'
        承诺时限 compression)."""
        self.clock.pin(at)
        with authority.open_central(self.dir, self.clock) as central:
            catalog = current_catalog(central.store.db)
            assert catalog is not None
            items = list(catalog.items)
            at = next(n for n, item in enumerate(items) if item.time_limit_days > 1)
            items[at] = replace(items[at], time_limit_days=items[at].time_limit_days - 1)
            record, _ = authority.publish_catalog(central, items, actor="shixiang")
            return record.id

    def do_revoke(self, at: int, town: str) -> bytes:
        """Revoke ``town``'s smallest root grant (a mis-scoped grant, found in an audit)."""
        self.clock.pin(at)
        with authority.open_central(self.dir, self.clock) as central:
            row = central.store.db.conn.execute(
                "SELECT id FROM grants WHERE aud = ? AND issuer = ? ORDER BY length(items), id LIMIT 1",
                (town, self.code),
            ).fetchone()
            record = authority.revoke_grant(central, bytes(row[0]), "审计发现授权范围有误", actor="shouquan")
            return record.id

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.stop()


# -- towns -----------------------------------------------------------------------------------


class TownHost(Host):
    def __init__(self, spec: HostSpec, events: Any) -> None:
        super().__init__(spec, events)
        self.code = spec.codes[0]
        self.server = ParentServer(
            lambda: open_home(self.home(self.code), self.clock), "tcp://127.0.0.1:*"
        ).start()
        self.children: list[str] = []
        self.desk: Desk | None = None
        self.next_session = 0.0
        self.next_check = 0.0
        self.approved = 0

    def hello(self) -> dict[str, Any]:
        return {"endpoint": self.server.endpoint}

    def do_sync(self) -> bool:
        return self._session()

    def do_delegate(self, children: list[str], valid_days: int) -> int:
        """Pass every grant the town holds down to each of ``children``; how many were signed."""
        self.children = children
        made = 0
        with Desk.open(self.home(self.code), self.clock) as desk:
            delegation = desk.delegation
            for parent in delegation.parents():
                for village in children:
                    with contextlib.suppress(Exception):  # items not offered at village level
                        made += len(
                            delegation.delegate(village, parent.id, list(parent.items), valid_days, "guanli")
                        )
        return made

    def step(self) -> None:
        now = time.monotonic()
        if now >= self.next_session:
            self._session()
            self.next_session = time.monotonic() + self.spec.interval
        if time.monotonic() >= self.next_check:
            self._approve()
            if self.desk is not None:
                self.check(self.code, self.desk.db.conn)
            self.next_check = time.monotonic() + CHECK_EVERY

    def holds_all(self, code: str, conn: sqlite3.Connection, targets: Targets) -> bool:
        wanted = {o: s for o, s in targets.heads.items() if o == self.spec.central or o in self.children}
        if not heads_reached(conn, wanted):
            return False
        forwarded = conn.execute(
            "SELECT count(*) FROM cases WHERE decider = ? AND state = 'forwarded'", (code,)
        ).fetchone()[0]
        return bool(forwarded == 0)

    def _session(self) -> bool:
        opened = open_home(self.home(self.code), self.clock)
        try:
            ups = upstreams_for(opened.log, opened.parent, self.spec.parent_endpoint, None, False)
            result = sync_once(opened, ups, timeout=120)
        finally:
            opened.close()
        error = result.error.code.value if result.error else ""
        self.note_session(self.code, result.ok, result.traffic, error)
        return result.ok

    def _approve(self) -> None:
        """The town's approver decides what was forwarded to it (all approved, in order)."""
        if self.desk is None:
            self.desk = Desk.open(self.home(self.code), self.clock)
        rows = self.desk.db.conn.execute(
            "SELECT case_no FROM cases WHERE decider = ? AND state = 'forwarded' ORDER BY received",
            (self.code,),
        ).fetchall()
        for (case_no,) in rows:
            self.desk.act(case_no, "approve", {"reason": "材料齐全,准予办理"}, APPROVER)
            self.approved += 1

    def do_stats(self) -> dict[str, Any]:
        return {**super().do_stats(), "approved": self.approved}

    def close(self) -> None:
        if self.desk is not None:
            self.desk.close()
        self.server.stop()


# -- villages --------------------------------------------------------------------------------


class VillageHost(Host):
    """Villages on ``workers`` threads, each thread with its own villages and their stores
    open for the whole run (a store's connection stays on the thread that opened it).

    A village syncs again ``interval`` seconds after a session that moved records, and
    waits twice as long after each idle one (at most :data:`IDLE_MAX`): an agent that
    keeps polling an idle parent every second would, 228 times over, take the two cores.
    A village that holds all it should stops (its agent's next session would be a minute
    away, past the end of the measurement).
    """

    def __init__(self, spec: HostSpec, events: Any) -> None:
        super().__init__(spec, events)
        count = max(1, min(spec.workers, len(spec.codes)))
        self.shares = [spec.codes[n::count] for n in range(count)]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def do_sync(self) -> dict[str, int]:
        """One session of each village; how many items each may take in afterwards."""
        self._workers(once=True)
        out = {}
        for code in self.spec.codes:
            with Desk.open(self.home(code), self.clock) as desk:
                out[code] = sum(1 for a in desk.items() if a.allowed)
        return out

    def do_month(self, plan: CityPlan) -> dict[str, int]:
        """Every walk-in of the month at every village of this host, on the pinned clock."""
        totals = {"direct": 0, "proxy": 0}
        for code in self.spec.codes:
            with Desk.open(self.home(code), self.clock) as desk:
                usable = [
                    a
                    for a in desk.items()
                    if a.allowed and (a.mode is Mode.DIRECT or a.decider == desk.config.node.parent)
                ]
                for walkin in month_for(plan, code).walkins:
                    auth = usable[int(walkin.pick * len(usable))]
                    self.clock.pin(walkin.at)
                    form = IntakeForm(
                        item=auth.item.code,
                        name=walkin.name,
                        doc_type="resident_id",
                        doc_no=walkin.doc_no,
                        phone=walkin.phone,
                        materials=tuple(m.code for m in auth.item.materials if m.required),
                    )
                    case = desk.intake(form, actor=CLERK)
                    if auth.mode is Mode.DIRECT:
                        self.clock.pin(walkin.at + 1800)
                        desk.act(case.case_no, "approve", {}, CLERK)
                        desk.act(case.case_no, "deliver", {"delivery": "pickup"}, CLERK)
                        totals["direct"] += 1
                    else:
                        totals["proxy"] += 1
        return totals

    def do_online(self) -> None:
        super().do_online()
        self._workers(once=False)

    def do_offline(self) -> None:
        super().do_offline()
        self.stopping.set()
        for thread in self.threads:
            thread.join(120)
        self.threads.clear()

    def wait(self) -> float:
        return 1.0

    def holds_all(self, code: str, conn: sqlite3.Connection, targets: Targets) -> bool:
        central = {self.spec.central: targets.heads[self.spec.central]}
        if not heads_reached(conn, central):
            return False
        forwarded = conn.execute(
            "SELECT count(*) FROM cases WHERE node = ? AND state = 'forwarded'", (code,)
        ).fetchone()[0]
        return bool(forwarded == 0)

    def _workers(self, once: bool) -> None:
        self.stopping.clear()
        self.threads = [
            threading.Thread(target=self._work, args=(share, once), daemon=True) for share in self.shares
        ]
        for thread in self.threads:
            thread.start()
        if once:
            for thread in self.threads:
                thread.join()
            self.threads.clear()

    def _work(self, codes: list[str], once: bool) -> None:
        homes = {code: open_home(self.home(code), self.clock) for code in codes}
        due = dict.fromkeys(codes, 0.0)
        delay = dict.fromkeys(codes, self.spec.interval)
        try:
            while not self.stopping.is_set() and due:
                code = min(due, key=due.__getitem__)
                wait = due[code] - time.monotonic()
                if wait > 0 and self.stopping.wait(wait):
                    break
                moved = self._session(code, homes[code])
                if once or "all" in self.progress[code].reached:
                    del due[code]
                    continue
                delay[code] = self.spec.interval if moved else min(IDLE_MAX, delay[code] * 2)
                due[code] = time.monotonic() + delay[code]
        finally:
            for home in homes.values():
                home.close()

    def _session(self, code: str, opened: OpenedHome) -> bool:
        """One session; whether it moved any record."""
        ups = upstreams_for(opened.log, opened.parent, self.spec.parent_endpoint, None, False)
        result = sync_once(opened, ups, timeout=120)
        error = result.error.code.value if result.error else ""
        self.note_session(code, result.ok, result.traffic, error)
        if result.ok:
            self.check(code, opened.log.db.conn)
        return bool(result.summary.up or result.summary.down)

    def close(self) -> None:
        self.do_offline()


HOSTS: dict[str, Callable[[HostSpec, Any], Host]] = {
    "central": CentralHost,
    "town": TownHost,
    "village": VillageHost,
}


def serve(spec: HostSpec, conn: Any, events: Any) -> None:
    """A host process: answer commands, and run sessions in between while online."""
    try:
        host = HOSTS[spec.kind](spec, events)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", host.hello()))
    try:
        while True:
            if conn.poll(host.wait()):
                name, args = conn.recv()
                if name == "stop":
                    break
                try:
                    conn.send(("ok", getattr(host, f"do_{name}")(**args)))
                except BaseException:
                    conn.send(("error", traceback.format_exc()))
            if host.online:
                try:
                    host.step()
                except Exception:
                    events.put(("error", spec.codes[0], traceback.format_exc(), time.monotonic()))
                    host.online = False
    finally:
        stats = host.do_stats()
        host.close()
        conn.send(("ok", stats))
