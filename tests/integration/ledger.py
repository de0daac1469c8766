"""A count of a city's cases and nodes made straight from central's signed records.

The dashboard test compares every figure of :func:`central.dashboard.snapshot` with this
count. It reads nothing the dashboard reads: it decodes the envelopes of central's
``records`` table, finds the quarantined ones from the certificates and revocations among
them, and replays each case with the domain's state machine (:mod:`core.cases`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from core.cases import CaseEvent, CaseState, Event, apply
from core.catalog import CatalogRelease, Mode
from core.errors import TongbanError
from sync.record import kinds
from sync.record.envelope import Record, key_id
from sync.record.log import decode_stored

DECIDING = (Event.APPROVE, Event.REJECT, Event.REQUEST_SUPPLEMENT)


@dataclass
class Case:
    no: str
    node: str
    mode: Mode
    decider: str
    item: str
    item_name: str
    deadline: str
    received: int
    events: list[tuple[int, bytes, str, CaseEvent]] = field(default_factory=list)
    state: str = ""
    decided: int | None = None
    rating: int | None = None
    paused: bool = False


@dataclass
class Ledger:
    tiers: dict[str, str]
    names: dict[str, str]
    parents: dict[str, str]
    revoked: set[str]
    cases: dict[str, Case]
    status: dict[str, Record]  # newest node.status per origin
    receipts: dict[str, int]  # newest link.receipt `at` per child
    items: dict[str, str]  # item names of the newest catalog release
    quarantined: set[bytes]  # ids of records signed after their key's revocation cut-off


def ledger(central_db: Path) -> Ledger:
    conn = sqlite3.connect(central_db)
    try:
        envelopes = conn.execute("SELECT envelope FROM records ORDER BY arrival").fetchall()
    finally:
        conn.close()
    records = [decode_stored(bytes(e)) for (e,) in envelopes]
    certs: dict[bytes, Record] = {r.id: r for r in records if r.kind == kinds.NODE_CERT}
    cut: dict[bytes, int] = {}
    for r in records:
        if r.kind == kinds.CERT_REVOKE:
            cut[r.body["cert"]] = min(
                cut.get(r.body["cert"], r.body["last_good_seq"]), r.body["last_good_seq"]
            )
    limits = {(c.body["node"], key_id(c.body["sign_pk"])): cut[cid] for cid, c in certs.items() if cid in cut}
    good = [r for r in records if r.seq <= limits.get((r.origin, r.payload.kid), r.seq)]
    assert len(good) < len(records)  # the scenario quarantined something
    by_code = {c.body["node"]: c.body for c in certs.values()}
    unrevoked = {c.body["node"] for cid, c in certs.items() if cid not in cut}
    releases = [r for r in good if r.kind == kinds.CATALOG_RELEASE]
    newest = CatalogRelease.from_body(max(releases, key=lambda r: r.body["version"]).body)
    out = Ledger(
        tiers={code: body["tier"] for code, body in by_code.items()},
        names={code: body["name"] for code, body in by_code.items()},
        parents={code: body["parent"] for code, body in by_code.items()},
        revoked=set(by_code) - unrevoked,
        cases={},
        status={},
        receipts={},
        items={item.code: item.name for item in newest.items},
        quarantined={r.id for r in records} - {r.id for r in good},
    )
    for r in good:
        body = r.body
        if r.kind == kinds.CASE_INTAKE:
            out.cases[body["case"]] = Case(
                body["case"],
                r.origin,
                Mode(body["mode"]),
                body["decider"],
                body["item"],
                body["item_name"],
                body["deadline"],
                r.payload.ts,
            )
        elif r.kind == kinds.CASE_EVENT and body["case"] in out.cases:
            event = CaseEvent.from_body({k: v for k, v in body.items() if k != "case"})
            out.cases[body["case"]].events.append((event.at, r.id, r.origin, event))
        elif r.kind == kinds.LINK_RECEIPT:
            out.receipts[body["child"]] = max(out.receipts.get(body["child"], 0), body["at"])
    # The newest report of each node; none when that one is quarantined.
    for r in records:
        if r.kind == kinds.NODE_STATUS and (r.origin not in out.status or out.status[r.origin].seq < r.seq):
            out.status[r.origin] = r
    out.status = {origin: r for origin, r in out.status.items() if r in good}
    for case in out.cases.values():
        replay(case)
    return out


def replay(case: Case) -> None:
    """The case's state by the state machine, events in (time, id) order, authors checked."""
    state = CaseState.open(case.mode)
    for at, _, origin, event in sorted(case.events, key=lambda e: (e[0], e[1])):
        if origin != (case.decider if event.kind in DECIDING else case.node):
            continue
        try:
            state = apply(state, event)
        except TongbanError:
            continue
        if event.kind in (Event.APPROVE, Event.REJECT):
            case.decided = at
        case.rating = int(event.rating) if event.rating is not None else case.rating
        case.paused = case.paused or event.kind is Event.REQUEST_SUPPLEMENT
    case.state = state.state.value
