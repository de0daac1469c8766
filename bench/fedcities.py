"""The alliance of the ``federation`` benchmark, built on disk: N cities, each a central, a
town and its villages in directories of their own (own keys, certificates, SQLite files),
made by the functions ``tongban central init``, ``tongban node init`` and ``enroll`` use.

Each city publishes a catalog of 119 items under its own code prefix (the demo catalog's
items, renamed, the first 33 twice), its town decides every item (a root grant, direct)
and passes them down to its villages (proxy: the village takes in, the town decides).
Every two cities agree both ways: the cross-certification of each city by the other lists
the other's 119 items for 代收代办 (roles accept, decide, deliver) and its own 119 for the
other's windows (role intake), with the other central's peer endpoint and CURVE key.
"""

from __future__ import annotations

import random
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from central import authority, peers
from central.peer_link import push_all, server
from core.catalog import Item, Mode
from core.catalog_data import items_from_data
from core.clock import Clock
from core.federation import ACCEPT, DECIDE, DELIVER, INTAKE, PROXY_INTAKE, Scope, ScopeItem
from node import identity
from node.desk import Desk
from sync.link.endpoint import ParentServer
from sync.link.transport import sync_once, upstreams_for
from sync.record.keys import fingerprint
from tongban.demo import demo_file
from tongban.homes import open_home

ITEMS = 119
GRANT_DAYS = 90
NAMES = (
    "海宁市", "桐乡市", "嘉善县", "平湖市", "海盐县", "德清县", "长兴县", "安吉县", "诸暨市",
    "嵊州市", "新昌县", "上虞区", "余姚市", "慈溪市", "象山县", "宁海县", "奉化区", "临海市",
    "温岭市", "玉环市", "天台县", "仙居县", "乐清市", "瑞安市", "永嘉县", "平阳县", "苍南县",
    "义乌市", "东阳市", "永康市", "兰溪市", "浦江县", "武义县", "江山市", "常山县", "开化县",
    "龙游县", "青浦区", "松江区", "嘉定区", "吴江区", "昆山市", "太仓市", "常熟市", "张家港市",
)  # fmt: skip


@dataclass(frozen=True)
class CitySpec:
    """One city of the alliance: its codes, its item prefix and its endpoints."""

    index: int
    code: str
    name: str
    prefix: str
    villages: tuple[str, ...]
    sync_listen: str
    peer_listen: str

    @property
    def net(self) -> str:
        return f"cn-{self.code}"

    @property
    def town(self) -> str:
        return f"{self.code}101"


PORTS = range(20_000, 32_000)
"""Where the centrals' endpoints listen: below the kernel's ephemeral range (32768 and up
by default), so the thousands of connections the alliance opens never take one of them
between the plan and the bind."""


def free_ports(count: int) -> list[str]:
    """``count`` endpoints on 127.0.0.1, each free now, from :data:`PORTS` (spread at random)."""
    rng = random.Random(f"ports-{time.time_ns()}")
    chosen: list[str] = []
    for port in rng.sample(PORTS, len(PORTS)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(f"tcp://127.0.0.1:{port}")
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"fewer than {count} free ports in {PORTS}")


