"""Builders shared by tests: deterministic keys, a central and enrolled nodes in tmp dirs."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from central import authority
from central.department.store import DepartmentStore
from central.store import CentralStore
from core.admin import is_within
from core.catalog import Mode
from core.catalog_data import items_from_data
from core.clock import FixedClock
from core.errors import AuthorityError
from node import identity
from node.desk import Desk
from node.store import NodeStore
from sync.projection.catalog import current_catalog
from sync.projection.delegation import split_by_mode
from sync.record import keys, kinds
from sync.record.log import decode_stored

CITY = "330481"
TOWN = "330481104"
VILLAGE = "330481104201"
VILLAGE_2 = "330481104202"


def seeded_random(label: str) -> Callable[[int], bytes]:
    """Deterministic 'random' bytes, different for every label and call."""
    counter = 0

    def random(n: int) -> bytes:
        nonlocal counter
        counter += 1
        out = b""
        while len(out) < n:
            out += hashlib.sha256(f"{label}/{counter}/{len(out)}".encode()).digest()
        return out[:n]

    return random


def fixed_keys(label: str) -> keys.NodeKeys:
    return keys.generate(seeded_random(label))


@dataclass
class Network:
    root: Path
    clock: FixedClock
    fingerprint: str

    @property
    def central_dir(self) -> Path:
        return self.root / "central"

    def node_dir(self, code: str) -> Path:
        return self.root / code

    def add_node(self, code: str, tier: str, parent: str, name: str | None = None) -> Path:
        """Init with a token central issued, enroll at central and install the bundle;
        returns the node's directory."""
        home = self.node_dir(code)
        with authority.open_central(self.central_dir, self.clock) as central:
            token, _ = authority.issue_enroll_token(central, code, random=seeded_random(f"token/{code}"))
        result = identity.init(
            home,
            tier=tier,
            code=code,
            name=name or f"节点{code}",
            parent=parent,
            clock=self.clock,
            random=seeded_random(code),
            token=token,
        )
        with authority.open_central(self.central_dir, self.clock) as central:
            _, bundle = authority.enroll(central, result.request_path.read_bytes())
        identity.enroll(home, bundle, clock=self.clock, anchor_fingerprint=self.fingerprint)
        return home


def make_network(root: Path, clock: FixedClock | None = None) -> Network:
    clock = clock or FixedClock(step=1)
    fingerprint = authority.init(
        root / "central", code=CITY, name="海宁市", net=None, clock=clock, random=seeded_random("central")
    )
    return Network(root, clock, fingerprint)


def relay(src: Path, dst: Path, clock: FixedClock, *, up: bool = False) -> int:
    """Copy to the node at ``dst`` every record of ``src`` that sync would carry; the count.

    Down (default): what concerns the destination (``kinds.concerns``). Up: what ``src``'s
    subtree authored. Tests of everything above the sync layer use this instead of a link.
    """
    with _open_any(src, clock) as src_store, _open_any(dst, clock) as dst_store:
        anchor = dst_store.log.anchor()
        assert anchor is not None
        dst_code = _code_of(dst)
        src_code = _code_of(src)
        moved = 0
        for _, envelope in src_store.log.envelopes():
            record = decode_stored(envelope)
            if up:
                wanted = is_within(record.origin, src_code)
            else:
                wanted = kinds.concerns(record.kind, record.origin, record.body, dst_code, anchor.origin)
            if wanted and not dst_store.log.has(record.id):
                outcome = dst_store.log.ingest(envelope, f"relay:{src_code}")
                assert outcome.status.value in ("appended", "duplicate"), outcome
                moved += 1
        return moved


def _code_of(home: Path) -> str:
    name = next(n for n in ("central.toml", "department.toml", "node.toml") if (home / n).exists())
    text = (home / name).read_text()
    for line in text.splitlines():
        if line.startswith("code"):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError(f"no code in {home}")


def _open_any(home: Path, clock: FixedClock) -> NodeStore | CentralStore | DepartmentStore:
    if (home / "central.toml").exists():
        return CentralStore.open(home / "central.db", clock)
    if (home / "department.toml").exists():
        return DepartmentStore.open(home / "department.db", clock)
    return NodeStore.open(home / "node.db", clock)


def delegate_demo_items(
    net: Network, town: str, villages: list[str], *, valid_days: int = 90, proxy: tuple[str, ...] = ()
) -> None:
    """Publish the demo catalog (if none), grant the town its items, and sub-grant its villages.

    The items in ``proxy`` the town gets to take in only (a department decides them).
    """
    from tongban.demo import demo_file

    with authority.open_central(net.central_dir, net.clock) as central:
        catalog = current_catalog(central.store.db)
        if catalog is None:
            authority.publish_catalog(central, items_from_data(demo_file("catalog.yaml")["items"]))
            catalog = current_catalog(central.store.db)
        assert catalog is not None
        codes = [i.code for i in catalog.items if i.code not in proxy]
        for mode, group in split_by_mode(catalog, "town", codes, Mode.SAME_POWER).items():
            authority.grant(central, town, group, mode, valid_days=valid_days)
        if proxy:
            authority.grant(central, town, list(proxy), Mode.PROXY, valid_days=valid_days)
    relay(net.central_dir, net.node_dir(town), net.clock)
    for village in villages:
        relay(net.central_dir, net.node_dir(village), net.clock)
        with open_desk(net.node_dir(town), net.clock) as desk:
            for parent in desk.delegation.parents():
                with contextlib.suppress(AuthorityError):  # nothing of it is offered at village level
                    desk.delegation.delegate(
                        village, parent.id, list(parent.items), valid_days, actor="admin"
                    )
        relay(net.node_dir(town), net.node_dir(village), net.clock)


def add_department(
    net: Network, code: str, items: tuple[str, ...], department: str, name: str | None = None
) -> Path:
    """Init a department, enroll it at central for ``items`` and install its bundle; its directory."""
    from central.department import identity as department_identity
    from central.departments import enroll_department

    home = net.node_dir(code)
    result = department_identity.init(
        home,
        code=code,
        name=name or f"部门{code}",
        parent=code[:6],
        clock=net.clock,
        random=seeded_random(code),
    )
    with authority.open_central(net.central_dir, net.clock) as central:
        _, bundle = enroll_department(
            central, result.request_path.read_bytes(), department=department, items=items
        )
    department_identity.enroll(home, bundle, clock=net.clock, anchor_fingerprint=net.fingerprint)
    return home


def open_desk(home: Path, clock: FixedClock) -> Desk:
    """The desk of the node at ``home``: ``with open_desk(home, clock) as desk: …``."""
    return Desk.open(home, clock)


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60.0, every: float = 0.2) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)
