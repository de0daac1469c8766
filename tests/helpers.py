"""Builders shared by tests: deterministic keys, a central and enrolled nodes in tmp dirs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from central import authority
from core.clock import FixedClock
from node import identity
from sync import keys

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
        """Init, enroll at central and install the bundle; returns the node's directory."""
        home = self.node_dir(code)
        result = identity.init(
            home,
            tier=tier,
            code=code,
            name=name or f"节点{code}",
            parent=parent,
            clock=self.clock,
            random=seeded_random(code),
        )
        central = authority.open_central(self.central_dir, self.clock)
        try:
            _, bundle = authority.enroll(central, result.request_path.read_bytes())
        finally:
            central.close()
        identity.enroll(home, bundle, clock=self.clock, anchor_fingerprint=self.fingerprint)
        return home


def make_network(root: Path, clock: FixedClock | None = None) -> Network:
    clock = clock or FixedClock(step=1)
    fingerprint = authority.init(
        root / "central", code=CITY, name="海宁市", net=None, clock=clock, random=seeded_random("central")
    )
    return Network(root, clock, fingerprint)
