"""The ``federation`` benchmark: an alliance of cities on one machine (docs/benchmarks.md).

45 cities (``TONGBAN_BENCH_FED_CITIES`` or ``run(cities=)`` for fewer), each a central, a
town and two villages, every two agreed both ways over their 119 items, the releases
mirrored over the links between centrals, everything synced down (:mod:`bench.fedcities`;
built, not measured). Then, with every link down, each village takes in cases of other
cities' items (seeded random pairs) and as many of its own city's proxy items (the
baseline: village → its town → back, over the same sync in the same run); the stores' clock
moves on a week (the build and the intakes run on a fixed clock eight and seven days
before now, the links come back in real time). Every link back at once: the centrals as
processes (:mod:`bench.fedlinks`), the towns and villages syncing, each town's approver
deciding what arrives. Measured: until every cross-city case's decision is at its window;
then one city revokes one agreement, until every node of both cities holds it; the peak
resident set of every central's process.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import fedcities, fedlinks
from bench.fedcities import CitySpec, central_dir, node_dir, progress
from bench.filesday import resident_id
from central import authority, peers
from core.catalog import Mode
from core.clock import FixedClock, SystemClock
from node.desk import Desk, IntakeForm

CITIES = 45
VILLAGES = 2
CASES = 2  # cross-city cases per village (and as many of its own city's, the baseline)
DAY = 86_400
TARGET_DECISIONS_S = 60.0
TARGET_REVOCATION_S = 10.0
DECISIONS_DEADLINE_S = 300.0
REVOCATION_DEADLINE_S = 60.0
SEED = 2026
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("秀英", "建华", "丽娟", "志强", "海燕", "国平", "桂兰", "文杰", "晓明", "春梅")


@dataclass
class Taken:
    village: tuple[CitySpec, str]
    case_no: str
    owner: str  # the net that decides it


def run(cities: int | None = None, villages: int = VILLAGES, cases: int = CASES) -> dict[str, Any]:
    count = cities or int(os.environ.get("TONGBAN_BENCH_FED_CITIES", CITIES))
    with tempfile.TemporaryDirectory(prefix="tongban-fed-") as tmp:
        return _run(Path(tmp), fedcities.plan(count, villages), cases)


def _run(root: Path, cities: list[CitySpec], cases: int) -> dict[str, Any]:
    now = SystemClock().now()
    built = build(root, cities, now)
    return measure(root, cities, cases, now, built)


@dataclass
class Built:
    certs: int
    mirrored: int
    seconds: float


def build(root: Path, cities: list[CitySpec], now: int) -> Built:
    """The alliance on disk (:mod:`bench.fedcities`), on a clock eight days before ``now``."""
    build_clock = FixedClock(t=now - 8 * DAY)
    started = time.monotonic()
    roots = {}
    for city in cities:
        roots[city.net] = fedcities.build_city(root, city, build_clock)
    progress(f"federation: {len(cities)} cities built ({time.monotonic() - started:.0f} s)")
    certs = fedcities.agree_all(root, cities, roots, build_clock)
    mirrored = fedcities.mirror_all(root, cities, build_clock)
    progress(f"federation: {mirrored} releases mirrored over the links ({time.monotonic() - started:.0f} s)")
    fedcities.sync_down(root, cities, build_clock)
    return Built(certs, mirrored, time.monotonic() - started)


def measure(root: Path, cities: list[CitySpec], cases: int, now: int, built: Built) -> dict[str, Any]:
    """The week cut off (intakes on a clock seven days before ``now``), every link back."""
    progress(f"federation: built in {built.seconds:.0f} s; starting the centrals")
    with fedlinks.centrals(root, cities, root / "logs") as running:
        running.signal(signal.SIGSTOP)  # every link down: no sync, no peer link runs
        crossing, local = take_in(root, cities, cases, FixedClock(t=now - 7 * DAY, step=1))
        progress(
            f"federation: {len(crossing)} cross-city and {len(local)} same-city cases taken in, links down"
        )
        with fedlinks.Nodes(root, cities) as nodes:
            back = time.time()
            cpu = Cpu.now(running, nodes)
            running.signal(signal.SIGCONT)
            nodes.go()
            times = await_decisions(root, crossing + local, back)
            cpu = Cpu.now(running, nodes).since(cpu)
            revocation = revoke(root, cities)
        memory = running.peak_rss_mb()
    return report(cities, built, crossing, local, times, revocation, memory, nodes.stats, cpu)


@dataclass
class Cpu:
    """CPU seconds (user and system) of the centrals' processes and of the towns' and
    villages' processes, and the wall-clock seconds they were taken over."""

    centrals: float
    nodes: float
    wall: float

    @classmethod
    def now(cls, running: fedlinks.Centrals, nodes: fedlinks.Nodes) -> Cpu:
        return cls(running.cpu_seconds(), nodes.cpu_seconds(), time.monotonic())

    def since(self, start: Cpu) -> Cpu:
        return Cpu(self.centrals - start.centrals, self.nodes - start.nodes, self.wall - start.wall)


