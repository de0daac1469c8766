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
answer back the same way) and, while online, its sessions in between (:func:`serve`).
When given targets (what each node should hold once the city has converged), it checks
them after every session and reports on the events queue when a node came to hold the
catalog release and the revocation (the second its store committed each, by the running
clock) and finally everything (``("reached", code, what, monotonic)``). What every host
does is :class:`bench.city.host.Host`; the villages are :mod:`bench.city.villages`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.city.host import CHECK_EVERY, Host, HostSpec, Targets, heads_reached
from bench.city.villages import VillageHost
from central import authority
from node.desk import Desk
from sync.link.endpoint import ParentServer
from sync.link.transport import sync_once, upstreams_for
from sync.projection.catalog import current_catalog
from tongban.homes import open_home

APPROVER = "shenpi"


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
        with open_home(self.home(self.code), self.clock) as opened:
            ups = upstreams_for(opened.log, opened.parent, self.spec.parent_endpoint, None, False)
            result = sync_once(opened, ups, timeout=120)
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