def plan(cities: int, villages: int) -> list[CitySpec]:
    """``cities`` cities (at most 45, each its own 6-digit code and three-letter prefix)."""
    if not 2 <= cities <= len(NAMES):
        raise ValueError(f"the alliance has 2 to {len(NAMES)} cities")
    ports = free_ports(2 * cities)
    return [
        CitySpec(
            index=n,
            code=f"{330100 + n + 1}",
            name=NAMES[n],
            prefix="C" + chr(65 + n // 26) + chr(65 + n % 26),
            villages=tuple(f"{330100 + n + 1}101{201 + v}" for v in range(villages)),
            sync_listen=ports[2 * n],
            peer_listen=ports[2 * n + 1],
        )
        for n in range(cities)
    ]


def catalog(city: CitySpec) -> list[Item]:
    """The city's 119 items: the demo catalog's under its prefix, decided by the town."""
    demo = items_from_data(demo_file("catalog.yaml")["items"])
    items: list[Item] = []
    for n in range(ITEMS):
        base = demo[n % len(demo)]
        name = base.name if n < len(demo) else f"{base.name}（变更）"
        items.append(
            replace(
                base,
                code=f"{city.prefix}-{n + 1:04d}",
                name=name,
                department=f"{city.name}{base.department.removeprefix('海宁市')}",
                time_limit_days=max(1, base.time_limit_days),
                fields=(),
                modes={"city": Mode.DIRECT, "town": Mode.DIRECT, "village": Mode.PROXY},
            )
        )
    return items


def central_dir(root: Path, city: CitySpec) -> Path:
    return root / city.code / "central"


def node_dir(root: Path, city: CitySpec, code: str) -> Path:
    return root / city.code / code


def build_city(root: Path, city: CitySpec, clock: Clock) -> bytes:
    """Central (with its sync and peer endpoints), its catalog, the town with its root
    grant, the villages enrolled; returns central's root key."""
    home = central_dir(root, city)
    anchor = authority.init(home, code=city.code, name=city.name, net=None, clock=clock)
    with (home / "central.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[sync]\nlisten = "{city.sync_listen}"\n')
        handle.write(f'\n[peers]\nlisten = "{city.peer_listen}"\ninterval_seconds = 1\n')
    with authority.open_central(home, clock) as central:
        authority.publish_catalog(central, catalog(city))
        nodes = [(city.town, "town", city.code, f"{city.name}城关镇便民服务中心")] + [
            (v, "village", city.town, f"{city.name}第{n + 1}村便民服务中心")
            for n, v in enumerate(city.villages)
        ]
        for code, tier, parent, name in nodes:
            token, _ = authority.issue_enroll_token(central, code)
            made = identity.init(
                node_dir(root, city, code),
                tier=tier,
                code=code,
                name=name,
                parent=parent,
                clock=clock,
                token=token,
            )
            _, bundle = authority.enroll(central, made.request_path.read_bytes())
            identity.enroll(node_dir(root, city, code), bundle, clock=clock, anchor_fingerprint=anchor)
        authority.grant(
            central, city.town, [i.code for i in catalog(city)], Mode.DIRECT, valid_days=GRANT_DAYS
        )
        return peers.own_root(central)


def scope(own: CitySpec, peer: CitySpec) -> Scope:
    """What ``own`` admits of ``peer``: the peer's items on cases our windows take in for it,
    and our items its windows take in for us (both catalogs at version 1)."""
    proxy = frozenset({PROXY_INTAKE})
    decide = frozenset({ACCEPT, DECIDE, DELIVER})
    theirs = [ScopeItem(f"{peer.prefix}-{n:04d}", 1, proxy, decide) for n in range(1, ITEMS + 1)]
    ours = [ScopeItem(f"{own.prefix}-{n:04d}", 1, proxy, frozenset({INTAKE})) for n in range(1, ITEMS + 1)]
    return Scope(tuple(sorted(theirs + ours, key=lambda i: i.item)))


def agree_all(root: Path, cities: list[CitySpec], roots: dict[str, bytes], clock: Clock) -> int:
    """Every city's operator proposes and confirms an agreement with every other city (with
    its link data); the cross-certifications signed."""
    curve: dict[str, bytes] = {}
    for city in cities:
        with authority.open_central(central_dir(root, city), clock) as central:
            curve[city.net] = peers.own_curve_key(central)
    signed = 0
    for city in cities:
        with authority.open_central(central_dir(root, city), clock) as central:
            for peer in cities:
                if peer is city:
                    continue
                peers.propose(central, peer=peer.net, name=peer.name, root_pk=roots[peer.net],
                              scope=scope(city, peer), link=(peer.peer_listen, curve[peer.net]))  # fmt: skip
                peers.confirm(central, peer.net, fingerprint(roots[peer.net]))
                signed += 1
        progress(
            f"federation: {city.name} agreed with {len(cities) - 1} cities ({signed} cross-certifications)"
        )
    return signed


@contextmanager
def peer_servers(root: Path, cities: list[CitySpec], clock: Clock) -> Iterator[None]:
    """Every central's peer endpoint, in this process (the build's links)."""
    with ExitStack() as stack:
        for city in cities:
            running = server(central_dir(root, city), None, clock).start()
            stack.callback(running.stop)
        yield


def mirror_all(root: Path, cities: list[CitySpec], clock: Clock) -> int:
    """Push every central's outbox (its release for each peer) over the links; how many
    messages were delivered. Each peer mirrors the items it takes in from the release."""
    delivered = 0
    with peer_servers(root, cities, clock):
        for city in cities:
            with authority.open_central(central_dir(root, city), clock) as central:
                results = push_all(central, timeout=60, connect_timeout=10)
            failed = [r for r in results if not r.ok]
            if failed:
                raise RuntimeError(f"{city.net}: pushes failed: {[(r.peer, r.error) for r in failed]}")
            delivered += sum(r.acked for r in results)
    return delivered


def sync_down(root: Path, cities: list[CitySpec], clock: Clock) -> None:
    """Each town syncs with its central and passes its grants down; every village syncs."""
    for city in cities:
        home = central_dir(root, city)
        with ExitStack() as stack:
            top = ParentServer(lambda h=home: open_home(h, clock), "tcp://127.0.0.1:*").start()
            stack.callback(top.stop)
            town_home = node_dir(root, city, city.town)
            _session(town_home, city.code, top.endpoint, clock)
            with Desk.open(town_home, clock) as desk:
                for parent in desk.delegation.parents():
                    for village in city.villages:
                        desk.delegation.delegate(village, parent.id, list(parent.items), GRANT_DAYS, "guanli")
            _session(town_home, city.code, top.endpoint, clock)
            town = ParentServer(lambda h=town_home: open_home(h, clock), "tcp://127.0.0.1:*").start()
            stack.callback(town.stop)
            for village in city.villages:
                _session(node_dir(root, city, village), city.town, town.endpoint, clock)
        progress(f"federation: {city.name} synced down to its {len(city.villages)} villages")


def _session(home: Path, parent: str, endpoint: str, clock: Clock) -> None:
    with open_home(home, clock) as opened:
        result = sync_once(opened, upstreams_for(opened.log, parent, endpoint, None, False), timeout=120)
    if not result.ok:
        raise RuntimeError(f"{home.name}: the build's sync failed: {result.error}")


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
