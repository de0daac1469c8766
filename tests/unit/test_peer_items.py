"""core.peer_items: the mirror of another city's items, which of a release's items it takes,
and when a window may take one in; the kind's registration."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.catalog import CatalogRelease, Item
from core.errors import AuthorityError, ErrorCode, RecordError
from core.federation import (
    ACCEPT,
    DAY,
    DECIDE,
    DELIVER,
    INTAKE,
    JOINT_PART,
    PROXY_INTAKE,
    CrossCert,
    PeerRevocation,
    PeerState,
    Scope,
    ScopeItem,
)
from core.peer_items import PeerItems, choose, offerable, offered_at, taken_in_here
from sync.record import kinds
from sync.record.trust import role_of
from tests.unit.test_catalog import make_item

PEER = "cn-310118"
T0 = 1_800_000_000
RELEASE_ID = b"\x11" * 32


def entry(
    code: str,
    cat: int = 3,
    *,
    modes: tuple[str, ...] = (PROXY_INTAKE,),
    roles: tuple[str, ...] = (ACCEPT, DECIDE),
) -> ScopeItem:
    return ScopeItem(code, cat, frozenset(modes), frozenset(roles))


def peer_release(*codes: str, version: int = 3) -> CatalogRelease:
    return CatalogRelease(version, T0, T0 + 120 * DAY, tuple(make_item(c) for c in codes))


def mirror(*items: Item, cat: int = 3) -> PeerItems:
    return PeerItems(PEER, "上海市青浦区", cat, RELEASE_ID, items)


def body(**changes: Any) -> dict[str, Any]:
    return {**mirror(make_item("GA-0001"), make_item("MZ-0002")).to_body(), **changes}


def test_a_mirror_reads_back_its_own_body_exactly() -> None:
    held = PeerItems.from_body(body())
    assert held.to_body() == body()
    assert held.get("MZ-0002") == make_item("MZ-0002") and held.get("RS-0001") is None


@pytest.mark.parametrize(
    "changes",
    [
        {"extra": 1},
        {"peer": ""},
        {"name": " "},
        {"cat": 0},
        {"cat": True},
        {"release": b"\x11" * 31},
        {"items": [make_item("MZ-0002").to_body(), make_item("GA-0001").to_body()]},  # unsorted
        {"items": [make_item("GA-0001").to_body()] * 2},  # twice
        {"items": [{**make_item("GA-0001").to_body(), "colour": "red"}]},  # not an item
        {"items": "GA-0001"},
    ],
)
def test_a_mirror_body_is_checked_strictly(changes: dict[str, Any]) -> None:
    with pytest.raises(RecordError) as err:
        PeerItems.from_body(body(**changes))
    assert err.value.code is ErrorCode.SCHEMA


def test_a_mirror_without_its_items_key_is_refused() -> None:
    partial = body()
    del partial["items"]
    with pytest.raises(RecordError):
        PeerItems.from_body(partial)


def test_the_release_gives_only_the_items_the_scope_pins_to_its_version() -> None:
    scope = Scope(
        (
            entry("CL-0001", 3),
            entry("GA-0001", 2),  # pinned to another version
            entry("MZ-0002", 3, roles=(DELIVER,)),  # the peer only delivers it
            entry("RS-0001", 3, modes=(JOINT_PART,)),  # a part of a joint case: mirrored for the form
            entry("SW-0001", 3),  # not in the release
            entry("YB-0001", 3, roles=(INTAKE,)),  # ours, taken in by the peer
        )
    )
    release = peer_release("CL-0001", "GA-0001", "MZ-0002", "RS-0001", "YB-0001")
    assert [i.code for i in choose(scope, release)] == ["CL-0001", "RS-0001"]
    assert [i.code for i in choose(scope, peer_release("GA-0001", version=2))] == ["GA-0001"]
    # ... but only 代收代办 items are offered as 异地代收 at the window
    assert [e.item for e in scope.items if taken_in_here(e)] == ["CL-0001", "GA-0001", "SW-0001"]
    assert choose(scope, peer_release("CL-0001", version=4)) == ()


def test_a_mirror_is_the_same_only_with_the_same_items_at_the_same_version() -> None:
    held = mirror(make_item("GA-0001"))
    assert held.same_items(dataclasses.replace(held, release=b"\x22" * 32))
    assert not held.same_items(None)
    assert not held.same_items(mirror(make_item("GA-0001"), cat=4))
    assert not held.same_items(mirror(make_item("GA-0001", time_limit_days=5)))
    assert not held.same_items(mirror(make_item("GA-0001"), make_item("MZ-0002")))


def cross(serial: int = 1, nbf: int = T0, days: int = 30, scope: Scope | None = None) -> CrossCert:
    return CrossCert(
        PEER, "上海市青浦区", b"\x01" * 32, b"\xaa" * 32, serial, nbf, nbf + days * DAY,
        scope or Scope((entry("GA-0001", 3),)),
    )  # fmt: skip


def test_a_window_offers_the_item_while_the_newest_cross_certification_holds() -> None:
    held = PeerState(PEER, (cross(),))
    assert offerable(held, "GA-0001", 3, T0 + DAY).item == "GA-0001"


@pytest.mark.parametrize(
    ("held", "code", "cat", "at", "refusal"),
    [
        (None, "GA-0001", 3, T0, ErrorCode.PEER_UNKNOWN),
        (PeerState(PEER, (cross(),)), "GA-0001", 3, T0 + 30 * DAY, ErrorCode.PEER_EXPIRED),
        (PeerState(PEER, (cross(),)), "GA-0001", 3, T0 - 1, ErrorCode.PEER_EXPIRED),
        (
            PeerState(PEER, (cross(),), (PeerRevocation(PEER, 1, T0 + DAY, "协议终止"),)),
            "GA-0001", 3, T0 + DAY, ErrorCode.PEER_REVOKED,
        ),
        (PeerState(PEER, (cross(),)), "GA-0001", 2, T0, ErrorCode.PEER_SCOPE),  # another version
        (PeerState(PEER, (cross(),)), "MZ-0002", 3, T0, ErrorCode.PEER_SCOPE),  # not in the scope
        # A renewal that dropped the item: the newest counts, not the older one still valid.
        (
            PeerState(PEER, (cross(), cross(2, scope=Scope((entry("MZ-0002", 3),))))),
            "GA-0001", 3, T0, ErrorCode.PEER_SCOPE,
        ),
    ],
)  # fmt: skip
def test_a_window_refuses_the_item_with_the_agreement_refusal(
    held: PeerState | None, code: str, cat: int, at: int, refusal: ErrorCode
) -> None:
    with pytest.raises(AuthorityError) as err:
        offerable(held, code, cat, at)
    assert err.value.code is refusal
    assert err.value.text("zh")


def test_the_kind_is_central_s_signed_by_its_peers_key_and_reaches_every_node() -> None:
    kind, value = kinds.check(kinds.PEER_ITEMS, body())
    assert kind.author is kinds.Author.ROOT and isinstance(value, PeerItems)
    assert kinds.PEER_ITEMS in kinds.ROOT_SCOPED
    assert kinds.scope_of(kinds.PEER_ITEMS, "330481", body()) is None
    assert role_of(kinds.PEER_ITEMS) == "peers"
    with pytest.raises(RecordError):
        kinds.check(kinds.PEER_ITEMS, body(cat=-1))


def test_the_recheck_judges_an_intake_under_the_agreement_in_force_at_its_time() -> None:
    renewed = cross(2, nbf=T0 + 20 * DAY, scope=Scope((entry("MZ-0002", 3),)))
    held = PeerState(PEER, (cross(), renewed))
    assert offered_at(held, "GA-0001", 3, T0 + DAY).item == "GA-0001"  # before the renewal dropped it
    for at, code, refusal in (
        (T0 + 21 * DAY, "GA-0001", ErrorCode.PEER_SCOPE),
        (T0 + 60 * DAY, "MZ-0002", ErrorCode.PEER_EXPIRED),
    ):
        with pytest.raises(AuthorityError) as err:
            offered_at(held, code, 3, at)
        assert err.value.code is refusal
    revoked = PeerState(PEER, (cross(),), (PeerRevocation(PEER, 1, T0 + DAY, "协议终止"),))
    assert offered_at(revoked, "GA-0001", 3, T0 + DAY - 1).item == "GA-0001"
    with pytest.raises(AuthorityError) as err:
        offered_at(revoked, "GA-0001", 3, T0 + DAY)
    assert err.value.code is ErrorCode.PEER_REVOKED
