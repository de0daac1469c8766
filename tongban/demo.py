"""The demo network: central, one town and two of its villages, enrolled, with a catalog,
the town's grant passed down to its villages, demo clerk accounts and central's demo
operators; and one department back office, 公安户政 (330481GA), that decides the household
and identity-card items (:data:`DEMO_DEPARTMENT`): the town takes those in for it.

Built with the same functions the CLI commands use, from the demo org tree and catalog
shipped in ``central/demo/`` (Haining, 海宁市, the city of the project's seed reports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from central import authority
from central.admins import admins
from central.department import identity as department_identity
from central.department.desk import DepartmentDesk
from central.departments import enroll_department
from core.catalog import Mode
from core.catalog_data import items_from_data
from core.clock import Clock
from core.errors import ErrorCode, InputError
from node import identity
from node.store import NodeStore
from sync.projection.catalog import current_catalog
from tongban.demo_peer import DEMO_PEER, build_peer, seed_crossing
from tongban.demo_run import ACCOUNTS, DEMO_PASSWORD, prepare, settle
from tongban.demo_scans import seed_cases
from web.accounts import hash_password

DEMO_TOWN = "斜桥镇"


@dataclass(frozen=True)
class DemoDepartment:
    code: str
    name: str
    department: str  # the catalog's department field of its items
    items: tuple[str, ...]


DEMO_DEPARTMENT = DemoDepartment(
    "330481GA",
    "海宁市公安局户政管理",
    "海宁市公安局",
    # Household registration and identity cards, decided in 户政's back office; 户籍证明 and
    # 流动人口登记 stay with the windows that issue them directly.
    (
        "GA-0001",
        "GA-0002",
        "GA-0003",
        "GA-0004",
        "GA-0005",
        "GA-0006",
        "GA-0007",
        "GA-0008",
        "GA-0009",
        "GA-0011",
    ),
)


@dataclass(frozen=True)
class DemoNode:
    code: str
    name: str
    tier: str
    parent: str


def demo_file(name: str) -> Any:
    text = resources.files("central").joinpath("demo", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def pick_nodes(tree: dict[str, Any]) -> list[DemoNode]:
    """The demo town (斜桥镇 when present) and its first two villages."""
    nodes = [DemoNode(n["code"], n["name"], n["tier"], n["parent"]) for n in tree["nodes"]]
    towns = [n for n in nodes if n.tier == "town"]
    towns.sort(key=lambda n: n.name != DEMO_TOWN)
    for town in towns:
        villages = [n for n in nodes if n.tier == "village" and n.parent == town.code]
        if len(villages) >= 2:
            return [town, *villages[:2]]
    raise InputError(ErrorCode.FIELD_INVALID, "the demo org tree has no town with two villages")


def _grant_town(central: authority.Central, town: str) -> None:
    """The town's items: the department's in proxy mode (it takes them in, 户政 decides),
    every other in the strongest mode the catalog allows."""
    catalog = current_catalog(central.store.db)
    assert catalog is not None
    others = [i.code for i in catalog.items if i.code not in DEMO_DEPARTMENT.items]
    authority.grant_items(central, town, others, None)
    authority.grant_items(central, town, list(DEMO_DEPARTMENT.items), Mode.PROXY)


def enroll_demo_department(home: Path, central: authority.Central, fingerprint: str, clock: Clock) -> None:
    """公安户政's directory, keys and certificate, and its desk accounts."""
    d = DEMO_DEPARTMENT
    made = department_identity.init(home / d.code, code=d.code, name=d.name, parent=central.code, clock=clock)
    _, bundle = enroll_department(
        central, made.request_path.read_bytes(), department=d.department, items=d.items
    )
    department_identity.enroll(home / d.code, bundle, clock=clock, anchor_fingerprint=fingerprint)
    digest = hash_password(DEMO_PASSWORD)
    with DepartmentDesk.open(home / d.code, clock) as desk:
        for user, name, roles in ACCOUNTS["department"]:
            desk.accounts.add(desk.keys, user, name, roles, digest, actor="sys:demo")


def build_demo(home: Path, clock: Clock, echo: Callable[[str], Any] = print) -> None:
    """Create the demo network under ``home`` (which must be empty or absent)."""
    if home.exists() and any(home.iterdir()):
        raise InputError(ErrorCode.DIR_NOT_EMPTY, f"{home} (remove it for a fresh demo)")
    tree = demo_file("org-tree.yaml")
    city = tree["city"]
    central_dir = home / "central"
    fingerprint = authority.init(central_dir, code=city["code"], name=city["name"], net=None, clock=clock)
    with authority.open_central(central_dir, clock) as central:
        items = items_from_data(demo_file("catalog.yaml")["items"])
        _, release = authority.publish_catalog(central, items)
        operators, digest = admins(central), hash_password(DEMO_PASSWORD)
        for user, name, roles in ACCOUNTS["central"]:
            operators.add(central, user, name, roles, digest, actor="sys:demo")
        nodes = pick_nodes(tree)
        for demo_node in nodes:
            node_dir = home / demo_node.code
            token, _ = authority.issue_enroll_token(central, demo_node.code)
            result = identity.init(
                node_dir,
                tier=demo_node.tier,
                code=demo_node.code,
                name=demo_node.name,
                parent=demo_node.parent,
                clock=clock,
                token=token,
            )
            _, bundle = authority.enroll(central, result.request_path.read_bytes())
            identity.enroll(node_dir, bundle, clock=clock, anchor_fingerprint=fingerprint)
            if demo_node.tier == "town":
                _grant_town(central, demo_node.code)
        enroll_demo_department(home, central, fingerprint, clock)
        central_records = central.store.log.count()
    peer_lines = build_peer(home, central_dir, clock, demo_file)
    town, *villages = nodes
    prepare(home, central_dir, town.code, [v.code for v in villages], clock)
    seeded = seed_cases(home / villages[0].code, clock)
    crossing = seed_crossing(home / villages[0].code, clock)
    settle(home, central_dir, town.code, villages[0].code, clock)
    echo(f"Demo network in {home}")
    echo(
        f"  central  {city['code']} {city['name']}: {central_records} records, catalog v{release.version}"
        f" with {len(release.items)} items"
    )
    echo(f"           anchor fingerprint {fingerprint}")
    for demo_node in nodes:
        with NodeStore.open(home / demo_node.code / "node.db", clock) as store:
            count = store.log.count()
        echo(f"  {demo_node.tier:<8} {demo_node.code} {demo_node.name}: enrolled, {count} records")
    if seeded:
        echo(f"  {len(seeded)} cases with scanned pages at {villages[0].name}: {', '.join(seeded)}")
    d = DEMO_DEPARTMENT
    echo(f"  department {d.code} {d.name}: enrolled for {len(d.items)} items of {d.department}")
    for line in peer_lines:
        echo(line)
    echo(f"  1 case at {villages[0].name} for {DEMO_PEER.name} (异地代收), on its way there: {crossing}")
    echo("Start the clerk and operator screens with 'make demo' (or 'tongban demo start DIR'). Look around:")
    echo(f"  tongban log {central_dir}")
    echo(f"  tongban node show {home / nodes[-1].code}")
    echo(f"  tongban verify {home / nodes[-1].code}")
