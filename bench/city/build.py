"""Creating the simulated city on disk: central, then every town and village enrolled.

Each node gets its own directory with its own keys, certificate and SQLite file, made by
the same functions ``tongban central init``, ``tongban node init`` and ``enroll`` use.
Central publishes the demo catalog and grants every town the items the catalog offers at
town level (90 days); the towns pass them down over the network once the hosts run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.city.clock import SimClock
from bench.city.plan import CITY_CODE, SETUP, CityPlan, epoch
from central import authority
from core.catalog_data import items_from_data
from node import identity
from tongban.demo import demo_file

TOWN_GRANT_DAYS = 90


def build(root: Path, plan: CityPlan) -> int:
    """Build the city under ``root``; the simulated time the build ended at."""
    clock = SimClock(epoch(SETUP))
    fingerprint = authority.init(
        root / "central", code=CITY_CODE, name=plan.central_name, net=None, clock=clock
    )
    with authority.open_central(root / "central", clock) as central:
        authority.publish_catalog(central, items_from_data(demo_file("catalog.yaml")["items"]))
        for done, node in enumerate(plan.nodes, start=1):
            home = root / node.code
            token, _ = authority.issue_enroll_token(central, node.code)
            made = identity.init(
                home,
                tier=node.tier,
                code=node.code,
                name=node.name,
                parent=node.parent,
                clock=clock,
                token=token,
            )
            _, bundle = authority.enroll(central, made.request_path.read_bytes())
            identity.enroll(home, bundle, clock=clock, anchor_fingerprint=fingerprint)
            if node.tier == "town":
                authority.grant_items(central, node.code, None, None, valid_days=TOWN_GRANT_DAYS)
            if done % 40 == 0 or done == len(plan.nodes):
                progress(f"city: enrolled {done}/{len(plan.nodes)} nodes")
    return clock.now()


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
