"""The village hosts of the simulated city: many villages to a process, each on a thread.

The month's walk-ins are taken in at each village's desk while the villages are cut off
(``month``); once online, each village syncs with its town as its own agent would
(``sync`` runs one session of each).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from bench.city.host import Host, HostSpec, Targets, heads_reached
from bench.city.plan import CityPlan, month_for
from core.catalog import Mode
from node.desk import Desk, IntakeForm
from sync.link.transport import sync_once, upstreams_for
from tongban.homes import OpenedHome, open_home

IDLE_MAX = 8.0
CLERK = "wangli"


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
