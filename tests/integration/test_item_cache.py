"""The items a node may take in are kept between requests (defect 9: 280–450 ms per page that
lists them) and given up exactly when what they depend on changes: a revocation arrives,
a grant ends, a new grant or catalog release arrives."""

from __future__ import annotations

from pathlib import Path

from core.grants import Verdict
from tests.helpers import CITY, TOWN, VILLAGE, delegate_demo_items, make_network, open_desk, relay


def statements(desk: object, call: object) -> int:
    """How many SQL statements ``call()`` runs on the desk's connection."""
    seen: list[str] = []
    conn = desk.db.conn  # type: ignore[attr-defined]
    conn.set_trace_callback(seen.append)
    try:
        call()  # type: ignore[operator]
    finally:
        conn.set_trace_callback(None)
    return len(seen)


def test_items_are_kept_and_given_up_when_their_grants_change(tmp_path: Path) -> None:
    net = make_network(tmp_path)
    net.add_node(TOWN, "town", CITY)
    net.add_node(VILLAGE, "village", TOWN)
    delegate_demo_items(net, TOWN, [VILLAGE], valid_days=30)
    with open_desk(net.node_dir(VILLAGE), net.clock) as village:
        first = village.items()
        assert first and all(a.auth.verdict is Verdict.OK for a in first)
        cold = statements(village, village.items)
        assert cold <= 6, cold  # the counts the cache is keyed on, not a chain walk per item
        assert [a.item.code for a in village.items()] == [a.item.code for a in first]

    # a sub-grant revoked at the town reaches the village: its items go at once
    with open_desk(net.node_dir(TOWN), net.clock) as town:
        grant, _ = next((g, revoked) for g, revoked in town.delegation.issued() if not revoked)
        town.delegation.revoke(grant.id, "测试撤销", actor="admin")
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    with open_desk(net.node_dir(VILLAGE), net.clock) as village:
        after = village.items()
        assert len(after) < len(first)
        assert not set(grant.items) & {a.item.code for a in after if a.auth.verdict is Verdict.OK}


def test_a_kept_answer_ends_when_a_grant_expires(tmp_path: Path) -> None:
    net = make_network(tmp_path)
    net.add_node(TOWN, "town", CITY)
    net.add_node(VILLAGE, "village", TOWN)
    delegate_demo_items(net, TOWN, [VILLAGE], valid_days=30)
    with open_desk(net.node_dir(VILLAGE), net.clock) as village:
        assert all(a.auth.verdict is Verdict.OK for a in village.items())
        net.clock.advance(31 * 86_400)  # the same desk, its cache warm: the grants have ended
        assert all(a.auth.verdict is Verdict.STALE for a in village.items())