def take_in(
    root: Path, cities: list[CitySpec], cases: int, clock: FixedClock
) -> tuple[list[Taken], list[Taken]]:
    """At every village, ``cases`` walk-ins for other cities' items (a seeded random city and
    item each) and as many for its own city's proxy items, at the window, offline."""
    rng = random.Random(SEED)
    crossing: list[Taken] = []
    local: list[Taken] = []
    serial = 0
    for city in cities:
        for village in city.villages:
            with Desk.open(node_dir(root, city, village), clock) as desk:
                theirs = desk.peer_items()
                ours = [
                    a for a in desk.items() if a.allowed and a.mode is Mode.PROXY and a.decider == city.town
                ]
                if not theirs or not ours:
                    raise RuntimeError(
                        f"{village}: no other city's items ({len(theirs)}) or own ({len(ours)})"
                    )
                for _ in range(cases):
                    peer = rng.choice([c for c in cities if c is not city])
                    auth = rng.choice([a for a in theirs if a.owner == peer.net])
                    serial += 1
                    number = desk.intake(
                        _form(auth.key, auth.item.materials, rng, serial), actor="wangli"
                    ).case_no
                    crossing.append(Taken((city, village), number, peer.net))
                for _ in range(cases):
                    auth = rng.choice(ours)
                    serial += 1
                    number = desk.intake(
                        _form(auth.item.code, auth.item.materials, rng, serial), actor="wangli"
                    ).case_no
                    local.append(Taken((city, village), number, city.net))
    return crossing, local


def _form(item: str, materials: Any, rng: random.Random, serial: int) -> IntakeForm:
    return IntakeForm(
        item=item,
        name=rng.choice(SURNAMES) + rng.choice(GIVEN),
        doc_type="resident_id",
        doc_no=resident_id(serial),
        phone=f"138{rng.randrange(10**8):08d}",
        materials=tuple(m.code for m in materials if m.required),
    )


def await_decisions(root: Path, taken: list[Taken], back: float) -> dict[str, float]:
    """Seconds from the links' return until each case's approval was in its village's store
    (the second the store took it in, by the clock every node shares, bounded from above:
    the measurement's own polling, starved on a loaded machine, is not in it); the cases
    not decided within the deadline are absent."""
    by_village: dict[tuple[str, str], list[str]] = {}
    for t in taken:
        by_village.setdefault((t.village[0].code, t.village[1]), []).append(t.case_no)
    conns = {key: fedlinks.read_only(root / key[0] / key[1] / "node.db") for key in by_village}
    times: dict[str, float] = {}
    deadline = back + DECISIONS_DEADLINE_S
    last_line = 0.0
    try:
        while len(times) < len(taken) and time.time() < deadline:
            for key, numbers in by_village.items():
                waiting = [n for n in numbers if n not in times]
                if waiting:
                    for number, at in fedlinks.decided(conns[key], waiting).items():
                        times[number] = max(0.0, at + 1 - back)
            if time.time() - last_line >= 5:
                last_line = time.time()
                progress(f"federation: {len(times)}/{len(taken)} decisions back at their windows "
                         f"({last_line - back:.0f} s)")  # fmt: skip
            time.sleep(1.0)
    finally:
        for conn in conns.values():
            conn.close()
    return times


@dataclass
class Revocation:
    revoker: str
    peer: str
    own_s: float | None  # every node of the revoking city holds it
    both_s: float | None  # every node of both cities holds it
    nodes: int
    holding: int


def revoke(root: Path, cities: list[CitySpec]) -> Revocation:
    """The first city revokes its agreement with the second; until every node of both holds
    a revocation of it (the second city's central ends its own on the notice)."""
    a, b = cities[0], cities[1]
    homes = [(central_dir(root, c) / "central.db", c) for c in (a, b)]
    homes += [(node_dir(root, c, n) / "node.db", c) for c in (a, b) for n in (c.town, *c.villages)]
    conns = [(fedlinks.read_only(db), c) for db, c in homes]
    with authority.open_central(central_dir(root, a), SystemClock()) as central:
        started = time.time()
        peers.revoke(central, b.net, "协议终止：对方城市密钥泄露")
    held: dict[int, float] = {}  # store → seconds until it took the revocation in (bounded above)
    deadline = started + REVOCATION_DEADLINE_S
    try:
        while len(held) < len(conns) and time.time() < deadline:
            for n, (conn, city) in enumerate(conns):
                at = None if n in held else fedlinks.revoked(conn, b.net if city is a else a.net)
                if at is not None:
                    held[n] = max(0.0, at + 1 - started)
            time.sleep(0.2)
    finally:
        for conn, _ in conns:
            conn.close()
    own_nodes = [n for n, (_, c) in enumerate(conns) if c is a]
    own = max(held[n] for n in own_nodes) if all(n in held for n in own_nodes) else None
    both = max(held.values()) if len(held) == len(conns) else None
    progress(f"federation: the revocation at {len(held)}/{len(conns)} nodes of both cities")
    return Revocation(a.net, b.net, own, both, len(conns), len(held))


def _last(times: dict[str, float], taken: list[Taken]) -> float | None:
    got = [times[t.case_no] for t in taken if t.case_no in times]
    return max(got) if taken and len(got) == len(taken) else None


def report(
    cities: list[CitySpec],
    built: Built,
    crossing: list[Taken],
    local: list[Taken],
    times: dict[str, float],
    revocation: Revocation,
    memory: dict[str, float],
    stats: fedlinks.Stats,
    cpu: Cpu,
) -> dict[str, Any]:
    cross_s, local_s = _last(times, crossing), _last(times, local)
    back_cross = sum(1 for t in crossing if t.case_no in times)
    back_local = sum(1 for t in local if t.case_no in times)
    rss = sorted(memory.values())
    figures = [
        {
            "name": "every cross-city case's decision back at its window after a week cut off, "
            "vs the same-city cases of the same villages",
            "value": cross_s,
            "baseline": local_s,
            "unit": "s",
            "ratio": cross_s / local_s if cross_s is not None and local_s else None,
            "target": f"< {TARGET_DECISIONS_S:.0f} s",
            "met": cross_s is not None and cross_s < TARGET_DECISIONS_S,
            "note": f"{back_cross}/{len(crossing)} cross-city, {back_local}/{len(local)} same-city back",
        },
        {
            "name": "an agreement's revocation at every node of both cities, links up, "
            "vs at every node of the revoking city",
            "value": revocation.both_s,
            "baseline": revocation.own_s,
            "unit": "s",
            "ratio": revocation.both_s / revocation.own_s if revocation.both_s and revocation.own_s else None,
            "target": f"< {TARGET_REVOCATION_S:.0f} s",
            "met": revocation.both_s is not None and revocation.both_s < TARGET_REVOCATION_S,
            "note": f"{revocation.holding}/{revocation.nodes} nodes hold it",
        },
        {
            "name": "memory per central (peak resident set of its process), max",
            "value": rss[-1] if rss else None,
            "baseline": None,
            "unit": "MB",
            "ratio": None,
            "target": "",
        },
        {
            "name": "memory per central (peak resident set of its process), median",
            "value": statistics.median(rss) if rss else None,
            "baseline": None,
            "unit": "MB",
            "ratio": None,
            "target": "",
        },
    ]
    return {
        "cities": len(cities),
        "villages_per_city": len(cities[0].villages),
        "items_per_city": fedcities.ITEMS,
        "cross_certifications": built.certs,
        "releases_mirrored": built.mirrored,
        "cross_city_cases": len(crossing),
        "same_city_cases": len(local),
        "build_seconds": round(built.seconds, 1),
        "clock": "fixed, 8 days (build) and 7 days (intakes) before now; real time from the links' return",
        "deciders": "an automatic approver at each town approves every case forwarded to it as it arrives",
        "revocation": {"revoker": revocation.revoker, "peer": revocation.peer},
        "sync_sessions": stats.sessions,
        "sync_failures": dict(stats.failures),
        "agent_errors": stats.errors[:10],
        "approved_by_towns": stats.approved,
        "approvals_retried": dict(stats.approvals_retried),
        "cpu_seconds_until_decisions_back": {
            "centrals": round(cpu.centrals, 1),
            "towns_and_villages": round(cpu.nodes, 1),
            "wall": round(cpu.wall, 1),
        },
        "central_peak_rss_mb": {k: round(v, 1) for k, v in sorted(memory.items())},
        "targets_met": {
            "decisions_back": figures[0]["met"],
            "revocation_both_cities": figures[1]["met"],
        },
        "figures": figures,
    }
